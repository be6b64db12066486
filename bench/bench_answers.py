"""Retrieval and answer quality on several real corpora, at an equal context budget, against LangChain.

    .venv/bin/python bench/corpora/fetch.py                      # once: corpora from Debian packages
    .venv/bin/python bench/bench_answers.py                      # writes bench/results_answers.md
    .venv/bin/python bench/bench_answers.py --no-answers --configs base,hybrid,hybrid+expand1
    .venv/bin/python bench/bench_answers.py --corpora r-faq --questions 5 --no-answers   # smoke

Corpora (bench/corpora/<name>/, see fetch.py): questions written by hand from the documents,
independently of any chunker, each with the exact phrase that answers it, short gold answers
and the source file. ``git-manual`` is **held out**: defaults were chosen on the others.

Both sides hand the model at most ``--budget`` tokens of context (counted with the generator's
tokenizer): hits are taken best first until the budget is full, the last one cut to fit.

* **hit@budget**: the answer phrase is inside the context handed on (whitespace, case and quote
  style normalised); **MRR**: 1/rank of the first hit holding it, among those that fit.
* **answer accuracy**: a gold answer (normalised) appears in the reply; **citation accuracy**:
  a source the answer cites holds the answer phrase (LangChain's stuff chain cites nothing).

Ours: ``Index.add`` (our loaders, the markdown splitter) and ``Index.search`` with the
retrieval settings of each ``--configs`` entry; answers by ``ask(..., hits=...)``.
Peer: LangChain's usual pipeline: BSHTMLLoader / PyPDFLoader, RecursiveCharacterTextSplitter
(1000, 200), the same MiniLM embedder wrapped as LangChain ``Embeddings``, ``langchain_chroma``,
``similarity_search``; answers by an LCEL ``stuff`` chain (RetrievalQA's chat prompt, the
documents joined by blank lines) on the same local model, wrapped as a LangChain chat model,
with the same generation parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "corpora"))
CACHE = Path(os.environ.get("LLM_MAGICS_BENCH_CACHE", Path.home() / ".cache" / "llm_magics" / "bench_answers"))

#: Our retrieval variants: splitter settings (decide the ingest) + search settings.
CONFIGS = {
    "base": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="dense", expand=0),
    "hybrid": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="hybrid", expand=0),
    "expand1": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="dense", expand=1),
    "hybrid+expand1": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="hybrid", expand=1),
    "md800": dict(splitter="markdown", chunk_size=800, chunk_overlap=100, mode="dense", expand=0),
    "hybrid+md800": dict(splitter="markdown", chunk_size=800, chunk_overlap=100, mode="hybrid", expand=0),
    "hybrid+md200+expand2": dict(splitter="markdown", chunk_size=200, chunk_overlap=0, mode="hybrid", expand=2),
    # the document title and section path embedded with each chunk (LLMMagics.embed_headings; the stored text unchanged)
    "expand1+headings": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="dense", expand=1, headings=True),
    "hybrid+expand1+headings": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="hybrid", expand=1, headings=True),
    # the fusion named (the entries above use the library's default, LLMMagics.fusion: convex since 2026-12-02)
    "rrf+expand1+headings": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="hybrid", fusion="rrf", expand=1, headings=True),
    "convex+expand1+headings": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="hybrid", fusion="convex", expand=1, headings=True),
    "convex+expand2+headings": dict(splitter="markdown", chunk_size=400, chunk_overlap=60, mode="hybrid", fusion="convex", expand=2, headings=True),
}


#: Prompt sets for ``--prompt`` (system prompt, ``stuff`` template): "current" is what the
#: package ships (``stuff`` with the passages in the system message, RetrievalQA's layout);
#: the others put them in the user's turn, and are kept so the before/after can be measured again.
PROMPTS = {
    "current": None,
    "context-in-system": None,  # the same as "current" since it became the default
    "context-in-user": None,  # the package's own templates, with Stuff(context="user")
    "before": (  # the prompts before issue #10
        "You answer questions using only the given context. Answer in one or two short sentences. "
        "If the context does not contain the answer, say: I don't know.",
        "Context:\n{% for c in chunks %}[{{ c.number }}] {{ c.text }}\n\n{% endfor %}"
        "Question: {{ question }}\nAnswer the question using the context."
        "{% if instructions %}\n{{ instructions }}{% endif %}",
    ),
    "extractive": (
        "You answer questions from the numbered passages you are given. Answer with the exact words "
        "from the passage that holds the answer (a name, a number, a command or a short phrase), in one "
        "short sentence. Write the passage number in brackets after the answer, like [2]. "
        "If no passage holds the answer, reply only: I don't know.",
        "Passages:\n{% for c in chunks %}[{{ c.number }}] {{ c.text }}\n\n{% endfor %}"
        "Question: {{ question }}\nAnswer in a few words copied from the passages, then the passage number like [1]. "
        "If the passages do not answer it, say: I don't know."
        "{% if instructions %}\n{{ instructions }}{% endif %}",
    ),
    "extractive-q-first": (
        "You answer questions from the numbered passages you are given. Answer with the exact words "
        "from the passage that holds the answer (a name, a number, a command or a short phrase), in one "
        "short sentence. Write the passage number in brackets after the answer, like [2]. "
        "If no passage holds the answer, reply only: I don't know.",
        "Question: {{ question }}\n\nPassages:\n{% for c in chunks %}[{{ c.number }}] {{ c.text }}\n\n{% endfor %}"
        "Question: {{ question }}\nAnswer in a few words copied from the passages, then the passage number like [1]. "
        "If the passages do not answer it, say: I don't know."
        "{% if instructions %}\n{{ instructions }}{% endif %}",
    ),
}


def use_prompts(name: str) -> None:
    """Make ``ask`` use prompt set ``name`` in this process (the benchmark's ablation switch)."""
    if name in ("current", "context-in-system"):
        return
    from typing import Literal

    from llm_magics.qa.chain_types import base, builtin, prompts

    class UserContext(builtin.Stuff.Options):
        context: Literal["system", "user"] = "user"

    builtin.Stuff.Options = UserContext
    if PROMPTS[name] is None:
        return
    system, stuff = PROMPTS[name]
    prompts.TEMPLATES["stuff"] = stuff
    defaults = list(base.LLM.__init__.__defaults__)
    defaults[-1] = system
    base.LLM.__init__.__defaults__ = tuple(defaults)


def norm(text: str) -> str:
    """Lower case, one quote style, no whitespace: PDF and HTML text compare alike."""
    table = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "`": "'"})
    return "".join(text.translate(table).lower().split())


def load_questions(name: str, n: int | None) -> list[dict]:
    rows = [json.loads(line) for line in open(HERE / "corpora" / name / "questions.jsonl", encoding="utf-8") if line.strip()]
    return rows[:n] if n else rows


# ---------------------------------------------------------------------------
# The two pipelines
# ---------------------------------------------------------------------------


def ours_index(name: str, docs: Path, cfg: dict, embedder):
    from llm_magics import Index

    key = f"{cfg['splitter']}-{cfg['chunk_size']}-{cfg['chunk_overlap']}" + ("-headings" if cfg.get("headings") else "")
    key += "" if embedder.options.dtype == "float32" else f"-{embedder.options.dtype}"  # vectors of another dtype: another collection
    index = Index(collection=f"{name}-{key}", store="chroma", embedder=embedder, path=str(CACHE / "ours"))
    t0 = time.perf_counter()
    # the real path: a run from another checkout (a worktree whose docs link here) finds the same sources, not new copies
    report = index.add(str(docs.resolve()), splitter=cfg["splitter"], chunk_size=cfg["chunk_size"], chunk_overlap=cfg["chunk_overlap"], recursive=True, progress=False,
                       headings=cfg.get("headings", False))
    return index, {"seconds": time.perf_counter() - t0, "added": report.chunks_added, "chunks": index.store.count()}


def ours_search(index, question: str, cfg: dict, budget: int, count) -> list:
    return index.search(question, mode=cfg["mode"], expand=cfg["expand"], budget=budget, count_tokens=count, fusion=cfg.get("fusion"))


def langchain_embeddings(embedder):
    from langchain_core.embeddings import Embeddings

    class SameEmbedder(Embeddings):
        """LangChain's Embeddings interface over the very embedder our side uses."""

        def embed_documents(self, texts):
            return embedder.embed(list(texts)).tolist()

        def embed_query(self, text):
            return embedder.embed_query(text).tolist()

    return SameEmbedder()


def peer_index(name: str, docs: Path, embedder):
    from langchain_chroma import Chroma
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader
    folder = CACHE / "peer" / name
    db = Chroma(collection_name=name, embedding_function=langchain_embeddings(embedder), persist_directory=str(folder))
    t0 = time.perf_counter()
    if not db._collection.count():
        loaded = []
        for f in sorted(docs.iterdir()):
            if f.suffix == ".html":  # lxml is not installed; html.parser is BeautifulSoup's own
                loaded.extend(BSHTMLLoader(str(f), open_encoding="utf-8", bs_kwargs={"features": "html.parser"}).load())
            elif f.suffix == ".pdf":
                loaded.extend(PyPDFLoader(str(f)).load())
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True).split_documents(loaded)
        for i in range(0, len(chunks), 2000):
            db.add_documents(chunks[i: i + 2000])
    return db, {"seconds": time.perf_counter() - t0, "chunks": db._collection.count()}


def peer_search(db, question: str, budget: int, count) -> list:
    from llm_magics.ingest.documents import Hit
    from llm_magics.ingest.retrieval import pack

    docs = db.similarity_search(question, k=20)
    return pack([Hit(d.page_content, 0.0, dict(d.metadata)) for d in docs], budget, count)


def peer_chat_model(backend, params):
    """The same local model as a LangChain chat model (so the peer's chain runs on it)."""
    from langchain_core.language_models.chat_models import SimpleChatModel

    from llm_magics.backends.base import Usage

    roles = {"system": "system", "human": "user", "ai": "assistant"}

    class LocalChat(SimpleChatModel):
        @property
        def _llm_type(self) -> str:
            return "llm-magics-local"

        def _call(self, messages, stop=None, run_manager=None, **kwargs) -> str:
            msgs = [{"role": roles.get(m.type, "user"), "content": m.content} for m in messages]
            return "".join(backend.stream(msgs, params, Usage()))

    return LocalChat()


def peer_chain(backend, params):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    # RetrievalQA's `stuff` chat prompt (langchain.chains.retrieval_qa / question_answering).
    system = ("Use the following pieces of context to answer the user's question. \n"
              "If you don't know the answer, just say that you don't know, don't try to make up an answer.\n"
              "----------------\n{context}")
    prompt = ChatPromptTemplate.from_messages([("system", system), ("human", "{question}")])
    return prompt | peer_chat_model(backend, params) | StrOutputParser()


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------


def retrieval_row(hits_per_q: list[list], qs: list[dict], count) -> dict:
    hits = rr = 0.0
    chunks, tokens = [], []
    for hs, q in zip(hits_per_q, qs):
        phrase = norm(q["answer_phrase"])
        rank = next((i for i, h in enumerate(hs, 1) if phrase in norm(h.text)), None)
        hits += rank is not None
        rr += 1.0 / rank if rank else 0.0
        chunks.append(len(hs))
        tokens.append(sum(count(h.text) for h in hs))
    n = len(qs) or 1
    return {"hit": hits / n, "mrr": rr / n, "chunks": statistics.mean(chunks or [0]), "tokens": statistics.mean(tokens or [0])}


def gold_in(reply: str, q: dict) -> bool:
    r = norm(reply)
    return any(norm(g) in r for g in q["gold"])


def answer_ours(questions, hits_per_q, backend, max_tokens, format="text"):
    """Our answers; with ``format="quote"`` the model's own reply (the same prompt) is scored too, as ``generated_ok``."""
    from llm_magics import ask

    out = []
    for q, hits in zip(questions, hits_per_q):
        t0 = time.perf_counter()
        a = ask(q["question"], hits=hits, model=backend, memory=None, max_tokens=max_tokens, temperature=0.0, format=format)
        phrase = norm(q["answer_phrase"])
        cited = any(phrase in norm(s.text) for s in a.cited)
        out.append({"id": q["id"], "reply": a.answer, "raw": a.raw, "ok": gold_in(a.answer, q), "cited_ok": cited, "seconds": time.perf_counter() - t0})
        if format == "quote":
            generated = a.extras.get("generated", a.answer)
            out[-1].update(generated=generated, generated_ok=gold_in(generated, q))
        print(f"  ours {q['id']}: {'ok ' if out[-1]['ok'] else 'no '} {a.answer[:100]!r}", file=sys.stderr, flush=True)
    return out


def answer_samples(questions, hits_per_q, backend, max_tokens, n):
    """Ours with ``samples=n`` (self-consistency at temperature 0.7): the majority answer and its agreement."""
    from llm_magics import ask

    out = []
    for q, hits in zip(questions, hits_per_q):
        t0 = time.perf_counter()
        a = ask(q["question"], hits=hits, model=backend, memory=None, max_tokens=max_tokens, samples=n)
        out.append({"id": q["id"], "reply": a.answer, "ok": gold_in(a.answer, q), "agreement": a.extras["agreement"],
                    "any_ok": any(gold_in(x, q) for x in a.extras["samples"]), "seconds": time.perf_counter() - t0})  # fmt: skip
        print(f"  samples {q['id']}: {'ok ' if out[-1]['ok'] else 'no '} agreement {a.extras['agreement']:.2f} {a.answer[:80]!r}", file=sys.stderr, flush=True)
    return out


def answer_peer(questions, hits_per_q, chain):
    out = []
    for q, hits in zip(questions, hits_per_q):
        t0 = time.perf_counter()
        reply = chain.invoke({"context": "\n\n".join(h.text for h in hits), "question": q["question"]})
        out.append({"id": q["id"], "reply": reply, "ok": gold_in(reply, q), "cited_ok": None, "seconds": time.perf_counter() - t0})
        print(f"  peer {q['id']}: {'ok ' if out[-1]['ok'] else 'no '} {reply[:100]!r}", file=sys.stderr, flush=True)
    return out


def phrase_check(name: str, docs: Path) -> tuple[int, int, int]:
    """How many answer phrases occur in our loaders' text and in LangChain's loaders' text."""
    from llm_magics.ingest.loaders import choose

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader
    ours, peer = [], []
    for f in sorted(docs.iterdir()):
        cls, _ = choose(str(f), None)
        ours.extend(d.text for d in cls().load(str(f)))
        loader = BSHTMLLoader(str(f), open_encoding="utf-8", bs_kwargs={"features": "html.parser"}) if f.suffix == ".html" else PyPDFLoader(str(f))
        peer.extend(d.page_content for d in loader.load())
    a, b = norm("\n".join(ours)), norm("\n".join(peer))
    qs = load_questions(name, None)
    missing = [q["id"] for q in qs if norm(q["answer_phrase"]) not in a or norm(q["answer_phrase"]) not in b]
    if missing:
        print(f"{name}: answer phrase not in the loaded text: {', '.join(missing)}", file=sys.stderr)
    return len(qs), sum(norm(q["answer_phrase"]) in a for q in qs), sum(norm(q["answer_phrase"]) in b for q in qs)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def fmt(x, digits=3):
    return "" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def main(argv=None) -> int:
    import fetch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=",".join(fetch.CORPORA), help="comma-separated corpus names (bench/corpora/fetch.py)")
    ap.add_argument("--budget", type=int, default=1000, help="context tokens handed to the model (generator's tokenizer)")
    ap.add_argument("--model", default=None, help="generator (default: the configured model)")
    ap.add_argument("--questions", "--max-questions", type=int, default=None, help="first N questions per corpus")
    ap.add_argument("--answer-questions", type=int, default=None, help="first N of those also answered (default: all)")
    ap.add_argument("--no-answers", action="store_true", help="retrieval only")
    ap.add_argument("--configs", default="base,hybrid,hybrid+expand1", help=f"our retrieval variants: {', '.join(CONFIGS)}")
    ap.add_argument("--answer-config", default=None, help="the variant whose answers are measured (default: the last of --configs)")
    ap.add_argument("--max-tokens", type=int, default=64, help="longest answer, both sides")
    ap.add_argument("--prompt", default="current", choices=list(PROMPTS), help="our prompt set (ablation)")
    ap.add_argument("--no-peer-answers", action="store_true", help="answer with our side only (prompt ablations)")
    ap.add_argument("--format", default="text", choices=["text", "quote"], help="our answers' --format (quote: also scores the model's own reply)")
    ap.add_argument("--samples", type=int, default=0, help="also answer with ask(samples=N) (self-consistency) and report its effect on accuracy")
    ap.add_argument("--out", default=str(HERE / "results_answers.md"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(2)
    from llm_magics import backends, config
    from llm_magics.backends.base import GenerationParams
    from llm_magics.ingest.embedders import get_embedder
    from llm_magics.qa.pipeline import STOP

    config.settings().progress = False
    use_prompts(args.prompt)
    embedder = get_embedder()
    # The peer embeds in float32, as LangChain's HuggingFaceEmbeddings does by default (the same MiniLM); ours
    # keeps its default dtype ("auto": bfloat16 where the CPU has bf16 units).
    peer_embedder = get_embedder(dtype="float32")
    backend = backends.get_model(args.model)
    count = backend.count_tokens
    configs = args.configs.split(",")
    answer_cfg = args.answer_config or configs[-1]
    corpora = args.corpora.split(",")
    rows, answers, ingest, checks = {}, {}, {}, {}
    for name in corpora:
        docs = fetch.fetch(name)
        checks[name] = phrase_check(name, docs)
        qs = load_questions(name, args.questions)
        size = sum(f.stat().st_size for f in docs.iterdir())
        db, info = peer_index(name, docs, peer_embedder)
        ingest[(name, "langchain")] = {**info, "bytes": size}
        peer_hits = [peer_search(db, q["question"], args.budget, count) for q in qs]
        rows[(name, "langchain")] = retrieval_row(peer_hits, qs, count)
        ours_hits = {}
        for c in configs:
            index, info = ours_index(name, docs, CONFIGS[c], embedder)
            ingest.setdefault((name, f"ours {CONFIGS[c]['splitter']} {CONFIGS[c]['chunk_size']}/{CONFIGS[c]['chunk_overlap']}"), {**info, "bytes": size})
            ours_hits[c] = [ours_search(index, q["question"], CONFIGS[c], args.budget, count) for q in qs]
            rows[(name, c)] = retrieval_row(ours_hits[c], qs, count)
            print(name, c, rows[(name, c)], "langchain", rows[(name, "langchain")], file=sys.stderr)
        if not args.no_answers:
            aq = qs[: args.answer_questions] if args.answer_questions else qs
            params = GenerationParams(temperature=0.0, max_tokens=args.max_tokens, stop=STOP)
            answers[(name, "ours")] = answer_ours(aq, ours_hits[answer_cfg][: len(aq)], backend, args.max_tokens, args.format)
            if args.samples > 1:
                answers[(name, "samples")] = answer_samples(aq, ours_hits[answer_cfg][: len(aq)], backend, args.max_tokens, args.samples)
            answers[(name, "langchain")] = [] if args.no_peer_answers else answer_peer(aq, peer_hits[: len(aq)], peer_chain(backend, params))
            print(name, "answers ours", sum(a["ok"] for a in answers[(name, "ours")]), "langchain", sum(a["ok"] for a in answers[(name, "langchain")]), "of", len(aq), file=sys.stderr)
    write(args, corpora, configs, answer_cfg, rows, answers, ingest, checks, backend, fetch.CORPORA)
    return 0


def write(args, corpora, configs, answer_cfg, rows, answers, ingest, checks, backend, specs) -> None:
    held = [n for n in corpora if specs[n].get("held_out")]
    tuning = [n for n in corpora if n not in held]
    lines = [f"# Answer benchmark ({date.today().isoformat()})", "",
             f"Command: `python bench/bench_answers.py {' '.join(sys.argv[1:])}`".replace("  ", " "), "",
             f"Context budget: {args.budget} tokens ({backend.model_id} tokenizer). Generator: {backend.model_id}, greedy, at most {args.max_tokens} answer tokens.",
             "Peer: LangChain BSHTMLLoader/PyPDFLoader + RecursiveCharacterTextSplitter(1000, 200) + the same MiniLM + langchain_chroma, packed to the same budget; answers by an LCEL `stuff` chain with RetrievalQA's prompt on the same model.", "",
             "## Corpora", "", "| corpus | kind | package | held out | questions | phrases found (ours / LangChain text) |", "| --- | --- | --- | --- | --- | --- |"]
    for n in corpora:
        total, a, b = checks[n]
        lines.append(f"| {n} | {specs[n]['kind']} | {specs[n]['package']} {specs[n]['version']} | {'**yes**' if n in held else 'no'} | {total} | {a} / {b} |")
    lines += ["", "## Retrieval at equal budget", "", "| corpus | pipeline | hit@budget | MRR | mean chunks | mean tokens | hit − LangChain | MRR − LangChain |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for group, names in (("tuning", tuning), ("held out", held)):
        for n in names:
            peer = rows[(n, "langchain")]
            for c in ["langchain", *configs]:
                r = rows[(n, c)]
                label = "LangChain" if c == "langchain" else f"ours: {c}"
                d = "" if c == "langchain" else f"{r['hit'] - peer['hit']:+.3f} | {r['mrr'] - peer['mrr']:+.3f}"
                lines.append(f"| {n}{' (held out)' if n in held else ''} | {label} | {r['hit']:.3f} | {r['mrr']:.3f} | {r['chunks']:.1f} | {r['tokens']:.0f} | {d or ' | '} |")
    for group, names in (("mean, tuning corpora", tuning), ("mean, all corpora", corpora)):
        if not names:
            continue
        for c in ["langchain", *configs]:
            h = statistics.mean(rows[(n, c)]["hit"] for n in names)
            m = statistics.mean(rows[(n, c)]["mrr"] for n in names)
            lines.append(f"| *{group}* | {'LangChain' if c == 'langchain' else 'ours: ' + c} | {h:.3f} | {m:.3f} |  |  |  |  |")
    if answers:
        quote = args.format == "quote"
        lines += ["", f"## Answers (ours: `{answer_cfg}` retrieval, our `stuff` chain, prompt set `{args.prompt}`, `--format {args.format}`)", "",
                  *(["`--format quote` shows the passage sentence that matches the model's reply; the model's own reply (the same prompt, "
                     "so the same as `--format text`) is scored in the last column.", ""] if quote else []),
                  "| corpus | questions | ours correct | LangChain correct | difference | ours citation accuracy | s/answer ours | s/answer LangChain |"
                  + (" ours, the model's own reply |" if quote else ""), "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if quote else "")]
        for n in [*tuning, *held]:
            a, b = answers[(n, "ours")], answers[(n, "langchain")]
            k = len(a) or 1
            pa, pb = sum(x["ok"] for x in a), sum(x["ok"] for x in b)
            peer = f"{pb} ({pb / k:.2f}) | {(pa - pb) / k:+.2f}" if b else "not run | "
            lines.append(f"| {n}{' (held out)' if n in held else ''} | {len(a)} | {pa} ({pa / k:.2f}) | {peer} | {sum(x['cited_ok'] for x in a) / k:.2f} | "
                         f"{statistics.median(x['seconds'] for x in a):.1f} | {statistics.median(x['seconds'] for x in b) if b else 0:.1f} |"
                         + (f" {sum(x['generated_ok'] for x in a)} ({sum(x['generated_ok'] for x in a) / k:.2f}) |" if quote else ""))
        if args.samples > 1:
            lines += ["", f"## Self-consistency: `ask(samples={args.samples})` (temperature 0.7, majority answer) against one greedy answer", "",
                      "| corpus | questions | greedy correct | majority correct | any sample correct | mean agreement | correct when agreement ≥ 0.5 | correct when < 0.5 | s/answer |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for n in [*tuning, *held]:
                g, sm = answers[(n, "ours")], answers[(n, "samples")]
                hi = [x for x in sm if x["agreement"] >= 0.5]
                lo = [x for x in sm if x["agreement"] < 0.5]
                share = lambda xs: f"{sum(x['ok'] for x in xs)}/{len(xs)}" if xs else "—"  # noqa: E731
                lines.append(f"| {n} | {len(sm)} | {share(g)} | {share(sm)} | {sum(x['any_ok'] for x in sm)}/{len(sm)} | "
                             f"{statistics.mean(x['agreement'] for x in sm):.2f} | {share(hi)} | {share(lo)} | {statistics.median(x['seconds'] for x in sm):.1f} |")  # fmt: skip
        with open(Path(args.out).with_suffix(".jsonl"), "w", encoding="utf-8") as f:
            for (n, side), items in answers.items():
                for x in items:
                    f.write(json.dumps({"corpus": n, "side": side, **x}, ensure_ascii=False) + "\n")
    lines += ["", "## Ingest (first build of each collection; later runs reuse it)", "", "| corpus | pipeline | input MB | chunks | seconds | chunks/s | MB/s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for (n, side), i in ingest.items():
        if i.get("seconds", 0) > 1:
            lines.append(f"| {n} | {side} | {i['bytes'] / 1e6:.2f} | {i['chunks']} | {i['seconds']:.1f} | {i['chunks'] / i['seconds']:.1f} | {i['bytes'] / 1e6 / i['seconds']:.3f} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
