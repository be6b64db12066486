"""The plugin registry: built-ins, runtime registration, failures reported by name."""

from __future__ import annotations

import numpy as np
import pytest

import llm_magics
from llm_magics import hookimpl, plugins, registry
from llm_magics.backends import Backend
from llm_magics.ingest.embedders import Embedder
from llm_magics.errors import UsageError


class WordHashEmbedder(Embedder):
    """Bag of words hashed into 32 buckets."""

    name = "test-hash"
    dimension = 32

    def embed(self, texts):
        out = np.zeros((len(texts), self.dimension), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % self.dimension] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class EchoBackend(Backend):
    name = "test-echo"

    def stream(self, messages, params, usage):
        words = messages[-1]["content"].split()[: params.max_tokens]
        usage.prompt_tokens, usage.completion_tokens, usage.finish_reason = len(words), len(words), "stop"
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word


class GoodPlugin:
    @hookimpl
    def register_embedders(self, register):
        register(WordHashEmbedder, aliases=("hash32",))

    @hookimpl
    def register_backends(self, register):
        register(EchoBackend)


class RaisingPlugin:
    @hookimpl
    def register_embedders(self, register):
        raise RuntimeError("boom")


@pytest.fixture
def good_plugin():
    name = plugins.register(GoodPlugin(), "good")
    try:
        yield name
    finally:
        plugins.unregister(name)


def test_builtins_are_plugins_through_the_same_hooks():
    plugins.load_plugins()
    for module in plugins.DEFAULT_PLUGINS:
        assert module in plugins.info
    assert plugins.info["llm_magics.models.builtin"].hooks == ["register_models"]


def test_runtime_plugin_entries_record_where_they_came_from(good_plugin):
    entry = registry.entries("embedder")["test-hash"]
    assert entry.plugin == "good"
    assert registry.entries("embedder")["hash32"] is entry
    assert registry.get("embedder", "hash32") is WordHashEmbedder
    embedder = llm_magics.get_embedder("test-hash")
    vectors = embedder.embed(["a b c", "c d"])
    assert vectors.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-6)


def test_backend_named_backend_colon_model(good_plugin):
    model = llm_magics.get_model("test-echo:anything")
    assert isinstance(model, EchoBackend) and model.model == "anything"
    completion = model.complete("one two three")
    assert completion.text == "one two three"
    assert completion.usage.finish_reason == "stop"


def test_unknown_name_lists_known_ones(good_plugin):
    with pytest.raises(UsageError) as e:
        registry.get("embedder", "nope")
    assert "No embedder 'nope'" in str(e.value)
    assert "test-hash" in str(e.value) and "--embedder" in str(e.value)


def test_plugin_raising_in_hook_is_reported_and_others_still_work(good_plugin):
    plugins.register(RaisingPlugin(), "raiser")
    try:
        found = registry.entries("embedder")
        assert "test-hash" in found
        assert "raiser" in plugins.errors
        assert "register_embedders raised RuntimeError: boom" in plugins.errors["raiser"]
    finally:
        plugins.unregister("raiser")
    assert "raiser" not in plugins.errors


def test_unregister_removes_entries(good_plugin):
    assert "test-hash" in registry.entries("embedder")
    plugins.unregister(good_plugin)
    assert "test-hash" not in registry.entries("embedder")


def test_bad_options_are_a_usage_error_listing_the_valid_ones():
    from pydantic import Field

    from llm_magics.extension import Extension
    from llm_magics.extension import Options as BaseOptions

    class Thing(Extension):
        name = "thing"

        class Options(BaseOptions):
            size: int = Field(3, description="How big")

    assert Thing(size=4).options.size == 4
    with pytest.raises(UsageError, match="Valid options: size"):
        Thing(colour="red")
