"""The fastest decode path (dtype="q4") against llama.cpp and transformers: `bench_runtime.py --fast`.

    python bench/bench_runtime.py --fast            # writes the "Fastest path" section of results_runtime.md
    python bench/bench_runtime.py --fast --quick    # smoke run

Same GGUF for everyone (SmolLM2-135M-Instruct Q4_1): llama.cpp (llama-cpp-python) reads it
directly, our q4 keeps its blocks, transformers dequantizes it to float32. Every side decodes
the same greedy tokens from the same prompt ids, at the same thread count; sides alternate,
medians of the repeats after a warm-up (shared/BENCH.md). Rows:

    decode tok/s at 2 and at 1 thread    (64 tokens from a 9-token prompt, prefill included)
    time to first token, 1,000-token prompt, 2 threads
    prefill tok/s, 512 tokens, 2 threads (q4 dequantizes each matrix and runs one matmul: bfloat16
                                          on a CPU with bf16 units, else float32; the report says which)
    q4's greedy tokens against our float32 path's, on several prompts
    the memory-bandwidth bound of each format
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import torch

PROMPTS = [
    "The history of the Roman empire begins with",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nExplain what a hash table is.<|im_end|>\n<|im_start|>assistant\n",
    "Photosynthesis is the process by which",
    "import numpy as np\n\ndef softmax(x):",
]


def _alternate(sides: dict, repeats: int) -> dict[str, float]:
    """Median seconds per side, A, B, C... alternating, after one warm-up round."""
    for fn in sides.values():
        fn()
    times = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def agreement(ref_lm, lm, new_tokens: int) -> tuple[list[int], float]:
    """Per prompt, how many greedy tokens equal the reference's before the first difference; and the
    fraction of all positions equal."""
    prefix, same, total = [], 0, 0
    for prompt in PROMPTS:
        a = ref_lm.generate(prompt, max_new_tokens=new_tokens, stop_token_ids=[], stream=True, threads=1)
        b = lm.generate(prompt, max_new_tokens=new_tokens, stop_token_ids=[], stream=True, threads=1)
        a.read(), b.read()
        prefix.append(next((i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y), len(a.token_ids)))
        same += sum(x == y for x, y in zip(a.token_ids, b.token_ids))
        total += len(a.token_ids)
    return prefix, same / total


def measure_fast(repeats: int, quick: bool, out: Path) -> None:
    import transformers

    from bench_runtime import bandwidth_gbs, weight_bytes_per_token
    from llm_magics import runtime
    from llm_magics.runtime import quantize
    from llm_magics.models import resolve

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(2)
    repeats = 1 if quick else repeats
    new_tokens, ttft_len, prefill_len = (8, 100, 64) if quick else (64, 1000, 512)
    spec = resolve("smollm2")
    q4 = runtime.load(spec, dtype="q4")
    q4_int8 = runtime.load(spec, dtype="q4")
    quantize.set_decode(q4_int8.module, "int8")  # x rounded to int8 blocks in the products, as llama.cpp does
    fp32 = runtime.load(spec, dtype="float32")
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(spec.path.parent), gguf_file=spec.path.name).eval()
    try:
        import llama_cpp

        llamas = {n: llama_cpp.Llama(model_path=str(spec.path), n_ctx=2048, n_threads=n, n_threads_batch=n, verbose=False)
                  for n in (1, 2)}  # fmt: skip
    except ImportError:
        llamas = {}
        print("llama-cpp-python is not installed: no llama.cpp rows", flush=True)
    ids = q4.encode(PROMPTS[0])
    rows: list[str] = []

    def ours(lm, n, threads, prompt=ids):
        return lambda: lm.generate(prompt, max_new_tokens=n, stop_token_ids=[], threads=threads)

    def hf_gen(n, threads, prompt=ids):
        x = torch.tensor([prompt])

        def run():
            torch.set_num_threads(threads)
            with torch.inference_mode():
                hf.generate(x, max_new_tokens=n, min_new_tokens=n, do_sample=False)
            torch.set_num_threads(2)

        return run

    def llama_gen(llm, n, prompt=ids):
        def run():
            llm.reset()  # no reuse of the previous call's prompt cache
            for i, _ in enumerate(llm.generate(prompt, top_k=1, temp=0.0, reset=True), 1):
                if i == n:
                    break

        return run

    # ── decode ──
    decode = {}
    for threads in (2, 1):
        sides = {"ours q4": ours(q4, new_tokens, threads), "ours q4 int8": ours(q4_int8, new_tokens, threads),
                 "ours fp32": ours(fp32, new_tokens, threads), "transformers fp32": hf_gen(new_tokens, threads)}  # fmt: skip
        if threads in llamas:
            sides["llama.cpp Q4_1"] = llama_gen(llamas[threads], new_tokens)
        t = _alternate(sides, repeats)
        decode[threads] = {k: new_tokens / v for k, v in t.items()}
        print(f"decode, {threads} thread(s):", {k: round(v, 1) for k, v in decode[threads].items()}, flush=True)
    best_llama = max((decode[n].get("llama.cpp Q4_1", 0) for n in (1, 2)), default=0)
    rows.append("| What | ours q4 | ours q4, int8 activations | ours fp32 | transformers fp32 | llama.cpp Q4_1 | "
                "q4 / llama.cpp | q4 int8 / llama.cpp |")  # fmt: skip
    rows.append("| --- | --- | --- | --- | --- | --- | --- | --- |")

    def ratios(ours_q4, ours_int8, lc):
        return (f"{lc:.1f}", f"{ours_q4 / lc:.2f}x", f"{ours_int8 / lc:.2f}x") if lc else ("n/a", "n/a", "n/a")

    for threads in (2, 1):
        d = decode[threads]
        peer, ratio, ratio8 = ratios(d["ours q4"], d["ours q4 int8"], d.get("llama.cpp Q4_1"))
        rows.append(f"| decode tok/s, {threads} thread{'s' * (threads > 1)} ({new_tokens} tokens) | {d['ours q4']:.1f} | "
                    f"{d['ours q4 int8']:.1f} | {d['ours fp32']:.1f} | {d['transformers fp32']:.1f} | {peer} | {ratio} | "
                    f"{ratio8} |")  # fmt: skip
    if best_llama:
        best = {side: max(decode[n][side] for n in (1, 2)) for side in ("ours q4", "ours q4 int8")}
        peer, ratio, ratio8 = ratios(best["ours q4"], best["ours q4 int8"], best_llama)
        rows.append(f"| best of 1 and 2 threads | {best['ours q4']:.1f} | {best['ours q4 int8']:.1f} | | | {peer} | {ratio} | "
                    f"{ratio8} |")  # fmt: skip

    # ── time to first token, long prompt ──
    long_ids = (q4.encode(" ".join(PROMPTS) + " ") * 40)[:ttft_len]
    sides = {"ours q4": ours(q4, 1, 2, long_ids), "ours q4 int8": ours(q4_int8, 1, 2, long_ids),
             "ours fp32": ours(fp32, 1, 2, long_ids), "transformers fp32": hf_gen(1, 2, long_ids)}  # fmt: skip
    if 2 in llamas:
        sides["llama.cpp Q4_1"] = llama_gen(llamas[2], 1, long_ids)
    t = _alternate(sides, repeats)
    lc = t.get("llama.cpp Q4_1")
    peer, ratio = (f"{lc:.2f}", f"{lc / t['ours q4']:.2f}x") if lc else ("n/a", "n/a")
    ratio8 = f"{lc / t['ours q4 int8']:.2f}x" if lc else "n/a"
    rows.append(f"| time to first token (s), {ttft_len}-token prompt, 2 threads | {t['ours q4']:.2f} | {t['ours q4 int8']:.2f} | "
                f"{t['ours fp32']:.2f} | {t['transformers fp32']:.2f} | {peer} | {ratio} (llama.cpp's time / ours) | "
                f"{ratio8} |")  # fmt: skip
    print("ttft", t, flush=True)

    # ── prefill ──
    x = torch.randint(100, 40000, (1, prefill_len))

    def prefill(module):
        def run():
            with torch.inference_mode():
                module(x, last_only=True)

        return run

    def hf_prefill():
        with torch.inference_mode():
            hf(x, logits_to_keep=1, use_cache=False)

    t = _alternate({"ours q4": prefill(q4.module), "ours fp32": prefill(fp32.module), "hf": hf_prefill}, repeats)
    p = {k: prefill_len / v for k, v in t.items()}
    rows.append(f"| prefill tok/s, {prefill_len} tokens, 2 threads | {p['ours q4']:.1f} | (as q4) | {p['ours fp32']:.1f} | "
                f"{p['hf']:.1f} | | q4 / transformers {p['ours q4'] / p['hf']:.2f}x, fp32 / transformers "
                f"{p['ours fp32'] / p['hf']:.2f}x | |")  # fmt: skip
    print("prefill", p, flush=True)

    # ── agreement and bandwidth ──
    prefix, equal = agreement(fp32, q4, 16 if quick else 64)
    prefix8, equal8 = agreement(fp32, q4_int8, 16 if quick else 64)
    probe = q4.generate(ids, max_new_tokens=2, stop_token_ids=[], stream=True)
    probe.read()
    fused_used = probe.timings["fused_decode"]
    bw = bandwidth_gbs(256 if quick else 1024)
    bound = []
    for name, lm, side in (("q4", q4, "ours q4"), ("q4, int8 activations", q4_int8, "ours q4 int8"), ("float32", fp32, "ours fp32")):
        nbytes = weight_bytes_per_token(lm.module)
        best = max(decode[n][side] for n in (1, 2))
        limit = bw["read"] * 1e9 / nbytes
        bound.append(f"| {name} | {nbytes / 1e6:.0f} MB | {limit:.0f} tok/s | {best:.1f} tok/s | {best / limit:.0%} |")
    lines = [
        *rows,
        "",
        f"q4 against our float32 path, greedy, {len(PROMPTS)} prompts x {16 if quick else 64} tokens: tokens equal "
        f"before the first difference per prompt {prefix}; {equal:.1%} of all positions equal "
        f"(q4's prefill matmuls in {'bfloat16: this CPU has bf16 units' if quantize.native_bf16() else 'float32'}). "
        f"q4 with int8 activations: {prefix8} per prompt; {equal8:.1%} of all positions equal.",
        "",
        f"Decode steps of the q4 columns run as one C call each (runtime/fused.py): {'yes' if fused_used else 'no'}.",
        "",
        f"Memory bandwidth (read, a large torch sum): {bw['read']:.1f} GB/s.",
        "",
        "| Format | Weight bytes / token | Bandwidth bound | Best measured | Fraction |",
        "| --- | --- | --- | --- | --- |",
        *bound,
    ]
    table = "\n".join(lines)
    print("\n" + table)
    if quick:
        return
    section = (
        f"\n## Fastest path: q4 against llama.cpp\n\n{datetime.date.today().isoformat()}, "
        f"`python bench/bench_runtime.py --fast`, torch {torch.__version__}, "
        f"llama-cpp-python {getattr(__import__('llama_cpp'), '__version__', '?') if llamas else 'not installed'}"
        f"{' built with `' + __import__('llama_cpp').llama_print_system_info().decode().strip() + '`' if llamas else ''}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores. Medians of {repeats} alternating "
        f"repeats after a warm-up. Load average {os.getloadavg()[0]:.1f} at the end: the machine was shared with "
        "other jobs, so absolute figures are low and the ratios are the result.\n\n"
    )
    old = out.read_text() if out.exists() else "# Runtime benchmark\n"
    old = old.split("\n## Fastest path")[0].rstrip() + "\n"
    out.write_text(old + section + table + "\n")
    print(f"\nwritten to {out}")
