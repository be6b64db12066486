"""``%chain serve`` / ``llm-magics serve``: /ask over HTTP against ``ask()`` in-process.

    .venv/bin/python bench/bench_serve.py [--requests 20] [--concurrency 4] [--repeats 5]

Measures, with the default model (SmolLM2-135M-Instruct) on the bundled demo documents:

- latency of one ``POST /ask`` against the same ``ask()`` called in-process (the HTTP and
  JSON overhead, as a ratio), alternating, median of ``--repeats``;
- the SSE stream's first ``token`` event as the client sees it, against the model's own
  first token (``Answer.timings["first_token"]``, measured inside the server): the
  difference bounds what streaming adds;
- throughput and latency p50/p99 for ``--requests`` requests sent ``--concurrency`` at a
  time (generations run one at a time; the rest queue).

Writes bench/results_serve.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx

QUESTIONS = [
    "Who gives the laser safety training?",
    "How many nodes does the Heron GPU cluster have?",
    "Who gives out access badges, and where?",
    "When are fire drills held?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def first_sse_token(url: str, question: str, max_tokens: int) -> tuple[float, float]:
    """(seconds until the first token event, the server's model first-token time)."""
    start = time.perf_counter()
    first = None
    answer = None
    with httpx.stream("POST", f"{url}/ask/stream", json={"question": question, "max_tokens": max_tokens}, timeout=300) as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                if event == "token" and first is None:
                    first = time.perf_counter() - start
                elif event == "answer":
                    answer = json.loads(line[6:])
    return first, answer["timings"].get("answer_first_token", answer["timings"].get("first_token", 0.0))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--out", default=str(Path(__file__).with_name("results_serve.md")))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from llm_magics import Index, ask, config, serve
    from llm_magics.demo import DATA

    s = config.settings()
    s.store_path = tempfile.mkdtemp(prefix="bench-serve-")
    s.collection = "demo"
    s.progress = False
    Index("demo").add([str(DATA)], recursive=True)
    ask(QUESTIONS[0], memory=None, max_tokens=4)  # warm-up: load the models
    port = free_port()
    running = serve.serve(None, port=port)
    url = running.url
    try:
        httpx.post(f"{url}/ask", json={"question": QUESTIONS[0], "max_tokens": 4}, timeout=300)  # warm-up

        direct, http = [], []
        for i in range(args.repeats):  # alternate A, B
            q = QUESTIONS[i % len(QUESTIONS)]
            t = time.perf_counter()
            ask(q, memory=None, max_tokens=args.max_tokens)
            direct.append(time.perf_counter() - t)
            t = time.perf_counter()
            r = httpx.post(f"{url}/ask", json={"question": q, "max_tokens": args.max_tokens}, timeout=300)
            http.append(time.perf_counter() - t)
            r.raise_for_status()

        sse_gap = []
        for i in range(args.repeats):
            client_first, model_first = first_sse_token(url, QUESTIONS[i % len(QUESTIONS)], args.max_tokens)
            sse_gap.append(client_first - model_first)

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        todo = list(range(args.requests))

        def worker():
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                t = time.perf_counter()
                try:
                    r = httpx.post(f"{url}/ask", json={"question": QUESTIONS[i % len(QUESTIONS)], "max_tokens": args.max_tokens}, timeout=600)
                    r.raise_for_status()
                    with lock:
                        latencies.append(time.perf_counter() - t)
                except Exception as e:  # counted, reported
                    with lock:
                        errors.append(repr(e))

        start = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        serve.stop()

    d, h = statistics.median(direct), statistics.median(http)
    rows = [
        ("one answer, latency (median)", f"{d * 1000:.0f} ms (ask() in-process)", f"{h * 1000:.0f} ms (POST /ask)", f"{h / d:.3f}"),
        ("SSE first token after the model's first token (median, includes the request)", "", f"{statistics.median(sse_gap) * 1000:.1f} ms", ""),
        (f"{args.requests} requests, {args.concurrency} at a time", "", f"{len(latencies) / wall:.2f} req/s, p50 {percentile(latencies, 0.5):.2f} s, p99 {percentile(latencies, 0.99):.2f} s, {len(errors)} errors", ""),
    ]
    lines = [
        "# `%chain serve`: /ask over HTTP vs `ask()` in-process",
        "",
        f"`.venv/bin/python bench/bench_serve.py --requests {args.requests} --concurrency {args.concurrency} --repeats {args.repeats}` — {date.today()}, "
        f"SmolLM2-135M-Instruct, {args.max_tokens} new tokens, 2 threads, demo documents. Machine: 2 shared vCPUs.",
        "",
        "| measure | in-process | HTTP | ratio HTTP/in-process |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {r} |" for a, b, c, r in rows],
        "",
        "Generations run one at a time (a lock): concurrent requests queue rather than slow each other down, so",
        "throughput is the model's; p99 grows with the queue. Errors: " + (", ".join(errors[:3]) or "none") + ".",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
