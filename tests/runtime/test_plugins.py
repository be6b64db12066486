"""The runtime behind the built-in plugins: the local embedder and the local backend."""

from __future__ import annotations

import numpy as np
import pytest

from llm_magics.backends.base import GenerationParams, Usage
from llm_magics.testing import assert_same_embeddings


def test_local_embedder_is_the_default_and_matches_the_runtime(minilm):
    from llm_magics import registry
    from llm_magics.ingest.embedders import get_embedder

    embedder = get_embedder("all-minilm-l6-v2")
    assert registry.get("embedder", "minilm") is type(embedder) is registry.get("embedder", "local")
    assert embedder.dimension == 384 and embedder.max_tokens == 256
    texts = ["hello world", "attention is all you need"]
    # float32 is the runtime's own numbers; the default ("auto": bfloat16 on CPUs with bf16 units) rounds a little
    np.testing.assert_allclose(get_embedder("all-minilm-l6-v2", dtype="float32").embed(texts), minilm.embed(texts), atol=1e-6)
    assert_same_embeddings(embedder.embed(texts), minilm.embed(texts), min_cosine=0.9999)
    spans = embedder.token_spans("Tokens, split.")
    assert [("Tokens, split.")[a:b] for a, b in spans] == ["Token", "s", ",", "split", "."]  # word pieces
    assert embedder.count_tokens("Tokens, split.") == 5
    assert embedder.identity == "all-minilm-l6-v2"


def test_local_embedder_serves_a_local_folder(tiny_folders):
    from llm_magics.ingest.embedders import get_embedder

    embedder = get_embedder(str(tiny_folders["bert"]))
    assert embedder.dimension == 64
    vectors = embedder.embed(["a b", "c d e"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.identity.startswith("local:")


def test_local_backend_streams_a_chat_reply_with_attention(smollm):
    from llm_magics.backends import get_model

    backend = get_model("smollm2")
    assert backend.name == "local" and backend.context_window == 8192
    assert backend.count_tokens("Hello world") == 2
    usage = Usage()
    messages = [{"role": "user", "content": "What is the capital of France? One word."}]
    pieces = list(backend.stream(messages, GenerationParams(max_tokens=12), usage))
    text = "".join(pieces)
    assert "Paris" in text
    assert usage.prompt_tokens == len(smollm.encode(smollm.chat_prompt(messages)))
    assert usage.completion_tokens >= 1 and usage.finish_reason in ("stop", "length")
    attention = usage.extra["attention"]
    assert attention.prompt_len == usage.prompt_tokens and len(attention.rows) == usage.completion_tokens == len(attention.token_ids)
    assert attention.prompt_ids == usage.extra["prompt_ids"]


def test_local_backend_rejects_an_encoder():
    from llm_magics.backends import get_model
    from llm_magics.errors import UsageError

    with pytest.raises(UsageError, match="needs a decoder"):
        get_model("local:minilm").context_window
