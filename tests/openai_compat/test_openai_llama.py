"""The openai backend against a real OpenAI-compatible server: llama.cpp's, serving SmolLM2.

The servers are started once per session on loopback (see conftest.py). Greedy decoding
on one thread makes the replies reproducible, so streamed and whole replies can be
compared piece for piece.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import closing

import numpy as np
import pytest

from llm_magics.backends import GenerationParams, Usage, get_model
from llm_magics.openai_compat import OpenAIBackend, OpenAIEmbedder, OpenAIError
from llm_magics.ingest.embedders import get_embedder

pytestmark = pytest.mark.server

# A prompt whose greedy reply has no near-ties: llama.cpp evaluates a repeated prompt from its
# cache, which moves logits by rounding, and a tie (with a system message this prompt has one,
# "red, orange" against "orange, red") would then flip between a cold and a warm request.
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture
def model(llama_server, openai_settings) -> OpenAIBackend:
    return OpenAIBackend(llama_server.model, base_url=llama_server.base_url, api_key=llama_server.api_key, context_window=2048)


@pytest.fixture(scope="module")
def reference(llama_server) -> str:
    """The greedy 24-token reply, fetched once without streaming."""
    m = OpenAIBackend(llama_server.model, base_url=llama_server.base_url, api_key=llama_server.api_key)
    return m.complete(QUESTION, GenerationParams(max_tokens=24)).text


def test_streamed_pieces_arrive_one_by_one_and_add_up_to_the_reply(model, reference):
    usage, pieces, arrived = Usage(), [], []
    for piece in model.stream(QUESTION, GenerationParams(max_tokens=24), usage):
        pieces.append(piece)
        arrived.append(time.monotonic())
    assert len(pieces) > 5, pieces
    assert "".join(pieces) == reference
    assert arrived[-1] - arrived[0] > 0.01, "the pieces came in one burst, not as generated"
    assert usage.finish_reason == "length"
    # llama-cpp-python sends no usage in the stream: counted, one piece per token.
    assert usage.extra["usage"] == "counted" and usage.completion_tokens == len(pieces) == 24
    assert usage.prompt_tokens > 10


def test_complete_uses_one_request_and_the_servers_usage(model, reference, llama_server):
    result = model.complete(QUESTION, GenerationParams(max_tokens=24))
    assert result.text == reference and len(reference) > 20
    assert result.usage.extra["usage"] == "server"
    assert result.usage.completion_tokens == 24 and result.usage.finish_reason == "length"
    assert result.usage.prompt_tokens > 10


def test_max_tokens_stops_with_finish_reason_length(model):
    usage = Usage()
    pieces = list(model.stream(QUESTION, GenerationParams(max_tokens=3), usage))
    assert usage.finish_reason == "length" and usage.completion_tokens == len(pieces) == 3


def test_a_stop_string_ends_the_reply_before_it(model, reference):
    words = reference.split()
    stop = words[len(words) // 2]
    expected = reference[: reference.index(stop)]
    result = model.complete(QUESTION, GenerationParams(max_tokens=24, stop=[stop]))
    assert result.text == expected and stop not in result.text
    assert result.usage.finish_reason == "stop"

    usage = Usage()
    assert "".join(model.stream(QUESTION, GenerationParams(max_tokens=24, stop=[stop]), usage)) == expected
    assert usage.finish_reason == "stop"


def test_count_tokens_uses_the_servers_tokenizer(model, llama_server):
    import llama_cpp

    vocab = llama_cpp.Llama(str(llama_server.model_path), vocab_only=True, verbose=False)
    for text in ("Hello, world!", "Transformers attend to every earlier token. " * 5):
        assert model.count_tokens(text) == len(vocab.tokenize(text.encode(), add_bos=False, special=True))
    assert model.context_window == 2048  # the option; llama-cpp-python does not report n_ctx


def test_a_wrong_key_is_a_clear_401_that_never_shows_a_key(llama_server, openai_settings):
    wrong = "sk-wrong-" + "z" * 20
    model = OpenAIBackend(llama_server.model, base_url=llama_server.base_url, api_key=wrong)
    with pytest.raises(OpenAIError) as e:
        model.complete(QUESTION, GenerationParams(max_tokens=2))
    message = str(e.value)
    assert e.value.status == 401
    assert message == (
        f"{llama_server.base_url}/chat/completions rejected the API key (401: Invalid API key). "
        "Set the right one with %config OpenAICompat.api_key = '...' (or $OPENAI_API_KEY)."
    )
    for shown in (message, repr(e.value), repr(model), repr(model.options), repr(model.connection)):
        assert wrong not in shown and llama_server.api_key not in shown

    no_key = OpenAIBackend(llama_server.model, base_url=llama_server.base_url)
    with pytest.raises(OpenAIError, match="needs an API key .* Set it with %config OpenAICompat.api_key"):
        list(no_key.stream(QUESTION, GenerationParams(max_tokens=2), Usage()))


@pytest.mark.parametrize("wrong", ["", "/v2"])
def test_a_wrong_base_url_path_is_a_clear_404(llama_server, openai_settings, wrong):
    url = llama_server.base_url[: -len("/v1")] + wrong
    model = OpenAIBackend(llama_server.model, base_url=url, api_key=llama_server.api_key)
    with pytest.raises(OpenAIError) as e:
        model.complete(QUESTION, GenerationParams(max_tokens=2))
    assert e.value.status == 404
    assert str(e.value).startswith(f"{url}/chat/completions does not exist (404: Not Found). Check the base URL {url}")
    assert "serve under /v1" in str(e.value)


def test_get_model_reads_url_and_key_from_settings(llama_server, openai_settings, reference):
    openai_settings.base_url = llama_server.base_url
    openai_settings.api_key = llama_server.api_key
    model = get_model(f"openai:{llama_server.model}")
    assert isinstance(model, OpenAIBackend) and model.model_id == "openai:smollm2"
    assert model.complete(QUESTION, GenerationParams(max_tokens=24)).text == reference
    assert get_model("openai").resolved_model() == "smollm2"  # no name: the server's model
    assert llama_server.api_key not in repr(model) + repr(openai_settings)


def test_an_interrupt_in_the_consumer_keeps_what_was_produced(model, reference):
    usage, pieces = Usage(), []

    def on_llm_new_token(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with closing(model.stream(QUESTION, GenerationParams(max_tokens=200), usage)) as stream:
            for piece in stream:
                on_llm_new_token(piece)
    assert len(pieces) == 4 and reference.startswith("".join(pieces))
    assert usage.finish_reason == "interrupted" and usage.completion_tokens == 4
    # The server is free again: the next request is answered in full.
    assert model.complete(QUESTION, GenerationParams(max_tokens=24)).text == reference


def test_a_real_sigint_while_waiting_on_the_socket_stops_generation(model):
    """As an interrupted kernel does: SIGINT to the main thread while it reads the stream."""
    story = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]
    sigint = threading.Timer(0.05, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    usage, pieces = Usage(), []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            for piece in model.stream(story, GenerationParams(max_tokens=400), usage):
                pieces.append(piece)
                if len(pieces) == 2:
                    sigint.start()
            sigint.join()  # a reply that ended first fails below, inside this block
    finally:
        if sigint.ident is not None:
            sigint.join()
        signal.signal(signal.SIGINT, previous)
    assert usage.finish_reason == "interrupted", f"the reply ended first: {''.join(pieces)!r}"
    assert 2 <= len(pieces) < 400 and usage.completion_tokens == len(pieces)
    assert model.complete(story, GenerationParams(max_tokens=5)).usage.completion_tokens == 5  # the server goes on


def test_embeddings_from_the_server(llama_server, openai_settings):
    # llama-cpp-python returns a vector per token for a decoder model; the embedder mean-pools.
    openai_settings.base_url = llama_server.base_url
    openai_settings.api_key = llama_server.api_key
    embedder = get_embedder("openai", model=llama_server.model, batch_size=2)
    assert isinstance(embedder, OpenAIEmbedder) and embedder.identity == "openai:smollm2"
    texts = ["The cat sat on the mat.", "A kitten sat on a rug.", "Quarterly revenue rose by four percent.", "cat"]
    vectors = embedder.embed(texts)  # two batches of two
    assert vectors.shape == (4, 576) and vectors.dtype == np.float32  # SmolLM2-135M's hidden size
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.dimension == 576
    assert np.allclose(embedder.embed_query(texts[0]), vectors[0], atol=1e-5)  # batching changes nothing
    assert not np.allclose(vectors[0], vectors[2])
