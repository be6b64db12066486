"""Import and %load_ext time: llm-magics against jupyter-ai-magics (BENCH.md protocol).

    .venv/bin/python bench/bench_import.py [--peer-python /tmp/peer/bin/python] [--repeats 7]

Each figure is measured inside a fresh interpreter (a cold import every time), around the
import alone or around ``%load_ext`` alone in an already-created ``InteractiveShell``;
ours and the peer's alternate, and the table gives the median after one warm-up run each.
The peer lives in its own virtual environment because its dependencies (langchain and
friends) are not ours: ``python3 -m venv /tmp/peer && /tmp/peer/bin/pip install jupyter-ai-magics``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

IMPORT = "import time\nt = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)\n"
LOAD_EXT = (
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "shell = InteractiveShell.instance()\n"
    "import time\nt = time.perf_counter()\n"
    "shell.run_cell('%load_ext {module}').raise_error()\n"
    "print(time.perf_counter() - t)\n"
)
HEAVY = "import sys\nprint(sorted(m for m in ('torch', 'chromadb', 'transformers', 'langchain', 'langchain_core') if m in sys.modules))"


def seconds(python: str, code: str) -> float:
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default="/tmp/peer/bin/python")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    sides = [("llm-magics", sys.executable, "llm_magics")]
    try:
        subprocess.run([args.peer_python, "-c", "import jupyter_ai_magics"], check=True, capture_output=True)
        sides.append(("jupyter-ai-magics", args.peer_python, "jupyter_ai_magics"))
    except (OSError, subprocess.CalledProcessError):
        print(f"(peer jupyter_ai_magics not importable with {args.peer_python}: ours only)")

    rows = {}
    for label, template in (("import", IMPORT), ("%load_ext", LOAD_EXT)):
        times = {name: [] for name, _, _ in sides}
        for name, python, module in sides:  # warm-up: the file cache
            seconds(python, template.format(module=module))
        for _ in range(args.repeats):
            for name, python, module in sides:
                times[name].append(seconds(python, template.format(module=module)))
        rows[label] = {name: statistics.median(v) for name, v in times.items()}

    print("| what | llm-magics (ms) | jupyter-ai-magics (ms) | ratio peer/ours |")
    print("|---|---|---|---|")
    for label, medians in rows.items():
        ours = medians["llm-magics"]
        peer = medians.get("jupyter-ai-magics")
        peer_cell = f"{peer * 1000:.0f}" if peer is not None else "n/a"
        ratio = f"{peer / ours:.1f}x" if peer is not None else "n/a"
        print(f"| {label} | {ours * 1000:.0f} | {peer_cell} | {ratio} |")
    for name, python, module in sides:
        code = LOAD_EXT.format(module=module).replace("print(time.perf_counter() - t)\n", "") + HEAVY
        out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        print(f"heavy modules after %load_ext {module}: {out}")


if __name__ == "__main__":
    main()
