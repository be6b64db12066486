"""Score ``--format quote`` again on the replies a ``bench_answers.py --format quote`` run stored.

    .venv/bin/python bench/requote.py bench/results_answers_fusion_qwen_convex.jsonl --model qwen2.5-coder-0.5b \\
        --configs convex+expand1+headings

The quote is chosen after generation, from the reply and the passages (``llm_magics/qa/quote.py``),
so a change to it can be measured without running the model again: each question's passages are
retrieved as in the stored run (same ``--configs`` and budget, counted with the same model's
tokenizer), the model's call is answered with the reply the run stored (``generated``), and
``ask(..., format="quote")`` does the rest with today's code. Before anything else it checks that
the stored quotes are reproduced by the code that made them (``--check``), which shows the
passages are the same. Only the quote step is measured here; the README's tables come from full runs.

To compare two versions of the code, run the older one with ``--save OLD.jsonl`` and the newer with
``--baseline OLD.jsonl``. ``PYTHONPATH=<other checkout>`` is not enough: ``bench_answers`` puts this
checkout first on ``sys.path``, so import the other checkout's ``llm_magics`` before running this file
(``runpy.run_path``).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_answers as ba  # noqa: E402

sys.path.insert(0, str(HERE / "corpora"))
import fetch  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="jsonl files written by bench_answers.py --format quote")
    ap.add_argument("--model", default=None)
    ap.add_argument("--configs", default="hybrid+expand1+headings", help="the retrieval variant of the stored run")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--check", action="store_true", help="report quotes that differ from the stored ones")
    ap.add_argument("--show", action="store_true", help="print every question whose score changed")
    ap.add_argument("--save", default=None, help="write each question's quote and score here (jsonl)")
    ap.add_argument("--baseline", default=None, help="a --save file to compare against, instead of the stored quotes")
    args = ap.parse_args(argv)

    from llm_magics import ask, backends, config
    from llm_magics.ingest.embedders import get_embedder

    config.settings().progress = False
    embedder = get_embedder()
    backend = backends.get_model(args.model)
    stored = {}
    for path in args.runs:
        for line in open(path, encoding="utf-8"):
            row = json.loads(line)
            if row.get("side", "ours") == "ours" and "generated" in row:
                stored[row["id"]] = row
    current = {}
    backend.stream = lambda messages, params, usage: iter([current["reply"]])  # the stored reply, not the model
    cfg = ba.CONFIGS[args.configs]
    totals = collections.Counter()
    saved = []
    if args.baseline:
        for line in open(args.baseline, encoding="utf-8"):
            row = json.loads(line)
            stored[row["id"]] = {**stored[row["id"]], "reply": row["reply"], "ok": row["ok"]}
    for name in sorted({r["corpus"] for r in stored.values()}):
        qs = [q for q in ba.load_questions(name, None) if q["id"] in stored]
        index, _ = ba.ours_index(name, fetch.fetch(name), cfg, embedder)
        for q in qs:
            row = stored[q["id"]]
            hits = ba.ours_search(index, q["question"], cfg, args.budget, backend.count_tokens)
            current["reply"] = row["generated"]
            a = ask(q["question"], hits=hits, model=backend, memory=None, max_tokens=64, temperature=0.0, format="quote")
            ok = ba.gold_in(a.answer, q)
            saved.append({"id": q["id"], "reply": a.answer, "ok": ok})
            totals[name, "was"] += row["ok"]
            totals[name, "now"] += ok
            totals[name, "generated"] += row["generated_ok"]
            totals[name, "n"] += 1
            if args.check and a.answer != row["reply"]:
                totals[name, "differ"] += 1
                print(f"DIFFERS {q['id']}\n  stored: {row['reply'][:160]!r}\n  now:    {a.answer[:160]!r}", file=sys.stderr)
            if args.show and ok != row["ok"]:
                print(f"{'GAINED' if ok else 'LOST'} {q['id']} {q['question']!r} gold {q['gold']}\n  reply: {row['generated'][:240]!r}"
                      f"\n  was:   {row['reply'][:200]!r}\n  now:   {a.answer[:200]!r}")
    if args.save:
        Path(args.save).write_text("".join(json.dumps(r) + "\n" for r in saved), encoding="utf-8")
    print(f"| corpus | questions | model's reply right | quote right, {'baseline' if args.baseline else 'stored'} | quote right, now | quotes that differ |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in sorted({k[0] for k in totals}):
        print(f"| {name} | {totals[name, 'n']} | {totals[name, 'generated']} | {totals[name, 'was']} | {totals[name, 'now']} | "
              f"{totals[name, 'differ'] if args.check else ''} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
