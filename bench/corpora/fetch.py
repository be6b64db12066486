"""Install the benchmark corpora from Debian packages into bench/corpora/<name>/docs (git-ignored).

    .venv/bin/python bench/corpora/fetch.py                 # every corpus
    .venv/bin/python bench/corpora/fetch.py --corpora r-faq

Each corpus is a Debian package fetched with ``apt-get download`` and unpacked with
``dpkg -x`` (nothing is installed system-wide); a subset of its files is copied to
``<name>/docs``, together with the package's copyright file. Only the questions
(``<name>/questions.jsonl``) are committed. Run ``apt-get update`` once first if
``apt-get download`` cannot find the package.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (package, version it was written against, kind, held out?, files under the unpacked root)
CORPORA: dict[str, dict] = {
    "r-faq": {
        "package": "r-doc-pdf", "version": "4.2.2.20221110-2", "kind": "FAQ (one PDF, 52 pages: the R FAQ)", "held_out": False,
        "files": ["usr/share/R/doc/manual/R-FAQ.pdf"],
        "copyright": "usr/share/doc/r-doc-pdf/copyright",
    },
    "sqlite-capi": {
        "package": "sqlite3-doc", "version": "3.40.1-2+deb12u2", "kind": "API reference (86 of the 210 HTML pages of the SQLite C interface)", "held_out": False,
        "files": ["usr/share/doc/sqlite3/c3ref/*.html"],
        # 2 shared cores cannot embed all 210 pages for every variant: the pages the questions
        # come from, plus every third of the others (in name order) as distractors.
        "subset": "questions+every3",
        "copyright": "usr/share/doc/sqlite3-doc/copyright",
    },
    "click-docs": {
        "package": "python-click-doc", "version": "8.1.3-2", "kind": "library documentation built by Sphinx (23 HTML pages of Click: narrative chapters, API reference, changelog)", "held_out": False,
        # every page but Sphinx's generated ones (search, index of names, module index, 404)
        "files": [f"usr/share/doc/python-click-doc/html/{n}.html" for n in (
            "advanced", "api", "arguments", "changes", "commands", "complex", "contrib", "documentation", "exceptions",
            "index", "license", "options", "parameters", "prompts", "quickstart", "setuptools", "shell-completion",
            "testing", "unicode-support", "upgrading", "utils", "why", "wincmd")],
        "copyright": "usr/share/doc/python-click-doc/copyright",
    },
    "git-manual": {
        "package": "git-doc", "version": "1:2.39.5-0+deb12u3", "kind": "manual (5 HTML pages: Git user manual, tutorial, glossary, hooks, FAQ)", "held_out": True,
        "files": [f"usr/share/doc/git-doc/{n}.html" for n in ("user-manual", "gittutorial", "gitglossary", "githooks", "gitfaq")],
        "copyright": "usr/share/doc/git-doc/copyright",
    },
}


def docs_dir(name: str) -> Path:
    return HERE / name / "docs"


def fetch(name: str, force: bool = False) -> Path:
    spec = CORPORA[name]
    out = docs_dir(name)
    if out.exists() and any(out.iterdir()) and not force:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(["apt-get", "download", spec["package"]], cwd=tmp, capture_output=True, text=True)
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        if r.returncode or not debs:
            sys.exit(f"apt-get download {spec['package']} failed ({r.stderr.strip()[:200]}); run `apt-get update` and retry.")
        root = os.path.join(tmp, "root")
        subprocess.run(["dpkg", "-x", debs[0], root], check=True)
        version = subprocess.run(["dpkg-deb", "-f", debs[0], "Version"], capture_output=True, text=True).stdout.strip()
        if version != spec["version"]:
            print(f"note: {spec['package']} is {version}, the questions were written against {spec['version']}", file=sys.stderr)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for pattern in spec["files"]:
            paths = sorted(glob.glob(os.path.join(root, pattern)))
            if spec.get("subset") == "questions+every3":
                import json

                asked = {json.loads(line)["source"] for line in open(HERE / name / "questions.jsonl", encoding="utf-8") if line.strip()}
                rest = [p for p in paths if os.path.basename(p) not in asked]
                keep = {p for p in paths if os.path.basename(p) in asked} | set(rest[::3])
                paths = [p for p in paths if p in keep]
            for path in paths:
                target = out / os.path.basename(path)
                if path.endswith(".gz"):
                    with gzip.open(path, "rb") as src, open(target.with_suffix(""), "wb") as dst:
                        shutil.copyfileobj(src, dst)
                else:
                    shutil.copyfile(path, target)
        shutil.copyfile(os.path.join(root, spec["copyright"]), HERE / name / "COPYRIGHT.txt")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated names")
    ap.add_argument("--force", action="store_true", help="fetch again even if present")
    args = ap.parse_args(argv)
    for name in args.corpora.split(","):
        out = fetch(name, args.force)
        files = list(out.iterdir())
        print(f"{name}: {len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main()
