"""Fine-tuning benchmark: LoRA training tokens/s and peak memory, our trainer vs transformers + peft.

Follows ../shared/BENCH.md. Both sides, in the same run, alternating (ours, peer, ours, peer, ...),
each repeat a fresh child process so its peak RSS (getrusage) is its own:
  * the same weights: SmolLM2-135M-Instruct from the installed GGUF, dequantized to float32
    (our runtime's loader; transformers' gguf_file loader);
  * the same data: ISO 3166 country-code examples from pycountry, rendered through the model's
    chat template, the same fixed batches in the same order (right-padded; the peer gets an
    attention mask, ours needs none for right padding under causal attention);
  * the same LoRA: r=8, alpha=16, dropout 0.05 on q, k, v, o, gate, up, down;
  * the same optimizer (fused AdamW, lr 2e-4: transformers' Trainer default optim), gradient clipping
    at 1.0, float32, 2 threads.
The peer is a plain PyTorch loop over the peft model (no Trainer/TRL overhead): the fastest
usual way to drive it. Tokens/s counts real (non-padding) tokens; one warm-up step is not timed.

    .venv/bin/python bench/bench_finetune.py                 # 5 repeats each, 6 timed steps
    .venv/bin/python bench/bench_finetune.py --repeats 1 --steps 2   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

HERE = Path(__file__).resolve().parent
RANK, ALPHA, DROPOUT, LR, BATCH = 8, 16, 0.05, 2e-4, 8
TARGETS_HF = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def batches(tokenizer, steps: int):
    """Fixed (ids, labels) batches: the same for both sides (rendered with our formats.render)."""
    import pycountry

    from llm_magics.finetune.formats import render

    rows = sorted(pycountry.countries, key=lambda c: c.alpha_3)
    examples = [[{"role": "system", "content": "Reply with the ISO 3166 alpha-3 code of the country."},
                 {"role": "user", "content": f"Which code does {c.name} have?"},
                 {"role": "assistant", "content": c.alpha_3}] for c in rows]  # fmt: skip
    rendered = [render(tokenizer, m) for m in examples]
    out = []
    for s in range(steps):
        out.append([rendered[(s * BATCH + i) % len(rendered)] for i in range(BATCH)])
    return out


def collate(rows, pad_id):
    import torch

    T = max(len(x) for x, _ in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return ids, labels, mask


def child(side: str, steps: int) -> dict:
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    from llm_magics import models

    started = time.perf_counter()
    lm = models.load("smollm2-135m-instruct")  # our tokenizer renders the data for both sides
    our_load_s = time.perf_counter() - started
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    data = [collate(b, pad) for b in batches(lm.tokenizer, steps + 1)]
    started = time.perf_counter()
    if side == "ours":
        from llm_magics.finetune import lora
        from llm_magics.finetune.trainer import TrainConfig, Trainer

        lora.inject(lm.module, rank=RANK, alpha=ALPHA, dropout=DROPOUT)
        params = [p for p in lm.module.parameters() if p.requires_grad]
        trainer = Trainer.__new__(Trainer)  # only its loss: the labelled positions are unembedded, no others
        trainer.module = lm.module

        def loss_of(ids, labels, mask):
            total, n = Trainer.loss_sum(trainer, ids, labels)
            return total / n

        model = lm.module
    else:
        import transformers
        from peft import LoraConfig, get_peft_model

        transformers.logging.set_verbosity_error()
        del lm
        from llm_magics.models import resolve

        path = Path(resolve("smollm2-135m-instruct").path)
        base = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=DROPOUT, target_modules=TARGETS_HF, task_type="CAUSAL_LM")
        model = get_peft_model(base, config)
        params = [p for p in model.parameters() if p.requires_grad]

        def loss_of(ids, labels, mask):
            return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    load_s = time.perf_counter() - started + (our_load_s if side == "ours" else 0.0)  # ours: models.load + inject
    model.train()
    optimizer = torch.optim.AdamW(params, lr=LR, fused=True)  # transformers' Trainer default (adamw_torch_fused)
    rss_loaded = rss_mb()
    losses, timed, tokens = [], 0.0, 0
    for i, (ids, labels, mask) in enumerate(data):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(ids, labels, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        dt = time.perf_counter() - t0
        losses.append(float(loss))
        if i > 0:  # step 0 is the warm-up
            timed += dt
            tokens += int(mask.sum())
    return {"side": side, "tokens_per_s": tokens / timed, "peak_rss_mb": rss_mb(), "rss_after_load_mb": rss_loaded,
            "load_s": load_s, "losses": losses, "trainable": sum(p.numel() for p in params),
            "loadavg": os.getloadavg()[0]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per repeat (after one warm-up step)")
    parser.add_argument("--out", default=str(HERE / "results_finetune.md"))
    parser.add_argument("--child", choices=("ours", "peer"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return

    runs: dict[str, list[dict]] = {"ours": [], "peer": []}
    for r in range(args.repeats):
        for side in ("ours", "peer"):
            out = subprocess.run([sys.executable, __file__, "--child", side, "--steps", str(args.steps)],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[side].append(result)
            print(f"repeat {r + 1} {side:4}: {result['tokens_per_s']:.1f} tok/s, peak RSS {result['peak_rss_mb']:.0f} MB, "
                  f"first loss {result['losses'][0]:.4f}, load {result['loadavg']:.1f}", flush=True)  # fmt: skip

    def med(side, key):
        return statistics.median(x[key] for x in runs[side])

    import peft
    import torch
    import transformers

    ours_tps, peer_tps = med("ours", "tokens_per_s"), med("peer", "tokens_per_s")
    ours_mem, peer_mem = med("ours", "peak_rss_mb"), med("peer", "peak_rss_mb")
    first_loss = (runs["ours"][0]["losses"][0], runs["peer"][0]["losses"][0])
    lines = [
        "# Fine-tuning benchmark: LoRA on SmolLM2-135M-Instruct, ours vs transformers + peft",
        "",
        f"Date: {time.strftime('%Y-%m-%d')}. Command: `.venv/bin/python bench/bench_finetune.py --repeats {args.repeats} --steps {args.steps}`.",
        f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}; 2 threads, float32;",
        f"LoRA r={RANK}, alpha={ALPHA}, dropout={DROPOUT} on q,k,v,o,gate,up,down; fused AdamW lr {LR}; batch {BATCH};",
        f"median of {args.repeats} alternating repeats (fresh process each), {args.steps} timed steps after 1 warm-up.",
        "",
        "| What | Ours | transformers + peft | Ratio |",
        "| --- | --- | --- | --- |",
        f"| training tokens/s (higher is better) | {ours_tps:.1f} | {peer_tps:.1f} | {ours_tps / peer_tps:.2f}x |",
        f"| peak RSS, MB (lower is better) | {ours_mem:.0f} | {peer_mem:.0f} | {ours_mem / peer_mem:.2f}x |",
        f"| load time, s | {med('ours', 'load_s'):.1f} | {med('peer', 'load_s'):.1f} | |",
        f"| trainable parameters | {runs['ours'][0]['trainable']:,} | {runs['peer'][0]['trainable']:,} | |",
        f"| first-step loss (same data, same start) | {first_loss[0]:.4f} | {first_loss[1]:.4f} | |",
        "",
        f"Load average (1 min) at the end of each child: ours "
        + ", ".join(f"{x['loadavg']:.1f}" for x in runs["ours"]) + "; peer " + ", ".join(f"{x['loadavg']:.1f}" for x in runs["peer"])
        + f" on {os.cpu_count()} cores (other processes share the machine: compare the ratio, not the absolute figures).",
        "",
        "Per repeat (tokens/s): ours " + ", ".join(f"{x['tokens_per_s']:.1f}" for x in runs["ours"])
        + "; peer " + ", ".join(f"{x['tokens_per_s']:.1f}" for x in runs["peer"]) + ". Ratio within each repeat: "
        + ", ".join(f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x" for a, b in zip(runs["ours"], runs["peer"]))
        + f" (median {statistics.median(a['tokens_per_s'] / b['tokens_per_s'] for a, b in zip(runs['ours'], runs['peer'])):.2f}x).",
        "",
        "Where the difference comes from: our trainer unembeds only the positions that carry a label (the",
        "assistant's tokens), so the (tokens x 49,152) logits and their gradient are never formed for the",
        "prompt; q/k/v and gate/up run as two fused frozen matmuls per block, and each fused matrix's adapters",
        "as one stacked A and one block-diagonal B; attention is SDPA with is_causal (no mask tensor).",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
