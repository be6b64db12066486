"""One load in a fresh process, for bench_runtime.py: prints {"load_s", "peak_rss_mb", ...} as JSON.

    python bench/bench_runtime_child.py ours-cold|ours-cached|ours-int8|hf  [--tokens N]

Each side runs alone in its own process, so load time includes imports and the
peak RSS (resource.getrusage) is that side's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("side", choices=["ours-cold", "ours-cached", "ours-int8", "hf"])
    parser.add_argument("--tokens", type=int, default=32, help="greedy tokens to generate after loading")
    parser.add_argument("--cache", default=None, help="LLM_MAGICS_CACHE folder for the ours-* sides")
    args = parser.parse_args()
    if args.cache:
        os.environ["LLM_MAGICS_CACHE"] = args.cache
    elif args.side == "ours-cold":
        os.environ["LLM_MAGICS_CACHE"] = tempfile.mkdtemp(prefix="llm_magics_cold_")

    started = time.perf_counter()
    import torch

    torch.set_num_threads(2)
    prompt = "The history of the Roman empire"
    if args.side == "hf":
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        from llm_magics.models import resolve

        path = resolve("smollm2").path
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
        tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        load_s = time.perf_counter() - started
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=args.tokens, do_sample=False)
        text = tok.decode(out[0, ids.shape[1] :])
    else:
        from llm_magics import models

        lm = models.load("smollm2", dtype="int8" if args.side == "ours-int8" else "float32")
        load_s = time.perf_counter() - started
        text = lm.generate(prompt, max_new_tokens=args.tokens)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump({"side": args.side, "load_s": load_s, "peak_rss_mb": peak_kb / 1024, "text": text}, sys.stdout)


if __name__ == "__main__":
    main()
