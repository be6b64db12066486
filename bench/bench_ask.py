"""``%%ask`` benchmark: overhead outside model time at 10k chunks, and the default model's speed.

    .venv/bin/python bench/bench_ask.py            # writes bench/results_ask.md
    .venv/bin/python bench/bench_ask.py --smoke    # tiny run that keeps the script working (CI)

**Overhead** (goal: under 50 ms at 10k chunks). A real ``InteractiveShell`` runs
``%%ask --collection bench --k 4`` against a persistent Chroma collection of 10k chunks
embedded with the default embedder (all-MiniLM-L6-v2). The model is an instant backend
plugin (it yields a fixed 32-token answer with no compute), so the cell's wall time is
everything but model time: argument parsing, Jinja2 interpolation, query embedding,
Chroma search, threshold filter, prompt building and packing, callbacks, streaming
display updates, grounding check, citations and the final display formatting.

Peer, same run, alternating: the plain LangChain-style baseline, i.e. the same embedder
object embeds the query, raw ``chromadb`` ``collection.query(n_results=4)`` on the same
collection, an f-string prompt, and the same instant backend, with no display. The ratio
shows what the magic costs beyond that bare minimum. A second row times ``ask()`` (the
Python API, no display) against the same peer.

**Default model**: time to first token and decode tokens/s of SmolLM2-135M-Instruct
through ``ask()`` (stuff, k=2, max 64 tokens, greedy) on the bundled demo documents, against
the same backend's ``stream()`` called directly with the identical messages.

Medians over alternating repeats after a warm-up; 2 torch threads unless --threads says otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
CACHE = Path(os.environ.get("LLM_MAGICS_BENCH_CACHE", Path.home() / ".cache" / "llm_magics" / "bench"))
QUESTION = "Which room stores the archive of project Heron?"
ANSWER = ("The archive of project Heron is stored in room B214, next to the server cabinet, "
          "and is backed up every night by the lab manager. ")


def instant_plugin():
    """An instant backend plugin: the 'model' costs nothing, so what remains is overhead."""
    from llm_magics.backends.base import Backend
    from llm_magics.hookspecs import hookimpl

    class Instant(Backend):
        name = "instant"
        default_model = "instant"

        @property
        def context_window(self) -> int:
            return 8192

        def stream(self, messages, params, usage):
            for word in ANSWER.split(" ")[: params.max_tokens]:
                usage.completion_tokens += 1
                yield word + " "
            usage.finish_reason = "stop"

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register(Instant)

    return Plugin()


# ─── corpus ──────────────────────────────────────────────────────────────────

WORDS = dict(
    thing=["archive", "budget", "dataset", "prototype", "report", "poster", "server", "badge", "microscope", "laser"],
    project=["Heron", "Osprey", "Falcon", "Kestrel", "Merlin", "Harrier", "Condor", "Swift", "Petrel", "Egret"],
    verb=["is stored in", "is kept in", "was moved to", "is reviewed in", "is assembled in"],
    extra=["It is backed up every night.", "Ask the lab manager before moving it.", "Access needs a badge.",
           "It was renovated last spring.", "Visitors must sign in first.", "The room is locked after 18:00."],
)


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        w = {k: rng.choice(v) for k, v in WORDS.items()}
        room = f"{rng.choice('ABCDE')}{rng.randint(100, 399)}"
        out.append(f"Record {i}. The {w['thing']} of project {w['project']} {w['verb']} room {room}. {w['extra']} "
                   f"Contact person number {rng.randint(1, 500)} handles questions about it.")
    out[n // 2] = "The archive of project Heron is stored in room B214, next to the server cabinet. It is backed up every night."
    return out


def build_index(n: int, path: Path):
    """A persistent Chroma collection with ``n`` chunks (one paragraph each), reused if present."""
    from llm_magics.ingest.index import Index

    index = Index(collection="bench", store="chroma", path=str(path))
    if index.store.count() >= n:
        return index, 0.0
    docs = path.parent / f"ask_docs_{n}"
    docs.mkdir(parents=True, exist_ok=True)
    texts = corpus(n)
    per_file = 100
    for f in range(0, n, per_file):
        (docs / f"records_{f // per_file:04d}.txt").write_text("\n\n".join(texts[f: f + per_file]), encoding="utf-8")
    t0 = time.perf_counter()
    index.add(str(docs), chunk_size=200, chunk_overlap=0, progress=True)
    return index, time.perf_counter() - t0


# ─── measurements ────────────────────────────────────────────────────────────


def peer_once(embedder, collection, backend, question: str, k: int = 4) -> float:
    """Plain baseline: embed, raw chromadb query, f-string prompt, same instant model."""
    from llm_magics.backends.base import GenerationParams, Usage

    t0 = time.perf_counter()
    vector = embedder.embed_query(question)
    res = collection.query(query_embeddings=[vector.tolist()], n_results=k)
    context = "\n\n".join(res["documents"][0])
    prompt = f"Context:\n{context}\n\nQuestion: {question}\nAnswer the question using the context."
    "".join(backend.stream([{"role": "user", "content": prompt}], GenerationParams(max_tokens=64), Usage()))
    return time.perf_counter() - t0


def overhead(index, repeats: int) -> tuple[list[dict], dict]:
    from IPython.core.interactiveshell import InteractiveShell

    from llm_magics.qa.pipeline import ask
    from llm_magics.backends import get_model
    from llm_magics.magics.ask import AskMagics

    shell = InteractiveShell.instance()
    shell.register_magics(AskMagics(shell))
    published = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: published.append(len(str(data)))
    shell.displayhook.write_format_data = lambda format_dict, md_dict=None: published.append(len(str(format_dict)))
    shell.displayhook.write_output_prompt = lambda: None
    shell.user_ns["project"] = "Heron"
    cell = "%%ask --collection bench --k 4 --model instant --no-history --max-tokens 64\nWhich room stores the archive of project {{ project }}?"
    backend = get_model("instant")
    embedder, collection = index.embedder, index.store.col

    def magic_once():
        t0 = time.perf_counter()
        result = shell.run_cell(cell, store_history=False)
        result.raise_error()
        return time.perf_counter() - t0, result.result

    def api_once():
        t0 = time.perf_counter()
        a = ask(QUESTION, index=index, model=backend, k=4, max_tokens=64, memory=None)
        return time.perf_counter() - t0, a

    for _ in range(3):  # warm-up: imports, templates, Chroma caches
        magic_once(), api_once(), peer_once(embedder, collection, backend, QUESTION)
    magic, api, peer, parts = [], [], [], []
    for _ in range(repeats):
        t, a = magic_once()
        magic.append(t)
        parts.append(a.timings)
        peer.append(peer_once(embedder, collection, backend, QUESTION))
        api.append(api_once()[0])
        peer.append(peer_once(embedder, collection, backend, QUESTION))
    assert any("B214" in s.text for s in a.sources), [s.text for s in a.sources]  # the planted record is retrieved
    rows = [
        {"what": "`%%ask` cell, instant model (ms)", "ours": 1e3 * statistics.median(magic), "peer": 1e3 * statistics.median(peer)},
        {"what": "`ask()` API, instant model (ms)", "ours": 1e3 * statistics.median(api), "peer": 1e3 * statistics.median(peer)},
    ]
    breakdown = {k: 1e3 * statistics.median(p.get(k, 0.0) for p in parts) for k in ("retrieval", "llm", "total", "overhead")}
    return rows, breakdown


def model_speed(repeats: int, store: Path) -> list[dict]:
    from llm_magics.qa.pipeline import STOP, ask
    from llm_magics.backends import get_model
    from llm_magics.backends.base import GenerationParams, Usage
    from llm_magics.demo import DATA
    from llm_magics.ingest.index import Index

    index = Index(collection="bench_demo", store="chroma", path=str(store))
    index.add([str(DATA / n) for n in ("handbook.md", "faq.txt", "safety.pdf")], progress=False)
    t0 = time.perf_counter()
    backend = get_model()
    backend.complete("Hi", GenerationParams(max_tokens=1))
    load_s = time.perf_counter() - t0
    question = "Who gives the laser safety training?"

    def ours():
        a = ask(question, index=index, model=backend, k=2, max_tokens=64, temperature=0.0, memory=None)
        return a.timings["first_token"], a.usage.completion_tokens, a.timings["llm"], a.prompts[0]["messages"], a.timings["total"]

    def direct(messages):
        usage, t0, first = Usage(), time.perf_counter(), None
        n = 0
        for _piece in backend.stream(messages, GenerationParams(max_tokens=64, temperature=0.0, stop=STOP), usage):
            first = first or time.perf_counter() - t0
            n += 1
        total = time.perf_counter() - t0
        return first, usage.completion_tokens or n, total

    _, _, _, messages, _ = ours()  # warm-up, and the exact prompt for the direct call
    direct(messages)
    o_ttft, o_tps, d_ttft, d_tps, totals = [], [], [], [], []
    for _ in range(repeats):
        ttft, n, llm_s, _, total = ours()
        o_ttft.append(ttft)
        o_tps.append((n - 1) / max(1e-9, llm_s - ttft))
        totals.append(total)
        ttft, n, total = direct(messages)
        d_ttft.append(ttft)
        d_tps.append((n - 1) / max(1e-9, total - ttft))
    med = statistics.median
    return [
        {"what": "time to first token, SmolLM2-135M (ms)", "ours": 1e3 * med(o_ttft), "peer": 1e3 * med(d_ttft)},
        {"what": "decode tokens/s, SmolLM2-135M", "ours": med(o_tps), "peer": med(d_tps)},
        {"what": "whole `ask()` with the model (ms)", "ours": 1e3 * med(totals), "peer": float("nan")},
        {"what": "model load + first call (s, once)", "ours": load_s, "peer": float("nan")},
    ]


def table(rows: list[dict]) -> str:
    lines = ["| measure | ours | peer | ratio ours/peer |", "| --- | ---: | ---: | ---: |"]
    for r in rows:
        ratio = r["ours"] / r["peer"] if r["peer"] == r["peer"] and r["peer"] else float("nan")
        peer = f"{r['peer']:.1f}" if r["peer"] == r["peer"] else "–"
        lines.append(f"| {r['what']} | {r['ours']:.1f} | {peer} | {'–' if ratio != ratio else f'{ratio:.2f}'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="200 chunks, 2 repeats, no results file.")
    parser.add_argument("--no-model", action="store_true", help="Skip the SmolLM2 speed rows.")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, the same for both sides (BENCH.md: 2).")
    args = parser.parse_args(argv)
    if args.smoke:
        args.chunks, args.repeats = 200, 2

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from llm_magics import config, plugins

    config.settings().progress = not args.smoke
    config.settings().store_path = str(CACHE / f"ask_store_{args.chunks}")  # so --collection bench finds it
    plugins.register(instant_plugin(), "bench-instant-backend")
    store = CACHE / f"ask_store_{args.chunks}"
    index, build_s = build_index(args.chunks, store)
    n = index.store.count()
    print(f"collection: {n} chunks" + (f" (built in {build_s:.0f}s)" if build_s else " (cached)"), flush=True)
    rows, breakdown = overhead(index, args.repeats)
    print(table(rows))
    print("ask() timings, median ms: " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items()), flush=True)
    if not args.no_model:
        speed = model_speed(args.repeats if not args.smoke else 1, CACHE / "ask_demo_store")
        print(table(speed))
        rows += speed
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    print(f"peak RSS {peak:.0f} MB; load average {load:.1f} on {os.cpu_count()} CPUs")
    if args.smoke:
        return 0
    out = HERE / "results_ask.md"
    out.write_text(
        f"# %%ask benchmark ({date.today().isoformat()})\n\n"
        f"Command: `.venv/bin/python bench/bench_ask.py --chunks {args.chunks} --repeats {args.repeats}`; "
        f"{n} chunks in a persistent Chroma collection, all-MiniLM-L6-v2 query embedding, k=4, {args.threads} torch thread(s), "
        f"medians of {args.repeats} alternating repeats after warm-up.\n\n"
        "Overhead rows: the model is an instant backend, so the time is everything except the model. "
        "Peer: same embedder + raw `chromadb` `query` + f-string prompt + same instant model, no display. "
        "Model rows: peer is the same backend's `stream()` called directly with the identical messages.\n\n"
        + table(rows)
        + "\n\n`ask()` timings at this size (median ms): " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items())
        + f"\n\nPeak RSS: {peak:.0f} MB. Load average at the end: {load:.1f} on {os.cpu_count()} CPUs "
        "(a shared machine: other jobs were running).\n",
        encoding="utf-8",
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
