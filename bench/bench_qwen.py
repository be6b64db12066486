"""Qwen2.5-Coder-0.5B-Instruct on our runtime against transformers (and llama.cpp when installed), same run.

    python bench/bench_qwen.py              # ~1,000-token prompt, 64 new tokens, 5 repeats (~10 min on 2 cores)
    python bench/bench_qwen.py --quick      # a smoke run: 64-token prompt, 4 new tokens, 1 repeat
    python bench/bench_qwen.py --llama-build avx512=/tmp/llama512/site --sides ours-q4int8,llama.cpp-2t,llama.cpp-avx512-2t
                                            # also a second llama-cpp-python build (pip install --target DIR), as llama.cpp-NAME-2t

Follows ../shared/BENCH.md. Every side runs in its own process (each model is 0.6-2.5 GB; one
process holding all of them would pass 6 GB), with 2 threads, and the parent makes them take
turns: A, B, C, A, B, C... Every side gets the same token ids (our tokenizer's; test_qwen.py
shows transformers' are identical) and decodes greedily with no early stop. One call per side and
round, generate(prompt, 65 new tokens), timed inside the side's process token by token:

    time to first token (TTFT) = from the call to the first new token, a ~1,000-token prefill
    decode tok/s               = 64 / (the last token's time - the first's), at a ~1,000-token context;
                                 llama.cpp's by its own clock (llama_perf_context: the token
                                 evaluations alone, without llama-cpp-python's per-token Python)

(Until 2026-12-03 the decode rate was 64 / (a 65-token call - a separate 1-token call): a
difference of two calls, which a busy VM's swings between them inflated or deflated; llama.cpp's
AVX2 build once came out at 79.9 tok/s that way, against 28-32 in every other run.)

Sides: ours float32, int8 and q4 when the runtime has it (runtime.load(..., dtype=...)), transformers float32 on the same GGUF
(the same dequantized weights), llama.cpp on the same Q4_K_M GGUF if llama_cpp imports.
Medians of the repeats after one warm-up; load time and peak RSS per process are reported apart.
Writes bench/results_qwen.md.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
MODEL = "qwen2.5-coder-0.5b"
#: The environment variable that hands the --llama-build folders to the side processes.
BUILDS = "LLM_MAGICS_BENCH_LLAMA_BUILDS"
SIDES = ("ours-fp32", "ours-int8", "ours-q4", "ours-q4int8", "transformers-fp32", "llama.cpp-2t", "llama.cpp-1t")  # q4: where quantize.DTYPES has it


# ─── one side, in its own process ─────────────────────────────────────────────


def build_label(side: str) -> str | None:
    """The --llama-build name in a side's name (llama.cpp-avx512-2t: "avx512"); None for the installed build."""
    return side.split("-")[1] if side.startswith("llama.cpp") and side.count("-") == 2 else None


def load_side(side: str, path: Path):
    """A callable (ids, n_new) -> None that generates n_new tokens greedily after ids."""
    import torch

    torch.set_num_threads(2)
    if side.startswith("ours"):
        from llm_magics import runtime

        from llm_magics.runtime import quantize

        dtype = side.split("-")[1].replace("fp32", "float32").replace("q4int8", "q4")  # float32, int8 or q4
        lm = runtime.load(path, dtype=dtype)
        if side == "ours-q4int8":  # q4 with int8 activations in the decode products, as llama.cpp does
            quantize.set_decode(lm.module, "int8")
        fixed = {"threads": 2} if "threads" in inspect.signature(lm.generate).parameters else {}  # not "auto"

        def run_ours(ids, n):
            started = time.perf_counter()
            generation = lm.generate(ids, max_new_tokens=n, stop_token_ids=[], stop_on_loop=False, stream=True, **fixed)
            generation.read()
            end = time.perf_counter() - started
            return end - generation.timings["decode_s"], end  # decode_s: from the first token to the last

        return run_ours
    if side.startswith("transformers"):
        import transformers

        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()

        class Clock:  # a transformers streamer: put() gets the prompt, then each new token
            def __init__(self):
                self.started, self.times = time.perf_counter(), []

            def put(self, value):
                self.times.append(time.perf_counter() - self.started)

            def end(self):
                pass

        def run(ids, n):
            x, clock = torch.tensor([ids]), Clock()
            with torch.inference_mode():
                model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               top_k=None, top_p=None, streamer=clock)  # fmt: skip
            return clock.times[1], clock.times[-1]  # times[0]: the prompt

        return run
    label = build_label(side)
    if label:
        sys.path.insert(0, json.loads(os.environ[BUILDS])[label])
    from llama_cpp import Llama

    n = int(side.rsplit("-", 1)[1].rstrip("t"))  # llama.cpp-2t: 2 threads
    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=n, n_threads_batch=n, verbose=False)

    import llama_cpp

    def run_llama(ids, n):
        llm.reset()  # no reuse of the previous call's KV cache: every call prefills the whole prompt
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        started, first = time.perf_counter(), None
        for _ in llm.create_completion(ids, max_tokens=n, temperature=0.0, top_k=1, stream=True,
                                       logit_bias={t: -1e9 for t in (151643, 151645)}):  # fmt: skip
            first = first or time.perf_counter() - started
        # Its decode time by llama.cpp's own clock (the token evaluations alone: no Python sampling,
        # logit bias or detokenizing, which cost it about 1 ms a token here), scaled to n - 1 tokens.
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        return first, first + perf.t_eval_ms / 1000 * (n - 1) / perf.n_eval

    return run_llama


def serve(side: str) -> None:
    """Load, say so, then run each {"ids", "new"} request from stdin and answer with the seconds to its
    first and last new token."""
    from llm_magics.models.install import install

    path = install(MODEL, progress=False)
    started = time.perf_counter()
    run = load_side(side, path)
    ready = {"load_s": time.perf_counter() - started, "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}
    if side.startswith("llama"):  # which kernels this build has (AVX2, AVX512, ...)
        import llama_cpp

        ready["build"] = llama_cpp.llama_print_system_info().decode().strip()
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        first, last = run(request["ids"], request["new"])
        print(json.dumps({"first": first, "last": last, "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}), flush=True)


class Side:
    def __init__(self, name: str):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.info = json.loads(self.proc.stdout.readline())

    def time(self, ids, new) -> tuple[float, float]:
        """(seconds to the first new token, seconds to the last) of one generate(ids, new)."""
        self.proc.stdin.write(json.dumps({"ids": ids, "new": new}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        self.info["rss_gb"] = answer["rss_gb"]
        return answer["first"], answer["last"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ─── the parent: take turns, report ───────────────────────────────────────────


def prompt_ids(n_tokens: int) -> list[int]:
    """~n_tokens of this project's own prose (docs and README), tokenized by our Qwen tokenizer."""
    from llm_magics.models.install import install
    from llm_magics.runtime import weights
    from llm_magics.runtime.tokenizer import Tokenizer

    meta, _ = weights.read_gguf(install(MODEL, progress=False))
    tokenizer = Tokenizer.from_gguf_metadata(meta)
    text = "\n\n".join(p.read_text() for p in [ROOT / "README.md", ROOT / "docs" / "plugin_hooks.md", ROOT / "docs" / "models.md"] if p.exists())
    ids = tokenizer.encode(text)
    while len(ids) < n_tokens:
        ids = ids + ids
    return ids[:n_tokens]


def available(side: str) -> bool:
    if side in ("ours-q4", "ours-q4int8"):
        from llm_magics.runtime import quantize

        return "q4" in quantize.DTYPES
    if side.startswith("llama.cpp"):
        label = build_label(side)
        if label and label not in json.loads(os.environ.get(BUILDS, "{}")):
            print(f"skipped {side}: no --llama-build {label}=DIR", flush=True)
            return False
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smoke run: short prompt, few tokens, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated, from {', '.join(SIDES)}")
    parser.add_argument("--llama-build", action="append", default=[], metavar="NAME=DIR",
                        help="another llama-cpp-python build installed with pip install --target DIR: sides llama.cpp-NAME-2t, -1t")
    parser.add_argument("--out", default=str(HERE / "results_qwen.md"))
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    os.environ[BUILDS] = json.dumps(dict(b.split("=", 1) for b in args.llama_build))  # the sides inherit it
    if args.quick:
        args.repeats, args.prompt_tokens, args.new_tokens = 1, 64, 4
    ids = prompt_ids(args.prompt_tokens)
    names = [s for s in args.sides.split(",") if available(s)]
    sides = []
    try:
        for name in names:  # one at a time: loads do not overlap
            sides.append(Side(name))
            print(f"loaded {name}: {sides[-1].info}", flush=True)
        ttft = {s.name: [] for s in sides}
        decode = {s.name: [] for s in sides}
        for repeat in range(args.repeats + 1):  # the first round is the warm-up
            for s in sides:
                first, last = s.time(ids, 1 + args.new_tokens)
                if repeat:
                    ttft[s.name].append(first)
                    decode[s.name].append(args.new_tokens / (last - first))
            print(f"round {repeat} done", flush=True)
    finally:
        for s in sides:
            s.close()
    rows = []
    for s in sides:
        rows.append({"side": s.name, "load_s": s.info["load_s"], "rss_gb": s.info["rss_gb"], "ttft_s": statistics.median(ttft[s.name]),
                     "build": s.info.get("build"), "decode_tps": statistics.median(decode[s.name]),
                     "decode_range": (min(decode[s.name]), max(decode[s.name]))})  # fmt: skip
    write(rows, args, len(ids))


def write(rows: list[dict], args, n_prompt: int) -> None:
    peer = next((r for r in rows if r["side"] == "transformers-fp32"), None)
    lines = [
        f"# Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF): our runtime vs transformers{' and llama.cpp' if any(r['side'].startswith('llama') for r in rows) else ''}",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, 2 threads per side (llama.cpp-1t: 1). "
        f"Prompt {n_prompt} tokens, {args.new_tokens} new tokens greedy, median of {args.repeats} alternating rounds after a warm-up.",
        "Command: `" + " ".join(["python bench/bench_qwen.py", *sys.argv[1:]]) + "`",
        "",
        "| side | load s | peak RSS GB | TTFT s | TTFT vs transformers | decode tok/s | decode range | decode vs transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ttft_ratio = f"{peer['ttft_s'] / r['ttft_s']:.2f}x faster" if peer else ""
        decode_ratio = f"{r['decode_tps'] / peer['decode_tps']:.2f}x" if peer else ""
        low, high = r["decode_range"]
        lines.append(f"| {r['side']} | {r['load_s']:.1f} | {r['rss_gb']:.2f} | {r['ttft_s']:.2f} | {ttft_ratio} | {r['decode_tps']:.1f} | "
                     f"{low:.1f}-{high:.1f} | {decode_ratio} |")  # fmt: skip
    ours = [r for r in rows if r["side"].startswith("ours")]
    llamas = [r for r in rows if r["side"].startswith("llama")]
    if ours and llamas:
        fast, best = max(ours, key=lambda r: r["decode_tps"]), max(llamas, key=lambda r: r["decode_tps"])
        first, quick = min(ours, key=lambda r: r["ttft_s"]), min(llamas, key=lambda r: r["ttft_s"])
        lines += ["", f"Against llama.cpp's best: our fastest decode ({fast['side']}, {fast['decode_tps']:.1f} tok/s) is "
                      f"{fast['decode_tps'] / best['decode_tps']:.2f}x {best['side']}'s {best['decode_tps']:.1f} tok/s; our quickest "
                      f"first token ({first['side']}, {first['ttft_s']:.2f} s) is {quick['ttft_s'] / first['ttft_s']:.2f}x as fast as "
                      f"{quick['side']}'s {quick['ttft_s']:.2f} s."]  # fmt: skip
    lines += ["", "Load time includes the GGUF conversion on a cold weights cache (ours: later loads read the cache).", ""]
    lines += [f"- {r['side']}: llama-cpp-python built with `{r['build']}`" for r in rows if r.get("build")]
    lines += [""] if any(r.get("build") for r in rows) else []
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
