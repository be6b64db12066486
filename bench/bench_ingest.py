"""Ingest benchmark: our ``Index.add`` against the usual LangChain pipeline, same run.

    .venv/bin/python bench/bench_ingest.py            # 5 alternating repeats, writes bench/results_ingest.md
    .venv/bin/python bench/bench_ingest.py --smoke    # a tiny run to keep the script working (CI)
    .venv/bin/python bench/bench_ingest.py --sweep    # retrieval quality of candidate default splitters
    .venv/bin/python bench/bench_ingest.py --workers 2   # ours in one process vs a pool of 2 workers
    .venv/bin/python bench/bench_ingest.py --workers 2 --ray --mb 50 --repeats 1
        # one process vs the pool vs Ray Data on a local Ray instance, on >= 50 MB of real
        # documents (bench/corpora, then /usr/share/doc); writes bench/results_ingest_engines.md

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
    ap.add_argument("--out", default=None, help="results file (default: results_ingest.md; with --ray: results_ingest_engines.md)")
    ap.add_argument("--workers", type=int, default=0, help="compare our single-process ingest with a pool of N workers (appends a section to --out)")
    ap.add_argument("--corpora", default="sqlite-capi,r-faq", help="with --workers: corpora from bench/corpora (fetched by bench/corpora/fetch.py)")
    ap.add_argument("--ray", action="store_true", help="with --workers: a third side, engine='ray' on a local Ray instance (writes its own results file)")
    ap.add_argument("--mb", type=float, default=0.0, help="with --workers: add files from /usr/share/doc (sorted, no Python docs) after --corpora until the corpus holds at least MB megabytes")
    args = ap.parse_args(argv)
    explicit_out = args.out is not None
    args.out = args.out or str(HERE / ("results_ingest_engines.md" if args.ray else "results_ingest.md"))
    if (args.ray or args.mb) and not args.workers:
        ap.error("--ray and --mb compare engines: add --workers N (the pool's size)")
    if args.workers:
        return compare_workers(args, argv, write=explicit_out or not args.smoke)

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
        f"Embedder for both sides: {embedder.identity}, ours at its default dtype ({embedder_dtype(embedder)}), "
        f"the peer at float32 (HuggingFaceEmbeddings' default); "
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
# One process vs a pool of workers (--workers N) vs Ray (--ray)
# ---------------------------------------------------------------------------

DOC_ROOT = Path("/usr/share/doc")


def doc_files(root: Path = DOC_ROOT) -> list[Path]:
    """Debian's manuals in sorted path order: HTML, text, Markdown, reST and README/NEWS/FAQ files, .gz too.

    Never a package with "python" in its name (the Python documentation is reserved for
    independent checks), a symlink (a copy of another package's docs) or a copyright file.
    """
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.rglob("*")):
        top = p.relative_to(root).parts[0]
        real = p.resolve()
        real_top = real.relative_to(root).parts[0] if real.is_relative_to(root) else ""
        if "python" in top.lower() or "python" in real_top.lower() or (root / top).is_symlink() or p.is_symlink():
            continue
        if not p.is_file() or p.name.startswith("copyright"):
            continue
        name = p.name[:-3] if p.name.endswith(".gz") else p.name
        if name.endswith((".html", ".htm", ".md", ".txt", ".rst")) or name.upper().startswith(("README", "NEWS", "FAQ")):
            out.append(p)
    return out


def engines_corpus(args, work: Path, doc_root: Path = DOC_ROOT) -> tuple[Path, str]:
    """One flat folder of real documents, built the same way every time, and a sentence saying what is in it.

    First the ``--corpora`` (bench/corpora/<name>/docs, fetched when missing), then with ``--mb``
    files from ``doc_root`` in sorted order (.gz decompressed) until the folder holds at least
    that many MB. ``--smoke`` keeps 4 corpus files and at most 0.1 MB, and on a clean checkout,
    where the corpora are not fetched, uses this checkout's docs/*.md instead of fetching them.
    """
    folder = work / "docs"
    folder.mkdir(parents=True)
    used, missing = [], []
    for name in filter(None, args.corpora.split(",")):
        docs = HERE / "corpora" / name / "docs"
        if args.smoke and not (docs.is_dir() and any(docs.iterdir())):
            missing.append(name)
            continue
        if not args.smoke:
            sys.path.insert(0, str(HERE / "corpora"))
            from fetch import fetch

            docs = fetch(name)
        for f in sorted(docs.iterdir()):
            shutil.copy(f, folder / f"{name}-{f.name}")
        used.append(name)
    if args.smoke:
        for f in sorted(folder.iterdir())[3:-1]:
            f.unlink()
    parts = []
    if used:
        got = sorted(folder.iterdir())
        parts.append(f"{', '.join(used)} from bench/corpora ({len(got)} files, {sum(f.stat().st_size for f in got) / 1e6:.2f} MB)")
    if missing:  # --smoke on a clean checkout: bench/corpora/fetch.py has not run
        root = HERE.parent
        own = sorted((root / "docs").glob("*.md"))[:4] or [root / "README.md"]
        for p in own:
            shutil.copy(p, folder / f"project-{p.relative_to(root).as_posix().replace('/', '-')}")
        parts.append(f"{len(own)} Markdown files of this checkout ({', '.join(p.relative_to(root).as_posix() for p in own)}; bench/corpora/{{{','.join(missing)}}} not fetched)")
    if args.mb:
        target = (min(args.mb, 0.1) if args.smoke else args.mb) * 1e6
        total = sum(f.stat().st_size for f in folder.iterdir())
        added: list[Path] = []
        start = total
        for p in doc_files(doc_root):
            if total >= target:
                break
            import gzip

            data = gzip.open(p).read() if p.name.endswith(".gz") else p.read_bytes()
            rel = p.relative_to(doc_root).as_posix()
            (folder / ("doc-" + rel.removesuffix(".gz").replace("/", "__"))).write_bytes(data)
            total += len(data)
            added.append(p)
        if added:
            parts.append(
                f"then {len(added)} files ({(total - start) / 1e6:.2f} MB) from {doc_root} in sorted path order, {added[0]} to {added[-1]} "
                "(HTML, text, Markdown, reST, README/NEWS/FAQ; .gz decompressed; packages with 'python' in their name never used)"
            )
        if total < target:
            parts.append(f"only {total / 1e6:.2f} MB found, short of --mb {args.mb}")
    return folder, "; ".join(parts)


def embedder_dtype(embedder) -> str:
    """The encoder's weight format as run here: "auto" says which one it picked on this CPU."""
    dtype = getattr(embedder.options, "dtype", "float32")
    if dtype != "auto":
        return dtype
    from llm_magics.runtime.quantize import native_bf16

    return f"auto, so {'bfloat16' if native_bf16() else 'float32'} on this CPU ({'has' if native_bf16() else 'no'} bf16 units)"


def start_ray() -> dict | None:
    """A local Ray instance for the whole benchmark, started (and timed) before the warm-up; None without Ray Data."""
    import importlib.util

    try:
        if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
            return None
    except ImportError:
        return None
    import logging

    import ray
    import ray.data  # noqa: F401

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    started = time.perf_counter() - t0

    @ray.remote(num_cpus=1)
    def torch_threads() -> int:  # what an actor with one CPU (as the engine's) gets
        import torch

        return torch.get_num_threads()

    return {"start_seconds": started, "cpus": int(ray.cluster_resources().get("CPU", 0)), "torch_threads": ray.get(torch_threads.remote())}


def ray_actors() -> dict[str, str]:
    """Ray's actor table, dead actors included: id -> class name ({} where this Ray does not expose it)."""
    try:
        from ray._private import state

        return {str(a): info.get("ActorClassName") or info.get("ClassName") or "" for a, info in state.actors().items()}
    except Exception:  # a private API: the count is a detail, not worth failing the run for
        return {}


def compare_workers(args, argv, write: bool = True) -> int:
    """Ingest the same folder in one process, with a pool of N workers and (--ray) on Ray, alternating; same chunks asserted."""
    import torch

    from llm_magics import config
    from llm_magics.ingest.embedders import get_embedder
    from llm_magics.ingest.index import Index

    torch.set_num_threads(2)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    config.settings().progress = False
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    folder, corpus_text = engines_corpus(args, work)
    files = sorted(folder.iterdir())
    if args.smoke:
        args.repeats = 1
    embedder = get_embedder()
    embedder.embed(["warm up the model"])
    dtype = embedder_dtype(embedder)
    opts = {"splitter": args.splitter, "chunk_size": args.chunk_size, "chunk_overlap": args.chunk_overlap}
    sides = {"1 process": {"workers": 1}, f"{args.workers} workers": {"workers": args.workers}}
    ray_info = start_ray() if args.ray else None
    if args.ray and ray_info is None:
        if not args.smoke:
            sys.exit("--ray needs Ray Data: pip install 'llm-magics[ray]'")
        print("Ray Data is not installed: the smoke run compares one process and the pool only", file=sys.stderr)
    if ray_info:
        sides["Ray"] = {"engine": "ray"}
        print(f"Ray: local instance with {ray_info['cpus']} CPUs started in {ray_info['start_seconds']:.1f} s (before the warm-up, not timed below)", flush=True)
    try:
        text = _compare(args, argv, Index, embedder, dtype, opts, sides, ray_info, work, folder, files, corpus_text)
    finally:
        if ray_info:
            import ray

            ray.shutdown()
    print(text)
    if write:
        if args.ray:
            Path(args.out).write_text(text.lstrip("\n") + "\n")
            print(f"wrote {args.out}")
        else:
            with open(args.out, "a") as f:
                f.write(text + "\n")
            print(f"appended to {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _compare(args, argv, Index, embedder, dtype, opts, sides, ray_info, work, folder, files, corpus_text) -> str:
    """The timed runs and the results text (markdown)."""

    def run(key: str, how: dict, target: Path, source: Path):
        load_before = os.getloadavg()[0]
        before = ray_actors() if "engine" in how else None
        index = Index(collection="bench", store="chroma", embedder=embedder, path=str(target))
        report = index.add(str(source), progress=False, **how, **opts)
        actors = None
        if before is not None:  # the Ray Data actors this run started: (load+split, embed)
            new = [c for a, c in ray_actors().items() if a not in before]
            actors = (sum("_LoadSplit" in c for c in new), sum("_Embed" in c for c in new)) if new else None
        chunks = sorted((r["id"], r["text"]) for r in index.store.get())
        return report, chunks, (load_before + os.getloadavg()[0]) / 2, actors

    keys = {label: label.split()[0].lower() for label in sides}
    warm = work / "warm"
    warm.mkdir()
    for f in files[:4]:
        shutil.copy(f, warm / f.name)
    for label, how in sides.items():  # imports, the first Chroma client, the workers' first spawn, Ray's first actors
        run(label, how, work / f"warm-{keys[label]}", warm)
    results: dict[str, list] = {label: [] for label in sides}
    reference = None
    for i in range(args.repeats):
        for label, how in sides.items():
            gc.collect()
            report, chunks, load, actors = run(label, how, work / f"{keys[label]}-{i}", folder)
            if reference is None:
                reference = chunks
            assert chunks == reference, f"{label}: different chunks than the single-process run"
            if "engine" in how:
                assert report.engine == "ray", f"{label}: ran on engine {report.engine!r}"
            results[label].append((report, load, actors))
            print(f"  repeat {i + 1} {label}: {report.chunks_added} chunks in {report.seconds:.1f} s (load average {load:.1f})", flush=True)

    med = statistics.median
    labels = list(sides)
    one, others = labels[0], labels[1:]
    reports = {label: [r for r, _, _ in runs] for label, runs in results.items()}
    walls = {label: med([r.seconds for r in rs]) for label, rs in reports.items()}
    loads = [load for runs in results.values() for _, load, _ in runs]
    n_chunks, mb = len(reference), sum(f.stat().st_size for f in files) / 1e6
    on_ray = {label for label, how in sides.items() if "engine" in how}

    def ratio_row(name: str, cells: list[str], ratios: list[str]) -> tuple:
        return (name, *cells, *ratios)

    rows = [
        ratio_row("wall seconds (median)", [f"{walls[x]:.1f}" for x in labels], [f"{walls[one] / walls[x]:.2f}x" for x in others]),
        ratio_row("ratio of each alternating pair (median)", ["" for _ in labels],
                  [f"{med([a.seconds / b.seconds for a, b in zip(reports[one], reports[x])]):.2f}x" for x in others]),  # fmt: skip
    ]
    rates = {x: med([r.chunks_added / r.seconds for r in reports[x]]) for x in labels}
    mbps = {x: med([mb / r.seconds for r in reports[x]]) for x in labels}
    rows.append(ratio_row("chunks/s (median)", [f"{rates[x]:.1f}" for x in labels], [f"{rates[x] / rates[one]:.2f}x" for x in others]))
    rows.append(ratio_row("input MB/s (median)", [f"{mbps[x]:.3f}" for x in labels], [f"{mbps[x] / mbps[one]:.2f}x" for x in others]))
    rest = {x: med([r.seconds - r.embed_seconds for r in reports[x]]) for x in labels if x not in on_ray}
    rows.append(ratio_row(
        "wall minus embed, seconds (median; the part the pool can change)",
        [f"{rest[x]:.1f}" if x in rest else "- (embeds on the workers)" for x in labels],
        [f"{rest[one] / rest[x]:.2f}x" if x in rest else "" for x in others],
    ))  # fmt: skip
    for stage in ["load", "split", "embed", "wait for workers", "load+split in main", "store", "other"]:
        cells = []
        for x in labels:
            found = [dict((n, (s, w)) for n, s, w in r.stages()).get(stage) for r in reports[x]]
            if found[0] is None:
                cells.append("-")
                continue
            vals = [s for s, _ in found]
            share = med([v / r.seconds for v, r in zip(vals, reports[x])])
            cells.append(f"{med(vals):.2f} s, {share:.1%}" + (" (summed in workers)" if found[0][1] == "workers" else ""))
        rows.append(ratio_row(stage, cells, ["" for _ in others]))

    def who(x: str) -> str:  # the processes that loaded, split and embedded on each side
        r = reports[x][0]
        if x in on_ray:
            actors = results[x][0][2]
            counted = f"{actors[0]} load+split and {actors[1]} embedding actor(s)" if actors else "actors not counted"
            return f"{counted} on Ray's {r.workers} CPUs"
        return f"{r.workers} worker processes, then main" if r.workers > 1 else "main process"

    busy = {x: med([r.cores_busy for r in reports[x]]) for x in labels}
    rows.append(ratio_row("cores busy in the main process (its CPU seconds / wall, median)", [f"{busy[x]:.2f}" for x in labels], ["" for _ in others]))
    rows.append(ratio_row("who loads and splits, then embeds (first repeat)", [who(x) for x in labels], ["" for _ in others]))
    single = reports[one]
    bound = med([r.seconds / (r.seconds - r.load_seconds - r.split_seconds) for r in single])
    rows.append(ratio_row("best possible ratio for the pool (Amdahl: load and split free, embed and store as in one process)",
                          ["" for _ in labels], [f"{bound:.2f}x" if x not in on_ray else "" for x in others]))  # fmt: skip
    cores = os.cpu_count() or 1
    rows.append(ratio_row(f"best possible ratio for any parallel schedule ({cores} cores / cores busy in one process)",
                          ["" for _ in labels], [f"{max(1.0, cores / busy[one]):.2f}x" for _ in others]))  # fmt: skip

    first = single[0]
    command = "python bench/bench_ingest.py " + " ".join(argv if argv is not None else sys.argv[1:])
    title = (
        f"# Ingest engines: one process vs a pool of {args.workers} workers vs Ray ({date.today().isoformat()})"
        if on_ray else f"## One process vs a pool of {args.workers} workers ({date.today().isoformat()})"
    )  # fmt: skip
    lines = [
        "",
        title,
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Corpus: {corpus_text}. In all {len(files)} files, {mb:.2f} MB: {first.files_read} read, {first.files_skipped} skipped; "
        f"{n_chunks} chunks, the same ids and texts on every side (asserted). "
        f"splitter={opts['splitter']}, chunk_size={opts['chunk_size']}, chunk_overlap={opts['chunk_overlap']}; "
        f"embedder {embedder.identity}, dtype {dtype}; torch threads 2 in the main process; "
        f"Chroma, a fresh folder per run. Median of {args.repeats} repeat(s), the sides alternating, after a warm-up on 4 files. "
        f"Load average (1 min, mean of before and after each run) during the runs {min(loads):.1f}-{max(loads):.1f} "
        f"(median {med(loads):.1f}) on {os.cpu_count()} cores.",
    ]
    if on_ray:
        ray_reports = [r for x in on_ray for r in reports[x]]
        reused = all("already started (reused" in r.workers_note for r in ray_reports)
        connect = [float(m.group(1)) for r in ray_reports if (m := re.search(r"([\d.]+) s to connect", r.workers_note))]
        actors = [a for x in on_ray for _, _, a in results[x] if a]
        lines += [
            "",
            f"Ray: Ray Data on a local instance, `ray.init(num_cpus={ray_info['cpus']})`, started once before the warm-up in "
            f"{ray_info['start_seconds']:.1f} s. That start-up is **excluded** from the timed Ray runs: "
            + (f"every one reports it reused the instance ({med(connect) if connect else 0:.1f} s to connect, included). " if reused
               else f"NOT every run reused it: {ray_reports[0].workers_note!r}. ")
            + (f"Each `add` starts its own actor pools: new actors per run (counted in Ray's actor table) "
               f"{' or '.join(f'{a} load+split and {b} embedding' for a, b in sorted(set(actors)))}; "
               "each embedding actor builds the embedder. That start-up is **included** in the Ray wall time (in 'wait for workers'). " if actors
               else "The actors per run were not counted (Ray's actor table was not readable). ")
            + f"A Ray task with num_cpus=1, as the engine's actors have, sees torch threads = {ray_info['torch_threads']}.",
        ]  # fmt: skip
    lines += [
        "",
        f"| measure | {' | '.join(labels)} | {' | '.join(f'{x} vs {one}' for x in others)} |",
        "| --- |" + " --- |" * (len(labels) + len(others)),
        *["| " + " | ".join(row) + " |" for row in rows],
        "",
        "### Reading (written by the script from the numbers above)",
        "",
        *reading(args, labels, reports, walls, bound, loads, on_ray),
    ]
    return "\n".join(lines)


def reading(args, labels, reports, walls, bound, loads, on_ray) -> list[str]:
    """Plain sentences from the measured numbers, nothing else."""
    med = statistics.median
    one, others = labels[0], labels[1:]
    out = []
    if args.smoke:
        out.append("- **Smoke run**: a few small files and one repeat, a check that the script works, not a measurement.")
    fastest = min(labels, key=walls.get)
    out.append(f"- Fastest by median wall time: **{fastest}** ({walls[fastest]:.1f} s" + (f"; one process {walls[one]:.1f} s)." if fastest != one else ")."))
    for x in others:
        pairs = med([a.seconds / b.seconds for a, b in zip(reports[one], reports[x])])
        out.append(f"- {x} vs one process: {walls[one] / walls[x]:.2f}x by the medians, {pairs:.2f}x by the median of the alternating pairs.")
    pool = others[0]
    pool_ratio = walls[one] / walls[pool]
    out.append(
        f"- Issue 15's goal for the pool (at least 1.7x one process, same chunks): **{'met' if pool_ratio >= 1.7 else 'not met'}** "
        f"({pool_ratio:.2f}x). Embedding is {med([r.embed_seconds / r.seconds for r in reports[one]]):.0%} of the single-process wall time, "
        f"so a pool that only loads and splits can give at most {bound:.2f}x (Amdahl)."
    )
    for x in on_ray:
        rs = reports[x]
        out.append(
            f"- On Ray the main process waited {med([r.wait_seconds for r in rs]):.1f} s for the pipeline "
            f"({med([r.wait_seconds / r.seconds for r in rs]):.0%} of its wall time, actor start-up included) and stored for "
            f"{med([r.store_seconds for r in rs]):.1f} s; the actors' embedding summed {med([r.embed_seconds for r in rs]):.1f} s, "
            f"vs {med([r.embed_seconds for r in reports[one]]):.1f} s in one process."
        )
    busy = max(loads) > (os.cpu_count() or 1)
    out.append(
        f"- Load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores: "
        + ("the cores were shared with other work, so these are ratios under load." if busy else "no more runnable work than cores during the runs.")
    )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
