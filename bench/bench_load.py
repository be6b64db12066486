"""Decode speed when the cores are busy: 0, 1 and 2 competing CPU-bound processes.

    python bench/bench_load.py             # the full table, written to bench/results_load.md
    python bench/bench_load.py --quick     # a smoke run (CI): 4 tokens, 1 repeat, no file written

Each competitor is a real `python -c "while True: pass"` child, started before a load
level is measured and killed after it. At each level the sides run alternately (A, B, C...)
and each figure is the median of the repeats after a warm-up (shared/BENCH.md). Sides:

    ours q4, threads="auto"   the runtime's default: threads follow the free cores (runtime/threads.py)
    ours q4, 2 threads        the same model with the count fixed, to show what the policy saves
    ours fp32, threads="auto"
    transformers fp32         generate() with torch.set_num_threads(2), as BENCH.md asks
    llama.cpp, 2 threads      llama-cpp-python on the same GGUF (when it is installed)

The figure of merit is loaded/quiet: the fraction of its own quiet speed a side keeps.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
PROMPT = "The history of the Roman empire begins with"


def competitors(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        child.kill()
        child.wait()


def make_sides(new_tokens: int) -> dict:
    """name -> a zero-argument callable that decodes `new_tokens` greedy tokens; returns tokens made."""
    from llm_magics import runtime
    from llm_magics.models import resolve

    spec = resolve("smollm2")
    q4 = runtime.load(spec, dtype="q4")
    fp32 = runtime.load(spec, dtype="float32")
    ids = q4.encode(PROMPT)

    def ours(lm, threads):
        def run():
            g = lm.generate(ids, max_new_tokens=new_tokens, stop_token_ids=[], stream=True, threads=threads)
            g.read()
            return len(g.token_ids)

        return run

    sides = {
        'ours q4, threads="auto"': ours(q4, "auto"),
        "ours q4, 2 threads": ours(q4, 2),
        'ours fp32, threads="auto"': ours(fp32, "auto"),
    }
    import transformers

    transformers.logging.set_verbosity_error()
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(spec.path.parent), gguf_file=spec.path.name).eval()
    hf_ids = torch.tensor([ids])

    def hf_run():
        torch.set_num_threads(2)
        with torch.inference_mode():
            out = hf.generate(hf_ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        return out.shape[1] - hf_ids.shape[1]

    sides["transformers fp32, 2 threads"] = hf_run
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed: no llama.cpp rows", flush=True)
        return sides
    llm = llama_cpp.Llama(model_path=str(spec.path), n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)

    def llama_run():
        llm.reset()
        n = 0
        for token in llm.generate(ids, top_k=1, temp=0.0, reset=True):
            n += 1
            if n == new_tokens:
                break
        return n

    sides["llama.cpp, 2 threads"] = llama_run
    return sides


def measure(sides: dict, repeats: int) -> dict[str, float]:
    """tok/s per side: alternate A, B, C..., one warm-up round, median of `repeats`."""
    for fn in sides.values():
        fn()
    rates = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            t = time.perf_counter()
            n = fn()
            rates[name].append(n / (time.perf_counter() - t))
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--levels", default="0,1,2", help="competitor counts to measure (0 must be first: it is the quiet baseline)")
    parser.add_argument("--out", default=str(HERE / "results_load.md"))
    args = parser.parse_args()
    repeats, tokens = (1, 4) if args.quick else (args.repeats, args.tokens)
    torch.set_num_threads(2)
    sides = make_sides(tokens)
    loads = {}
    results: dict[int, dict[str, float]] = {}
    levels = [int(x) for x in args.levels.split(",")]
    if levels[0] != 0:
        parser.error("--levels must start with 0 (the quiet baseline)")
    for n in levels:
        children = competitors(n)
        try:
            time.sleep(0.5)
            loads[n] = os.getloadavg()[0]
            results[n] = measure(sides, repeats)
        finally:
            stop(children)
        print(f"{n} competitors:", {k: round(v, 1) for k, v in results[n].items()}, flush=True)

    loaded = levels[1:]
    lines = [
        "| Side | quiet tok/s | " + " | ".join(f"{n} competitor{'s' * (n > 1)}" for n in loaded) + " | " + " | ".join(f"kept with {n}" for n in loaded) + " |",
        "| --- " * (2 + 2 * len(loaded)) + "|",
    ]
    for name in sides:
        q = results[0][name]
        lines.append(f"| {name} | {q:.1f} | " + " | ".join(f"{results[n][name]:.1f}" for n in loaded) + " | " + " | ".join(f"{results[n][name] / q:.0%}" for n in loaded) + " |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.quick:
        return
    header = (
        f"# Decode under load\n\n{datetime.date.today().isoformat()}, `python bench/bench_load.py {' '.join(sys.argv[1:])}`, "
        f"SmolLM2-135M-Instruct Q4_1 GGUF, {tokens} greedy tokens, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores. Medians of {repeats} alternating "
        f"repeats after a warm-up at each level. Load average when each level started: "
        + ", ".join(f"{n} competitors {loads[n]:.1f}" for n in loads)
        + ". The machine was shared with other jobs, so even the 'quiet' column ran beside them; "
        "the ratios (kept = loaded / quiet) are the figure of merit.\n\n"
    )
    Path(args.out).write_text(header + table + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
