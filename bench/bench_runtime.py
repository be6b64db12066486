"""Runtime benchmark: our transformer runtime against Hugging Face transformers, same run.

    python bench/bench_runtime.py            # the full table (~10 min on 2 cores)
    python bench/bench_runtime.py --quick    # a smoke run (CI): tiny sizes, 1 repeat
    python bench/bench_runtime.py --fast     # only the fastest path (q4) against llama.cpp and
                                             # transformers: decode at 1 and 2 threads, time to first
                                             # token with a 1,000-token prompt, prefill 512

Follows ../shared/BENCH.md: both sides use the same weights (transformers loads the
same GGUF and dequantizes it to the same float32 numbers), the same inputs, 2 threads;
A and B alternate; each figure is the median of >= 5 repeats after a warm-up;
load time and peak memory are measured in fresh processes (bench_runtime_child.py).
The table is printed and written to bench/results_runtime.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader draws progress bars

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def alternate(sides: dict, repeats: int, warmup: int = 1) -> dict[str, float]:
    """Run each side's zero-argument callable in turn (A, B, A, B...); median seconds per side."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    times = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bandwidth_gbs(megabytes: int) -> dict[str, float]:
    """Memory bandwidth: a large tensor copy (bytes read + written) and a large sum (bytes read)."""
    a = torch.ones(megabytes * 2**20 // 4)
    b = torch.empty_like(a)
    copy = alternate({"copy": lambda: b.copy_(a)}, repeats=5)["copy"]
    read = alternate({"sum": lambda: a.sum()}, repeats=5)["sum"]
    return {"copy": 2 * a.numel() * 4 / copy / 1e9, "read": a.numel() * 4 / read / 1e9}


def weight_bytes_per_token(module) -> int:
    """Bytes a decode step must stream: every weight once. The embedding table is only gathered
    (one row), unless it is also the unembedding matrix, which is read in full."""
    tied = getattr(module.unembed, "weight", None) is module.embed.weight
    total = 0
    for name, t in list(module.named_parameters(remove_duplicate=True)) + list(module.named_buffers()):
        if name.startswith("rotary.") or (name == "embed.weight" and not tied):
            continue
        total += t.numel() * t.element_size()
    return total


def child(side: str, tokens: int, cache: str | None = None) -> dict:
    cmd = [sys.executable, str(HERE / "bench_runtime_child.py"), side, "--tokens", str(tokens)]
    if cache:
        cmd += ["--cache", cache]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_compile(repeats: int) -> None:
    """torch.compile(dynamic=True) applied from outside to the decoder's forward, against eager."""
    torch.set_num_threads(2)
    from llm_magics import models

    lm = models.load("smollm2")
    ids = lm.encode("The history of the Roman empire begins with")

    def run():
        lm.generate(ids, max_new_tokens=32, stop_token_ids=[])

    run()
    eager = lm.module.forward
    started = time.perf_counter()
    lm.module.forward = torch.compile(eager, dynamic=True)
    run()  # compiles the prefill and the decode step
    compile_s = time.perf_counter() - started
    compiled = lm.module.forward

    def use(fn):
        def go():
            lm.module.forward = fn
            run()

        return go

    t = alternate({"eager": use(eager), "compiled": use(compiled)}, repeats, warmup=0)
    print(f"| torch.compile decode (32 tokens) | compiled {32 / t['compiled']:.1f} tok/s | eager {32 / t['eager']:.1f} tok/s "
          f"| {t['eager'] / t['compiled']:.2f}x | compile + first run {compile_s:.0f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke mode: small sizes, 1 repeat, no file written")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results_runtime.md"))
    parser.add_argument("--compile", action="store_true", help="only measure torch.compile on decode (compile time, tok/s vs eager)")
    parser.add_argument("--fast", action="store_true", help="only the q4 path against llama.cpp and transformers")
    args = parser.parse_args()
    if args.compile:
        return measure_compile(args.repeats)
    if args.fast:
        from bench_fast import measure_fast

        return measure_fast(args.repeats, quick=args.quick, out=Path(args.out))
    quick = args.quick
    repeats = 1 if quick else args.repeats
    new_tokens = 8 if quick else 64
    prefill_len = 64 if quick else 512
    n_sentences = 64 if quick else 512

    torch.set_num_threads(2)
    load_before = os.getloadavg()[0]
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    from llm_magics import runtime
    from llm_magics.models import resolve

    rows: list[tuple[str, str, str, str]] = []  # (what, ours, peer, ratio)

    def row(what, ours, peer, unit, higher_is_better=True):
        ratio = ours / peer if higher_is_better else peer / ours
        rows.append((what, f"{ours:.1f} {unit}", f"{peer:.1f} {unit}", f"{ratio:.2f}x"))
        print(f"{what}: ours {ours:.2f} {unit}, peer {peer:.2f} {unit}, {ratio:.2f}x", flush=True)

    # ── load time and peak memory, each in a fresh process ──
    cache = tempfile.mkdtemp(prefix="llm_magics_bench_cache_")
    loads = {"ours-cold": [], "ours-cached": [], "hf": []}
    peak = {}
    child("ours-cached", 1, cache)  # fill the cache that the "cached" rows read
    for _ in range(1 if quick else 3):
        for side in ("hf", "ours-cold", "ours-cached"):
            result = child(side, new_tokens, cache if side != "ours-cold" else None)
            loads[side].append(result["load_s"])
            peak[side] = result["peak_rss_mb"]
    peak["ours-int8"] = child("ours-int8", new_tokens, cache)["peak_rss_mb"]
    hf_load = statistics.median(loads["hf"])
    row("SmolLM2 load, first time (s, incl. imports)", statistics.median(loads["ours-cold"]), hf_load, "s", False)
    row("SmolLM2 load, cached (s, incl. imports)", statistics.median(loads["ours-cached"]), hf_load, "s", False)
    row("SmolLM2 peak RSS, load + generate, fp32 (MB)", peak["ours-cached"], peak["hf"], "MB", False)
    row("SmolLM2 peak RSS, int8 vs transformers fp32 (MB)", peak["ours-int8"], peak["hf"], "MB", False)

    # ── decode and prefill ──
    os.environ["LLM_MAGICS_CACHE"] = cache
    path = resolve("smollm2").path
    ours = {dtype: models.load("smollm2", dtype=dtype) for dtype in ("float32", "bfloat16", "int8")}
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
    hf_bf16 = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.bfloat16
    ).eval()
    prompt_ids = ours["float32"].encode("The history of the Roman empire begins with")

    def ours_decode(lm):
        return lambda: lm.generate(prompt_ids, max_new_tokens=new_tokens, stop_token_ids=[])

    def hf_decode(model):
        ids = torch.tensor([prompt_ids])

        def run():
            with torch.inference_mode():
                model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)

        return run

    t = alternate(
        {"ours fp32": ours_decode(ours["float32"]), "hf fp32": hf_decode(hf),
         "ours bf16": ours_decode(ours["bfloat16"]), "hf bf16": hf_decode(hf_bf16),
         "ours int8": ours_decode(ours["int8"])},
        repeats,
    )  # fmt: skip
    tps = {k: new_tokens / v for k, v in t.items()}
    row(f"decode tok/s, fp32 ({new_tokens} tokens, greedy)", tps["ours fp32"], tps["hf fp32"], "tok/s")
    row("decode tok/s, bf16 vs transformers bf16", tps["ours bf16"], tps["hf bf16"], "tok/s")
    row("decode tok/s, int8 weight-only vs transformers fp32", tps["ours int8"], tps["hf fp32"], "tok/s")

    ids = torch.randint(100, 40000, (1, prefill_len))

    def ours_prefill(lm):
        def run():
            with torch.inference_mode():
                lm.module(ids, last_only=True)

        return run

    def hf_prefill(model):
        def run():
            with torch.inference_mode():
                model(ids, logits_to_keep=1, use_cache=False)

        return run

    t = alternate({"ours": ours_prefill(ours["float32"]), "hf": hf_prefill(hf),
                   "ours bf16": ours_prefill(ours["bfloat16"]), "hf bf16": hf_prefill(hf_bf16)}, repeats)  # fmt: skip
    row(f"prefill tok/s, {prefill_len} tokens, fp32", prefill_len / t["ours"], prefill_len / t["hf"], "tok/s")
    row(f"prefill tok/s, {prefill_len} tokens, bf16", prefill_len / t["ours bf16"], prefill_len / t["hf bf16"], "tok/s")

    # ── how close decode comes to the memory-bandwidth limit ──
    bw = bandwidth_gbs(256 if quick else 1024)
    bandwidth_rows = []
    for dtype, key in (("float32", "ours fp32"), ("bfloat16", "ours bf16"), ("int8", "ours int8")):
        nbytes = weight_bytes_per_token(ours[dtype].module)
        bound = bw["read"] * 1e9 / nbytes
        bandwidth_rows.append((dtype, nbytes / 1e6, bound, tps[key], tps[key] / bound))
    del ours, hf, hf_bf16

    # ── embeddings ──
    minilm = models.load("minilm")
    hf_enc = transformers.AutoModel.from_pretrained(str(minilm.path)).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(minilm.path))
    words = ("the model reads every weight once per token so decode speed is set by memory bandwidth "
             "while prefill and embedding batches are compute bound and benefit from larger matrices").split()  # fmt: skip
    sentences = [" ".join(words[(i * 7) % len(words) :][: 4 + (i * 13) % 40]) for i in range(n_sentences)]

    def hf_embed():
        for start in range(0, len(sentences), 64):
            batch = hf_tok(sentences[start : start + 64], padding=True, truncation=True, max_length=256, return_tensors="pt")
            with torch.inference_mode():
                hidden = hf_enc(**batch).last_hidden_state
            mask = batch["attention_mask"][:, :, None].float()
            torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()

    t = alternate({"ours": lambda: minilm.embed(sentences, batch_size=64), "hf": hf_embed}, repeats)
    row(f"MiniLM embedding sentences/s (batch 64, {n_sentences} sentences)", n_sentences / t["ours"], n_sentences / t["hf"], "sent/s")

    # ── the table ──
    lines = [
        "| What | Ours | transformers | Ratio (better than peer > 1) |",
        "| --- | --- | --- | --- |",
        *[f"| {w} | {o} | {p} | {r} |" for w, o, p, r in rows],
        "",
        f"Memory bandwidth: {bw['copy']:.1f} GB/s copy (read + write), {bw['read']:.1f} GB/s read (sum).",
        "",
        "| Decode dtype | Weight bytes / token | Bandwidth bound | Measured | Fraction of bound |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {d} | {mb:.0f} MB | {b:.1f} tok/s | {m:.1f} tok/s | {f:.0%} |" for d, mb, b, m, f in bandwidth_rows],
    ]
    table = "\n".join(lines)
    print("\n" + table)
    if not quick:
        command = "python bench/bench_runtime.py" + (f" --repeats {args.repeats}" if args.repeats != 5 else "")
        header = (
            f"# Runtime benchmark\n\n{datetime.date.today().isoformat()}, `{command}`, "
            f"torch {torch.__version__}, transformers {transformers.__version__}, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch.set_num_threads(2). "
            f"Medians of {repeats} alternating repeats after a warm-up. Load average {load_before:.1f} at the "
            f"start, {os.getloadavg()[0]:.1f} at the end: other jobs shared these 2 cores, which lowers every "
            "absolute figure; the ratios are measured side by side.\n\n"
        )
        Path(args.out).write_text(header + table + "\n")
        print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
