"""Ingest benchmark: our ``Index.add`` against the usual LangChain pipeline, same run.

    .venv/bin/python bench/bench_ingest.py            # 5 alternating repeats, writes bench/results_ingest.md
    .venv/bin/python bench/bench_ingest.py --smoke    # a tiny run to keep the script working (CI)
    .venv/bin/python bench/bench_ingest.py --sweep    # retrieval quality of candidate default splitters
    .venv/bin/python bench/bench_ingest.py --workers 2   # ours in one process vs a pool of 2 workers

Corpus: real HTML and PDF from two Debian documentation packages, ``developers-reference``
(one HTML file per chapter plus the same book as a PDF) and ``maint-guide`` (HTML chapters
plus PDF). If the cache folder is missing, the script fetches them itself with
``apt-get download developers-reference maint-guide`` and unpacks them with ``dpkg -x``
into ``$LLM_MAGICS_BENCH_CACHE`` (default ``~/.cache/llm_magics/bench``), outside git.

Both sides do the same work with the same embedder object (the default, all-MiniLM-L6-v2
on our runtime), the same thread count and the same files, ingesting from scratch into a
fresh persistent Chroma folder each repeat:

* ours: ``Index(store="chroma").add(folder, recursive=True)`` with our defaults;
* peer: LangChain's ``BSHTMLLoader`` and ``PyPDFLoader`` (langchain-community),
  ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``
  (langchain-text-splitters) and ``langchain_chroma.Chroma.from_documents`` with an
  ``Embeddings`` wrapper around the same embedder.

Questions are built automatically from the HTML, independently of either pipeline:

* heading questions: each h2-h4 section heading (section number stripped, at least three
  words, unique) is a query; the gold is the section's first paragraph of prose;
* sentence questions: a seeded sample of paragraphs of at least 200 characters; the query
  is the paragraph's first sentence, the gold is the rest of the paragraph.

A retrieved chunk is a hit when it contains a 60-character piece of the gold text, after
both are lower-cased and reduced to letters and digits. The gold is text, not a file, so a
chunk from the HTML and one from the PDF of the same book count alike, and neither
pipeline's chunking or metadata enters the judgement. Scores: hit@1, hit@5 and MRR@5.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PACKAGES = ("developers-reference", "maint-guide")
CACHE = Path(os.environ.get("LLM_MAGICS_BENCH_CACHE", Path.home() / ".cache" / "llm_magics" / "bench"))


# ---------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------


def corpus(cache: Path = CACHE) -> Path:
    """The folder of HTML and PDF files, fetched and unpacked on first use."""
    folder = cache / "debian-docs"
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    extracted = cache / "extracted"
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob("*.deb")):
        print(f"Fetching {', '.join(PACKAGES)} with apt-get download into {debs} ...", file=sys.stderr)
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(extracted)], check=True)
    folder.mkdir(parents=True, exist_ok=True)
    dev = extracted / "usr/share/developers-reference"
    for f in sorted(dev.glob("*.html")):
        if f.name not in ("developers-reference.html", "search.html", "index.html"):  # the one-page copy and the TOC
            shutil.copy(f, folder / f"devref-{f.name}")
    shutil.copy(dev / "developers-reference.pdf", folder / "devref.pdf")
    mg = extracted / "usr/share/doc/maint-guide"
    for f in sorted((mg / "html").glob("*.en.html")):
        if f.name != "index.en.html":
            shutil.copy(f, folder / f"maint-guide-{f.name}")
    shutil.copy(mg / "maint-guide.en.pdf", folder / "maint-guide.pdf")
    return folder


# ---------------------------------------------------------------------------
# Questions
# ---------------------------------------------------------------------------


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


_SECTION_NUMBER = re.compile(r"^\s*(?:[A-Z]\.)?[\d.]+\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def questions(folder: Path, n_sentences: int = 150, seed: int = 0) -> list[dict]:
    """Heading and first-sentence questions with text gold, built from the HTML files."""
    from bs4 import BeautifulSoup

    out, seen = [], set()
    paragraphs = []
    for f in sorted(folder.glob("*.html")):
        soup = BeautifulSoup(f.read_text(encoding="utf-8", errors="replace"), "html.parser")
        for tag in soup(["script", "style"]):
            tag.decompose()
        for h in soup.find_all(["h2", "h3", "h4"]):
            heading = " ".join(_SECTION_NUMBER.sub("", h.get_text(" ").replace("\u00b6", "")).split())
            body = []
            for sib in h.find_all_next(["p", "h1", "h2", "h3", "h4"]):
                if sib.name != "p":
                    break
                text = " ".join(sib.get_text(" ").split())
                if len(text) >= 80:
                    body.append(text)
                    break
            if len(heading.split()) >= 3 and body and heading.lower() not in seen:
                seen.add(heading.lower())
                out.append({"kind": "heading", "query": heading, "gold": body[0][:400], "file": f.name})
        for p in soup.find_all("p"):
            text = " ".join(p.get_text(" ").split())
            if len(text) >= 200:
                paragraphs.append((f.name, text))
    rng = random.Random(seed)
    rng.shuffle(paragraphs)
    for name, text in paragraphs:
        if sum(q["kind"] == "sentence" for q in out) >= n_sentences:
            break
        parts = _SENTENCE_END.split(text, maxsplit=1)
        if len(parts) < 2:
            continue
        first, rest = parts
        if not 8 <= len(first.split()) <= 40 or len(norm(rest)) < 80:
            continue
        out.append({"kind": "sentence", "query": first, "gold": rest[:400], "file": name})
    return out


def pieces(gold: str, width: int = 60) -> list[str]:
    text = norm(gold)
    if len(text) <= width:
        return [text]
    starts = [0] + [m.end() for m in re.finditer(" ", text) if m.end() + width <= len(text)]
    return [text[s : s + width] for s in starts[:40]]


def score(results: list[list[str]], qs: list[dict]) -> dict:
    """hit@1, hit@5, MRR@5 overall and per question kind."""
    rows = {}
    for kind in ("all", "heading", "sentence"):
        ranks = []
        for hits, q in zip(results, qs):
            if kind != "all" and q["kind"] != kind:
                continue
            wanted = pieces(q["gold"])
            rank = next((i + 1 for i, text in enumerate(hits) if any(w in norm(text) for w in wanted)), None)
            ranks.append(rank)
        n = len(ranks) or 1
        rows[kind] = {
            "n": len(ranks),
            "hit@1": sum(r == 1 for r in ranks) / n,
            "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "mrr@5": sum(1 / r for r in ranks if r is not None and r <= 5) / n,
        }
    return rows


# ---------------------------------------------------------------------------
# The two pipelines
# ---------------------------------------------------------------------------


def run_ours(folder: Path, store_dir: Path, embedder, **add_options):
    from llm_magics.ingest.index import Index

    t0 = time.perf_counter()
    index = Index(collection="bench", store="chroma", embedder=embedder, path=str(store_dir))
    report = index.add(str(folder), recursive=True, progress=False, **add_options)
    seconds = time.perf_counter() - t0
    return seconds, report.chunks_added, index


def langchain_embeddings(embedder):
    from langchain_core.embeddings import Embeddings

    class SameEmbedder(Embeddings):
        """LangChain's Embeddings interface over the very embedder our side uses."""

        def embed_documents(self, texts):
            return embedder.embed(list(texts)).tolist()

        def embed_query(self, text):
            return embedder.embed_query(text).tolist()

    return SameEmbedder()


def run_langchain(folder: Path, store_dir: Path, embedder):
    import warnings

    from langchain_chroma import Chroma
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader

    t0 = time.perf_counter()
    docs = []
    for f in sorted(folder.iterdir()):
        if f.suffix == ".html":
            # lxml is not installed here; html.parser is BeautifulSoup's built-in parser.
            docs.extend(BSHTMLLoader(str(f), open_encoding="utf-8", bs_kwargs={"features": "html.parser"}).load())
        elif f.suffix == ".pdf":
            docs.extend(PyPDFLoader(str(f)).load())
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True).split_documents(docs)
    db = Chroma.from_documents(chunks, langchain_embeddings(embedder), collection_name="bench", persist_directory=str(store_dir))
    seconds = time.perf_counter() - t0
    return seconds, len(chunks), db


def token_stats(texts: list[str], embedder) -> dict:
    """Word pieces each side sends to the model, and what the model's window cuts off."""
    window = embedder.max_tokens - 2  # [CLS] and [SEP]
    tokens = truncated = lost = 0
    for text in texts:
        spans = embedder.token_spans(text)
        tokens += min(len(spans), window)
        if len(spans) > window:
            truncated += 1
            lost += len(text) - spans[window - 1][1]
    return {"tokens": tokens, "truncated": truncated, "lost": lost, "chars": sum(len(t) for t in texts)}


def retrieve_ours(index, qs, k=5):
    return [[h.text for h in index.search(q["query"], k=k)] for q in qs]


def retrieve_langchain(db, qs, k=5):
    return [[d.page_content for d in db.similarity_search(q["query"], k=k)] for q in qs]


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def input_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="alternating timed runs per side (median reported)")
    ap.add_argument("--questions", type=int, default=150, help="sentence questions (heading questions: all that qualify)")
    ap.add_argument("--smoke", action="store_true", help="two files, one repeat, no results file")
    ap.add_argument("--tokens-only", action="store_true", help="only count word pieces and truncation of both sides' chunks (no embedding)")
    ap.add_argument("--sweep", action="store_true", help="retrieval quality of candidate splitter settings (ours), then exit")
    ap.add_argument("--subset", default="maint-guide*", help="glob of corpus files to use ('*' for all 21; the default keeps a run under ~10 minutes on 2 cores)")
    ap.add_argument("--splitter", default=RECOMMENDED["splitter"], help="our side's splitter")
    ap.add_argument("--chunk-size", type=int, default=RECOMMENDED["chunk_size"], help="our side's chunk_size")
    ap.add_argument("--chunk-overlap", type=int, default=RECOMMENDED["chunk_overlap"], help="our side's chunk_overlap")
    ap.add_argument("--out", default=str(HERE / "results_ingest.md"))
    ap.add_argument("--workers", type=int, default=0, help="compare our single-process ingest with a pool of N workers (appends a section to --out)")
    ap.add_argument("--corpora", default="sqlite-capi,r-faq", help="with --workers: corpora from bench/corpora (fetched by bench/corpora/fetch.py)")
    args = ap.parse_args(argv)
    if args.workers:
        return compare_workers(args, argv)

    import torch

    from llm_magics.ingest.embedders import get_embedder

    torch.set_num_threads(2)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    folder = corpus()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    if args.subset != "*":
        chosen = work / "subset"
        chosen.mkdir()
        for f in sorted(folder.glob(args.subset)):
            shutil.copy(f, chosen / f.name)
        folder = chosen
    if args.smoke:
        small = work / "corpus"
        small.mkdir()
        for f in sorted(folder.glob("*.html"))[:1] + sorted(folder.glob("*.pdf"))[:1]:
            shutil.copy(f, small / f.name)
        folder, args.repeats, args.questions = small, 1, 10

    from llm_magics.runtime.quantize import native_bf16

    embedder = get_embedder()
    # The peer embeds in float32, as LangChain's HuggingFaceEmbeddings does by default (the same MiniLM; our
    # float32 encoder equals transformers' to 1e-6). Ours keeps its default dtype ("auto": bfloat16 where the
    # CPU has bf16 units).
    peer_embedder = get_embedder(dtype="float32")
    t0 = time.perf_counter()
    embedder.embed(["warm up the model"])
    load_seconds = time.perf_counter() - t0
    peer_embedder.embed(["warm up the model"])
    qs = questions(folder, args.questions)
    ours_defaults = {"splitter": args.splitter, "chunk_size": args.chunk_size, "chunk_overlap": args.chunk_overlap}
    print(f"corpus {folder}: {len(os.listdir(folder))} files, {input_bytes(folder) / 1e6:.2f} MB; {len(qs)} questions; embedder {embedder.identity} (load {load_seconds:.1f} s)")

    if args.sweep:
        return sweep(folder, work, embedder, qs)
    if args.tokens_only:
        return tokens_only(folder, embedder, ours_defaults)

    # Warm-up: one small ingest on each side (imports, first Chroma client, model caches).
    warm = work / "warm"
    warm.mkdir()
    shutil.copy(sorted(folder.glob("*.html"))[0], warm)
    run_ours(warm, work / "warm-ours", embedder, **ours_defaults)
    run_langchain(warm, work / "warm-peer", peer_embedder)

    ours, peer = [], []
    index = db = None
    for i in range(args.repeats):
        for side in ("ours", "peer"):
            gc.collect()
            if side == "ours":
                seconds, n, index = run_ours(folder, work / f"ours-{i}", embedder, **ours_defaults)
                ours.append((seconds, n))
            else:
                seconds, n, db = run_langchain(folder, work / f"peer-{i}", peer_embedder)
                peer.append((seconds, n))
            print(f"  repeat {i + 1} {side}: {n} chunks in {seconds:.1f} s = {n / seconds:.1f} chunks/s", flush=True)

    t0 = time.perf_counter()
    q_ours = score(retrieve_ours(index, qs), qs)
    ours_query_ms = (time.perf_counter() - t0) / len(qs) * 1000
    t0 = time.perf_counter()
    q_peer = score(retrieve_langchain(db, qs), qs)
    peer_query_ms = (time.perf_counter() - t0) / len(qs) * 1000
    tok_o = token_stats([r["text"] for r in index.store.get()], embedder)
    tok_p = token_stats(db.get()["documents"], embedder)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    mb = input_bytes(folder) / 1e6
    med = lambda runs: statistics.median(s for s, _ in runs)  # noqa: E731
    chunks_o, chunks_p = ours[-1][1], peer[-1][1]
    rate_o = statistics.median(n / s for s, n in ours)
    rate_p = statistics.median(n / s for s, n in peer)
    rows = [
        ("chunks stored", f"{chunks_o}", f"{chunks_p}", ""),
        ("seconds, end to end (median)", f"{med(ours):.1f}", f"{med(peer):.1f}", f"{med(peer) / med(ours):.2f}x ({'faster' if med(ours) <= med(peer) else 'slower'})"),
        ("chunks/s (median)", f"{rate_o:.1f}", f"{rate_p:.1f}", f"{rate_o / rate_p:.2f}x"),
        ("input MB/s (median)", f"{mb / med(ours):.3f}", f"{mb / med(peer):.3f}", f"{med(peer) / med(ours):.2f}x"),
        ("word pieces embedded", f"{tok_o['tokens']}", f"{tok_p['tokens']}", f"{tok_o['tokens'] / tok_p['tokens']:.2f}x"),
        ("word pieces embedded per second", f"{tok_o['tokens'] / med(ours):.0f}", f"{tok_p['tokens'] / med(peer):.0f}", f"{tok_o['tokens'] / med(ours) / (tok_p['tokens'] / med(peer)):.2f}x"),
        ("chunks cut by the 256-token window", f"{tok_o['truncated']}", f"{tok_p['truncated']}", ""),
        ("characters never embedded (cut off)", f"{tok_o['lost']} of {tok_o['chars']}", f"{tok_p['lost']} of {tok_p['chars']} ({tok_p['lost'] / tok_p['chars']:.1%})", ""),
    ]
    for kind in ("all", "heading", "sentence"):
        for metric in ("hit@1", "hit@5", "mrr@5"):
            a, b = q_ours[kind][metric], q_peer[kind][metric]
            rows.append((f"{metric}, {kind} questions (n={q_ours[kind]['n']})", f"{a:.3f}", f"{b:.3f}", f"{a - b:+.3f}"))
    rows.append(("query latency, ms (mean of all questions)", f"{ours_query_ms:.1f}", f"{peer_query_ms:.1f}", f"{peer_query_ms / ours_query_ms:.2f}x"))

    command = "python bench/bench_ingest.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    header = [
        f"# Ingest benchmark ({date.today().isoformat()})",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Corpus: {len(os.listdir(folder))} files ({mb:.2f} MB; --subset {args.subset!r}: "
        f"{sum(f.endswith('.html') for f in os.listdir(folder))} HTML, {sum(f.endswith('.pdf') for f in os.listdir(folder))} PDF) from the Debian packages {', '.join(PACKAGES)}; "
        f"{len(qs)} automatic questions (see the script's docstring for how they are built and judged). "
        f"Embedder for both sides: {embedder.identity}, ours at its default dtype ({embedder.options.dtype}: "
        f"{'bfloat16' if native_bf16() else 'float32'} on this CPU), the peer at float32 (HuggingFaceEmbeddings' default); "
        f"model load {load_seconds:.1f} s (not timed below). "
        f"torch threads: {torch.get_num_threads()}. Median of {args.repeats} alternating repeats after a warm-up; "
        f"each repeat ingests from scratch into a fresh persistent Chroma folder. Peak RSS of the whole process: {peak_mb:.0f} MB.",
        "",
        f"Ours: `Index.add` with splitter={ours_defaults['splitter']}, chunk_size={ours_defaults['chunk_size']}, chunk_overlap={ours_defaults['chunk_overlap']}. "
        "Peer: LangChain BSHTMLLoader + PyPDFLoader, RecursiveCharacterTextSplitter(1000, 200), langchain_chroma.Chroma.from_documents.",
        "",
        "| measure | ours | LangChain | ratio / difference |",
        "| --- | --- | --- | --- |",
    ]
    table = "\n".join(header + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows])
    print(table)
    if not args.smoke:
        Path(args.out).write_text(table + "\n")
        print(f"wrote {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


#: The defaults we recommend for config.py, chosen with --sweep (see bench/results_ingest.md).
RECOMMENDED = {"splitter": "markdown", "chunk_size": 400, "chunk_overlap": 60}

SWEEP = [
    {"splitter": "recursive", "chunk_size": 1000, "chunk_overlap": 200},
    {"splitter": "recursive", "chunk_size": 400, "chunk_overlap": 60},
    {"splitter": "markdown", "chunk_size": 600, "chunk_overlap": 100},
    {"splitter": "markdown", "chunk_size": 400, "chunk_overlap": 60},
    {"splitter": "markdown", "chunk_size": 300, "chunk_overlap": 50},
    {"splitter": "token", "chunk_size": 254, "chunk_overlap": 32},
]


def tokens_only(folder: Path, embedder, ours_defaults: dict) -> int:
    import warnings

    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from llm_magics.ingest.loaders import choose
    from llm_magics.ingest.splitters import get_splitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader
    splitter = get_splitter(ours_defaults["splitter"], embedder=embedder, chunk_size=ours_defaults["chunk_size"], chunk_overlap=ours_defaults["chunk_overlap"])
    ours, docs = [], []
    for f in sorted(folder.iterdir()):
        cls, _ = choose(str(f))
        ours.extend(c.text for c in splitter.split(cls().load(str(f))))
        loader = BSHTMLLoader(str(f), open_encoding="utf-8", bs_kwargs={"features": "html.parser"}) if f.suffix == ".html" else PyPDFLoader(str(f))
        docs.extend(loader.load())
    peer = [d.page_content for d in RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)]
    for name, texts in (("ours", ours), ("langchain", peer)):
        print(name, len(texts), "chunks", token_stats(texts, embedder))
    return 0


def sweep(folder: Path, work: Path, embedder, qs) -> int:
    print("| splitter | chunk_size | chunk_overlap | chunks | seconds | hit@1 | hit@5 | mrr@5 | hit@5 heading | hit@5 sentence |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, opts in enumerate(SWEEP):
        seconds, n, index = run_ours(folder, work / f"sweep-{i}", embedder, **opts)
        q = score(retrieve_ours(index, qs), qs)
        a = q["all"]
        print(
            f"| {opts['splitter']} | {opts['chunk_size']} | {opts['chunk_overlap']} | {n} | {seconds:.1f} | {a['hit@1']:.3f} | {a['hit@5']:.3f} | {a['mrr@5']:.3f} "
            f"| {q['heading']['hit@5']:.3f} | {q['sentence']['hit@5']:.3f} |",
            flush=True,
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


# ---------------------------------------------------------------------------
# One process vs a pool of workers (--workers N)
# ---------------------------------------------------------------------------


def corpora_folder(names: list[str], work: Path) -> Path:
    """The documents of bench/corpora/<name>/docs (fetched when missing), in one folder."""
    sys.path.insert(0, str(HERE / "corpora"))
    from fetch import fetch

    folder = work / "docs"
    folder.mkdir(parents=True)
    for name in names:
        for f in sorted(fetch(name).iterdir()):
            shutil.copy(f, folder / f"{name}-{f.name}")
    return folder


def compare_workers(args, argv) -> int:
    """Ingest the same folder with workers=1 and workers=N, alternating; same chunks asserted."""
    import torch

    from llm_magics import config
    from llm_magics.ingest.embedders import get_embedder
    from llm_magics.ingest.index import Index

    torch.set_num_threads(2)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    config.settings().progress = False
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    names = args.corpora.split(",")
    folder = corpora_folder(names, work)
    files = sorted(folder.iterdir())
    if args.smoke:
        for f in files[3:-1]:
            f.unlink()
        files, args.repeats = sorted(folder.iterdir()), 1
    embedder = get_embedder()
    embedder.embed(["warm up the model"])
    opts = {"splitter": args.splitter, "chunk_size": args.chunk_size, "chunk_overlap": args.chunk_overlap}
    sides = {"1 process": 1, f"{args.workers} workers": args.workers}

    def run(label: str, workers: int, target: Path, source: Path):
        load_before = os.getloadavg()[0]
        index = Index(collection="bench", store="chroma", embedder=embedder, path=str(target))
        report = index.add(str(source), progress=False, workers=workers, **opts)
        chunks = sorted((r["id"], r["text"]) for r in index.store.get())
        return report, chunks, (load_before + os.getloadavg()[0]) / 2

    warm = work / "warm"
    warm.mkdir()
    for f in files[:4]:
        shutil.copy(f, warm / f.name)
    for label, w in sides.items():  # imports, the first Chroma client, the workers' first spawn
        run(label, w, work / f"warm-{w}", warm)
    results: dict[str, list] = {label: [] for label in sides}
    reference = None
    for i in range(args.repeats):
        for label, w in sides.items():
            gc.collect()
            report, chunks, load = run(label, w, work / f"{w}-{i}", folder)
            if reference is None:
                reference = chunks
            assert chunks == reference, f"{label}: different chunks than the single-process run"
            results[label].append((report, load))
            print(f"  repeat {i + 1} {label}: {report.chunks_added} chunks in {report.seconds:.1f} s (load average {load:.1f})", flush=True)

    med = lambda xs: statistics.median(xs)  # noqa: E731
    walls = {label: med([r.seconds for r, _ in runs]) for label, runs in results.items()}
    one, many = list(sides)
    loads = [load for runs in results.values() for _, load in runs]
    stage_names = ["load", "split", "wait for workers", "load+split in main", "embed", "store", "other"]
    pairs = med([a.seconds / b.seconds for (a, _), (b, _) in zip(results[one], results[many])])
    rest = {label: med([r.seconds - r.embed_seconds for r, _ in runs]) for label, runs in results.items()}
    rows = [
        ("wall seconds (median)", f"{walls[one]:.1f}", f"{walls[many]:.1f}", f"{walls[one] / walls[many]:.2f}x"),
        ("ratio of each alternating pair (median)", "", "", f"{pairs:.2f}x"),
        ("wall minus embed, seconds (median; the part the pool can change)", f"{rest[one]:.1f}", f"{rest[many]:.1f}", f"{rest[one] / rest[many]:.2f}x"),
    ]
    for stage in stage_names:
        cells = []
        for label in sides:
            vals = [dict((n, s) for n, s, _ in r.stages()).get(stage) for r, _ in results[label]]
            if vals[0] is None:
                cells.append("-")
                continue
            where = dict((n, w) for n, _, w in results[label][0][0].stages())[stage]
            share = med([v / r.seconds for v, (r, _) in zip(vals, results[label])])
            cells.append(f"{med(vals):.2f} s, {share:.1%}" + (" (summed in workers)" if where == "workers" else ""))
        rows.append((stage, *cells, ""))
    single = [r for r, _ in results[one]]
    bound = med([r.seconds / (r.seconds - r.load_seconds - r.split_seconds) for r in single])
    rows.append(("best possible ratio (Amdahl: load and split free, embed and store as in one process)", "", "", f"{bound:.2f}x"))
    n_chunks, mb = len(reference), sum(f.stat().st_size for f in files) / 1e6
    command = "python bench/bench_ingest.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "",
        f"## One process vs a pool of {args.workers} workers ({date.today().isoformat()})",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Corpus: {', '.join(names)} from bench/corpora ({len(files)} files, {mb:.2f} MB; {n_chunks} chunks, the same ids and texts on both sides, asserted). "
        f"splitter={opts['splitter']}, chunk_size={opts['chunk_size']}, chunk_overlap={opts['chunk_overlap']}; embedder {embedder.identity}, torch threads 2; "
        f"Chroma, a fresh folder per run. Median of {args.repeats} alternating repeats after a warm-up. "
        f"**Under load**: the 2 cores were shared with other benchmarks; load average (1 min) during the runs {min(loads):.1f}-{max(loads):.1f} "
        f"(median {med(loads):.1f}), so the ratio is a ratio under load.",
        "",
        f"| stage | {one} | {many} | ratio |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
    ]
    text = "\n".join(lines)
    print(text)
    if not args.smoke:
        with open(args.out, "a") as f:
            f.write(text + "\n")
        print(f"appended to {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
