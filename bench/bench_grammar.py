"""Constrained decoding: what the grammar mask costs per generated token.

    .venv/bin/python bench/bench_grammar.py        # writes bench/results_grammar.md

SmolLM2-135M-Instruct on our runtime, greedy, the same prompt and the same number of new
tokens (``stop_token_ids=[]`` so both run to the limit), alternating with and without a
``GrammarConstraint`` (llguidance) built from a JSON Schema (the calculator's arguments)
and from the ReAct step grammar of two tools. Reported: decode ms/token for each, the
ratio, and the mask step alone (``constraint(ids, logits)`` replayed over the same tokens,
no model), median over alternating repeats after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from llm_magics import models
    from llm_magics.agents import get_tools
    from llm_magics.agents.react import step_grammar
    from llm_magics.runtime.grammar import GrammarConstraint, ll_tokenizer

    lm = models.load("smollm2")
    t0 = time.perf_counter()
    ll_tokenizer(lm.tokenizer)
    tokenizer_s = time.perf_counter() - t0
    calc = get_tools("calculator")[0]
    from types import SimpleNamespace

    react_tools = get_tools(["calculator", "search"], index=SimpleNamespace(collection="docs"))  # only the schemas are used
    grammars = {
        "json schema (calculator args)": lambda: GrammarConstraint.from_json_schema(lm.tokenizer, calc.parameters),
        "ReAct step (2 tools)": lambda: GrammarConstraint.from_lark(lm.tokenizer, step_grammar(react_tools)),
    }
    prompt = lm.chat_prompt("Compute 12 times 7 with the calculator; reply with its JSON arguments.")
    ids = lm.encode(prompt)
    rows = []
    for label, make in grammars.items():
        t0 = time.perf_counter()
        make()
        compile_s = time.perf_counter() - t0
        n_tokens = [args.tokens]

        def run(constrained):
            # constrained: until the grammar is complete (at most --tokens); free: exactly as many tokens
            kw = dict(max_new_tokens=n_tokens[0], stop_on_loop=False, stream=True)
            kw.update(logits_processor=make()) if constrained else kw.update(stop_token_ids=[])
            g = lm.generate(ids, **kw)
            g.read()
            if constrained:
                n_tokens[0] = max(2, len(g.token_ids))
            return g.timings["decode_s"] / max(1, len(g.token_ids)), g.token_ids, kw.get("logits_processor")
        run(True), run(False)  # warm-up (and the constrained length)
        free, masked = [], []
        for _ in range(args.repeats):
            masked.append(run(True)[0])
            free.append(run(False)[0])
        _, tokens, _ = run(True)
        mask_times = []
        for _ in range(args.repeats):
            c = make()
            logits = torch.zeros(lm.config.vocab_size)
            t0 = time.perf_counter()
            for i in range(len(tokens)):
                if c._matcher.is_stopped():
                    break
                c(tokens[:i], logits)
            mask_times.append((time.perf_counter() - t0) / max(1, i + 1))
        rows.append((label, compile_s, statistics.median(free), statistics.median(masked), statistics.median(mask_times)))
        print(rows[-1], flush=True)
    lines = [
        "# Constrained decoding: cost per token", "",
        f"{date.today()} · `.venv/bin/python bench/bench_grammar.py {' '.join(sys.argv[1:])}` · SmolLM2-135M-Instruct fp32, greedy, "
        f"the constrained output's length (at most {args.tokens} new tokens) on both sides, {args.threads} torch threads, median of {args.repeats} alternating repeats. "
        f"llguidance tokenizer build (once per tokenizer): {tokenizer_s:.2f} s.", "",
        "| grammar | compile | decode ms/token, free | decode ms/token, constrained | ratio | mask alone ms/token |",
        "| --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for label, compile_s, free, masked, mask in rows:
        lines.append(f"| {label} | {compile_s * 1000:.0f} ms | {free * 1000:.1f} | {masked * 1000:.1f} | {masked / free:.2f}× | {mask * 1000:.2f} |")
    (HERE / "results_grammar.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
