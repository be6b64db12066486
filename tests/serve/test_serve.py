"""A chain and %%ask served over HTTP: a real uvicorn server on loopback, called with httpx."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from llm_magics import UsageError, serve

pytestmark = [pytest.mark.server, pytest.mark.slow]

SUMMARY = """
- retrieve: {query: "{{ topic }}", k: 2}
- prompt: "Answer in one short sentence from the context.\\n{{ context }}\\nQuestion: {{ topic }}"
- llm: {max_tokens: 24}
"""


@pytest.fixture
def served(settings, port):
    from llm_magics import Chain

    Chain.define("laser", SUMMARY)
    running = serve.serve("laser", port=port)
    try:
        yield running
    finally:
        serve.stop()


def sse_events(response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
    return events


def test_health_openapi_and_docs(served):
    with httpx.Client(base_url=served.url, timeout=30) as c:
        health = c.get("/health").json()
        assert health == {"status": "ok", "chain": "laser", "collection": "demo", "model": "smollm2-135m-instruct"}
        spec = c.get("/openapi.json").json()
        assert {"/health", "/ask", "/ask/stream", "/run", "/run/stream"} <= set(spec["paths"])
        assert "swagger" in c.get("/docs").text.lower()


def test_ask_answers_with_sources(served):
    r = httpx.post(f"{served.url}/ask", json={"question": "Who gives the laser safety training?", "max_tokens": 32}, timeout=120)
    assert r.status_code == 200
    body = r.json()
    assert body["answer"].strip()
    assert body["sources"] and any(s["source"].endswith("safety.pdf") for s in body["sources"])
    assert all(set(s) >= {"number", "source", "score", "text"} for s in body["sources"])


def test_stream_sends_tokens_then_the_answer(served):
    body = {"question": "How many nodes does the Heron GPU cluster have?", "max_tokens": 24, "format": "text"}
    with httpx.stream("POST", f"{served.url}/ask/stream", json=body, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    kinds = [name for name, _ in events]
    assert kinds[-1] == "answer" and kinds.count("token") >= 2
    streamed = "".join(data["text"] for name, data in events if name == "token")
    assert streamed.strip() and events[-1][1]["sources"]
    assert events[-1][1]["answer"].strip() in streamed or streamed.strip().startswith(events[-1][1]["answer"].strip()[:10])


def test_a_question_streams_its_quote_by_default(served):
    """format "auto": the model replies unseen, then the sentence of the passages that says it comes as one token."""
    body = {"question": "How many nodes does the Heron GPU cluster have?", "max_tokens": 24}
    with httpx.stream("POST", f"{served.url}/ask/stream", json=body, timeout=120) as r:
        events = sse_events(r)
    assert [name for name, _ in events] == ["token", "answer"]
    answer = events[-1][1]
    assert events[0][1]["text"].strip() == answer["answer"].strip() and "8" in answer["answer"] and answer["answer"].endswith("[1]")
    assert httpx.post(f"{served.url}/ask", json={**body, "format": "nonsense"}, timeout=60).status_code == 400


def test_chain_run_and_stream(served):
    r = httpx.post(f"{served.url}/run", json={"inputs": {"topic": "laser safety training"}}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["chain"] == "laser" and r.json()["output"].strip()
    assert any(s["source"].endswith("safety.pdf") for s in r.json()["sources"])
    with httpx.stream("POST", f"{served.url}/run/stream", json={"inputs": {"topic": "backups"}}, timeout=120) as s:
        events = sse_events(s)
    assert events[-1][0] == "output" and any(name == "token" for name, _ in events)


def test_twenty_concurrent_requests_all_succeed(served):
    results: list[int] = []

    def one(i: int) -> None:
        r = httpx.post(f"{served.url}/ask", json={"question": f"What is in the handbook about topic {i}?", "max_tokens": 4, "k": 1}, timeout=300)
        results.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 20


def test_bad_requests_are_4xx_not_crashes(served):
    with httpx.Client(base_url=served.url, timeout=60) as c:
        assert c.post("/ask", json={"question": ""}).status_code == 422
        assert c.post("/ask", json={"k": 3}).status_code == 422
        r = c.post("/ask", json={"question": "anything", "chain_type": "nonsense"})
        assert r.status_code == 400 and "nonsense" in r.json()["detail"]
        with c.stream("POST", "/ask/stream", json={"question": "anything", "chain_type": "nonsense"}) as s:
            events = sse_events(s)
        assert events[-1][0] == "error" and "nonsense" in events[-1][1]["error"]
        assert c.get("/health").status_code == 200  # still serving


def test_usage_errors(settings, port):
    with pytest.raises(UsageError, match="No chain 'nope'|nope"):
        serve.serve("nope", port=port)
    first = serve.serve(None, port=port)
    try:
        with pytest.raises(UsageError, match="Already serving"):
            serve.serve(None, port=port)
        with pytest.raises(UsageError, match="Nothing is served on port"):
            serve.stop(port + 1 if port < 65535 else port - 1)
    finally:
        serve.stop(first.port)
    assert serve.running() == []
