"""The openai backend's HTTP behaviour against stdlib servers on loopback.

What llama.cpp will not do on cue (429 with Retry-After, 5xx, a stall, OpenAI's own 404
for an unknown model, a key echoed in an error) comes from a scripted server here; the
conversation with a real model is in test_openai_llama.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from llm_magics.backends import GenerationParams, Usage, get_model
from llm_magics.openai_compat import OpenAIBackend, OpenAIError
from llm_magics.openai_compat.client import retry_after
from llm_magics.ingest.embedders import get_embedder
from llm_magics.errors import UsageError

pytestmark = pytest.mark.server

HELLO = [{"role": "user", "content": "Say hello"}]


def backend(server, **options) -> OpenAIBackend:
    return OpenAIBackend("tiny", base_url=server.base_url, **options)


def test_streams_sse_pieces_and_usage_from_the_final_chunk(scripted_server, openai_settings):
    server = scripted_server(lambda h, seen: h.chat(["Hel", "lo", "!"], usage={"prompt_tokens": 7, "completion_tokens": 3}))
    usage = Usage()
    pieces = list(backend(server).stream(HELLO, GenerationParams(max_tokens=5, stop=["\n"]), usage))
    assert pieces == ["Hel", "lo", "!"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.finish_reason) == (7, 3, "stop")
    assert usage.extra["usage"] == "server"
    sent = server.chats[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "tiny" and sent["max_tokens"] == 5 and sent["stop"] == ["\n"]
    assert "top_k" not in sent  # unset sampling options are not sent (OpenAI rejects unknown ones)
    assert "Authorization" not in server.chats[0].headers  # no key configured, none sent


def test_a_server_that_ignores_stream_answers_in_one_piece(scripted_server, openai_settings):
    reply = {"choices": [{"message": {"content": "whole reply"}, "finish_reason": "length"}], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}
    server = scripted_server(lambda h, seen: h.json(200, reply))
    usage = Usage()
    assert list(backend(server).stream(HELLO, GenerationParams(), usage)) == ["whole reply"]
    assert (usage.finish_reason, usage.completion_tokens) == ("length", 2)


def test_429_with_retry_after_is_waited_out_then_succeeds(scripted_server, openai_settings):
    def respond(h, seen):
        if len(server.chats) == 1:
            h.json(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "1"})
        else:
            h.chat(["ok"])

    server = scripted_server(respond)
    start = time.monotonic()
    text = backend(server, backoff=0.01).complete(HELLO).text
    assert text == "ok"
    assert len(server.chats) == 2
    assert server.gaps()[0] >= 0.95, "Retry-After: 1 was not honoured"
    assert time.monotonic() - start < 5


def test_429_after_all_retries_is_one_clear_error(scripted_server, openai_settings):
    server = scripted_server(lambda h, seen: h.json(429, {"error": {"message": "Rate limit reached for requests"}}))
    with pytest.raises(OpenAIError) as e:
        list(backend(server, max_retries=2, backoff=0.01).stream(HELLO, GenerationParams(), Usage()))
    assert e.value.status == 429
    assert len(server.chats) == 3
    message = str(e.value)
    assert "rate limiting (429 after 3 tries)" in message and "Rate limit reached" in message
    assert "\n" not in message
    assert isinstance(e.value, UsageError)  # the magics show it as one line


def test_5xx_backs_off_exponentially(scripted_server, openai_settings):
    def respond(h, seen):
        if len(server.chats) <= 3:
            h.json(503, {"error": {"message": "loading model"}})
        else:
            h.chat(["up"])

    server = scripted_server(respond)
    assert backend(server, max_retries=3, backoff=0.2).complete(HELLO).text == "up"
    gaps = server.gaps()
    assert len(gaps) == 3
    for gap, expected in zip(gaps, (0.2, 0.4, 0.8)):
        assert expected - 0.02 <= gap < expected + 0.5


def test_a_retry_after_longer_than_max_wait_fails_at_once(scripted_server, openai_settings):
    server = scripted_server(lambda h, seen: h.json(429, {"error": {"message": "slow down"}}, {"Retry-After": "3600"}))
    start = time.monotonic()
    with pytest.raises(OpenAIError, match="asks to wait 3600 s"):
        backend(server, max_wait=5).complete(HELLO)
    assert len(server.chats) == 1 and time.monotonic() - start < 2


def test_retry_after_forms():
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert 8 < retry_after({"retry-after": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))}) <= 10
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_no_answer_within_the_timeout(scripted_server, openai_settings):
    def respond(h, seen):
        time.sleep(3)
        h.chat(["late"])

    server = scripted_server(respond)
    start = time.monotonic()
    with pytest.raises(OpenAIError) as e:
        backend(server, timeout=0.5, max_retries=1, backoff=0.0).complete(HELLO)
    assert time.monotonic() - start < 2.5
    assert len(server.chats) == 2  # timed out, retried once, timed out again
    assert "No answer from" in str(e.value) and "within 0.5 s (2 tries)" in str(e.value)
    assert "OpenAICompat.timeout" in str(e.value)


def test_a_stall_mid_stream_keeps_the_pieces_and_says_so(scripted_server, openai_settings):
    def respond(h, seen):
        h.start_sse()
        h.event({"choices": [{"delta": {"content": "first"}}]})
        time.sleep(3)

    server = scripted_server(respond)
    usage, pieces = Usage(), []
    with pytest.raises(OpenAIError, match="stopped sending for 0.5 s"):
        for piece in backend(server, timeout=0.5).stream(HELLO, GenerationParams(), usage):
            pieces.append(piece)
    assert pieces == ["first"]
    assert usage.finish_reason == "error" and usage.completion_tokens == 1


def test_connection_refused_says_start_the_server(closed_port, openai_settings):
    url = f"http://127.0.0.1:{closed_port}/v1"
    start = time.monotonic()
    with pytest.raises(OpenAIError) as e:
        OpenAIBackend("tiny", base_url=url, max_retries=2, backoff=0.05).complete(HELLO)
    message = str(e.value)
    assert message.startswith(f"Could not connect to an OpenAI-compatible server at {url} (3 tries)")
    assert "Start the server" in message and "OpenAICompat.base_url" in message
    assert 0.15 <= time.monotonic() - start < 3  # backed off 0.05 + 0.1 s


def test_unknown_model_lists_the_servers_models(scripted_server, openai_settings):
    def respond(h, seen):
        if seen.path == "/v1/models":
            h.json(200, {"object": "list", "data": [{"id": "gpt-4o-mini"}, {"id": "gpt-4o"}]})
        else:  # what api.openai.com answers
            h.json(404, {"error": {"message": f"The model `{seen.body['model']}` does not exist", "type": "invalid_request_error", "code": "model_not_found"}})

    server = scripted_server(respond)
    with pytest.raises(OpenAIError) as e:
        OpenAIBackend("gpt5", base_url=server.base_url).complete(HELLO)
    assert e.value.status == 404
    assert str(e.value) == (
        f"No model 'gpt5' on {server.base_url} (404: The model `gpt5` does not exist). "
        "Available: gpt-4o-mini, gpt-4o. Use --model openai:NAME."
    )


def test_the_key_never_shows_even_when_the_server_echoes_it(scripted_server, openai_settings):
    key = "sk-secret-" + "x" * 24
    server = scripted_server(lambda h, seen: h.json(401, {"error": {"message": f"Incorrect API key provided: {key}"}}))
    model = OpenAIBackend("tiny", base_url=server.base_url, api_key=key)
    with pytest.raises(OpenAIError) as e:
        model.complete(HELLO)
    assert server.chats[0].headers["Authorization"] == f"Bearer {key}"
    assert "rejected the API key (401: Incorrect API key provided: ***)" in str(e.value)
    for shown in (str(e.value), repr(e.value), repr(model), repr(model.options), str(model.options), repr(model.connection), str(vars(model.options))):
        assert key not in shown


def test_settings_then_environment_give_url_and_key(scripted_server, openai_settings, monkeypatch):
    server = scripted_server(lambda h, seen: h.chat(["hi"]))
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    model = get_model("openai:tiny")
    assert isinstance(model, OpenAIBackend) and model.model == "tiny" and model.model_id == "openai:tiny"
    assert model.complete("hi").text == "hi"
    assert server.chats[-1].headers["Authorization"] == "Bearer sk-from-env"

    openai_settings.api_key = "sk-from-settings"  # settings win over the environment
    get_model("openai:tiny").complete("hi")
    assert server.chats[-1].headers["Authorization"] == "Bearer sk-from-settings"


def test_no_server_configured_says_how_to_set_one(openai_settings):
    with pytest.raises(UsageError, match=r"needs a server: set %config OpenAICompat.base_url = .* \$OPENAI_BASE_URL"):
        get_model("openai:gpt-4o-mini")


def test_without_a_model_name_the_servers_first_model_is_used(scripted_server, openai_settings):
    def respond(h, seen):
        if seen.path == "/v1/models":
            h.json(200, {"data": [{"id": "only-model", "max_model_len": 8192}]})
        else:
            h.chat([seen.body["model"]])

    server = scripted_server(respond)
    openai_settings.base_url = server.base_url
    model = get_model("openai")
    assert model.complete(HELLO).text == "only-model"
    assert model.context_window == 8192  # vLLM lists max_model_len under /models
    assert OpenAIBackend("only-model", base_url=server.base_url, context_window=1000).context_window == 1000


def test_bad_options_name_the_valid_ones(openai_settings):
    with pytest.raises(UsageError, match="Bad options for backend 'openai'.*Valid options: base_url, api_key"):
        OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", temprature=0.3)


def test_embeddings_in_openai_form_come_back_in_input_order_and_unit_length(scripted_server, openai_settings):
    def respond(h, seen):
        texts = seen.body["input"]
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 0.0, 3.0]} for i, t in enumerate(texts)]
        h.json(200, {"object": "list", "data": data[::-1], "model": seen.body["model"]})  # any order, by index

    server = scripted_server(respond)
    openai_settings.base_url = server.base_url
    embedder = get_embedder("openai")
    vectors = embedder.embed(["abcd", "a", "abcdefghijkl"])
    assert server.requests[0].body["model"] == "text-embedding-3-small" and embedder.identity == "openai:text-embedding-3-small"
    expected = np.array([[4, 0, 3], [1, 0, 3], [12, 0, 3]], dtype=np.float32)
    assert np.allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True))
    assert embedder.dimension == 3 and embedder.embed([]).shape == (0, 3)
