"""The training protocol, in one class whose methods are its steps.

    Trainer(lm, dataset, config, run_dir, trackers)
      .setup()             seeds; LoRA injected (or every weight trainable); AdamW
      .resume()            the latest checkpoint, if this run has one: weights, optimizer, RNG, step, losses
      .train_step(step)    grad-accumulated micro-batches, clipped, one optimizer step, warm-up + cosine LR
      .evaluate()          validation loss, perplexity and exact match (greedy answers vs the references)
      .save_checkpoint()   checkpoint-<step>/ written whole, then `latest` swapped atomically
      .save_adapter()      adapter.safetensors + adapter_config.json
      .fit()               all of it: eval before, train (eval every N, checkpoint every M), eval after

A Ctrl-C or a crash loses at most `checkpoint_every` steps: running the same call again
resumes from `latest` and produces the same losses as an uninterrupted run (the data order
is a function of the seed and the step; the RNG state travels in the checkpoint).
Only positions with a label are unembedded: the (T, vocab) logits of prompt tokens, which the
loss ignores, are never computed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UsageError
from . import lora
from .formats import IGNORE, render


@dataclass
class TrainConfig:
    """Training settings. Defaults suit LoRA on SmolLM2-135M on a laptop CPU."""

    method: str = "lora"  # "lora" (adapters on frozen weights) or "full" (every weight trains)
    steps: int = 100  # optimizer steps
    learning_rate: float | None = None  # default: 2e-4 for LoRA, 2e-5 for full fine-tuning
    warmup_steps: int | None = None  # linear warm-up; default: 10% of steps
    min_lr_ratio: float = 0.1  # the cosine decays to this fraction of the peak
    batch_size: int = 4  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_grad_norm: float = 1.0  # gradient clipping (global L2 norm)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    seed: int = 0
    max_seq_len: int = 512  # longer examples are dropped (counted) when the data is prepared
    eval_every: int = 0  # evaluate on the validation split every N steps (0: before and after only)
    checkpoint_every: int = 25  # write a resumable checkpoint every N steps (and on Ctrl-C)
    log_every: int = 1  # print "loss 2.345" every N steps
    eval_examples: int = 32  # validation examples answered for exact match
    max_new_tokens: int = 24  # answer length for exact match
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    lora_targets: tuple = lora.ALL_TARGETS  # some of q, k, v, o, gate, up, down

    def __post_init__(self):
        if self.method not in ("lora", "full"):
            raise UsageError(f"--method must be lora or full, not {self.method!r}.")
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise UsageError("--steps, --batch-size and --grad-accum must be at least 1.")
        self.lora_targets = lora.normalize_targets(self.lora_targets)
        if self.learning_rate is None:
            self.learning_rate = 2e-4 if self.method == "lora" else 2e-5
        if self.warmup_steps is None:
            self.warmup_steps = max(1, self.steps // 10)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d


def normalize_answer(text: str) -> str:
    return " ".join(text.strip().strip(".!").casefold().split())


@dataclass
class Evaluation:
    loss: float
    perplexity: float
    exact_match: float
    examples: int
    answers: list = field(default_factory=list)  # (expected, predicted) pairs

    def to_dict(self) -> dict:
        return {"loss": self.loss, "perplexity": self.perplexity, "exact_match": self.exact_match}


class Interrupted(Exception):
    """Training stopped by Ctrl-C; the checkpoint at `step` resumes it."""

    def __init__(self, step: int, run_dir: Path):
        super().__init__(f"Interrupted at step {step}; checkpoint saved in {run_dir}. Run the same command again to resume.")
        self.step, self.run_dir = step, run_dir


class Trainer:
    def __init__(self, lm, dataset, config: TrainConfig, run_dir, trackers=(), progress: bool = True, echo=print):
        self.lm, self.module, self.tokenizer = lm, lm.module, lm.tokenizer
        self.dataset, self.config = dataset, config
        self.run_dir = Path(run_dir)
        self.trackers = list(trackers)
        self.progress, self.echo = progress, echo
        self.losses: list[float] = []
        self.before: Evaluation | None = None  # the validation figures before any training
        self.step = 0
        self.tokens_seen = 0
        self.train_seconds = 0.0
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        self.train_rows = [render(self.tokenizer, ex.messages) for ex in dataset.train]
        self.val_rows = [render(self.tokenizer, ex.messages) for ex in dataset.validation]
        if not self.train_rows:
            raise UsageError("No training examples after preparation; add data or lower the validation fraction.")

    # ── setup ──

    def setup(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        if cfg.method == "lora":
            self.trainable = lora.inject(self.module, rank=cfg.lora_rank, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, targets=cfg.lora_targets)
        else:
            for p in self.module.parameters():
                p.requires_grad_(True)
            self.trainable = sum(p.numel() for p in self.module.parameters())
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        # fused: one kernel updates every tensor (transformers' Trainer default too), not ~10 small ops per tensor
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=True)

    def lr_at(self, step: int) -> float:
        """Linear warm-up to the peak, then a cosine down to min_lr_ratio of it (step counts from 1)."""
        cfg = self.config
        if step <= cfg.warmup_steps:
            return cfg.learning_rate * step / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return cfg.learning_rate * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)

    # ── data ──

    def micro_batches(self, step: int) -> list[list[int]]:
        """The example indices of step `step`'s micro-batches: a pure function of (seed, step)."""
        cfg, n = self.config, len(self.train_rows)
        out = []
        for j in range(cfg.grad_accum):
            first = ((step - 1) * cfg.grad_accum + j) * cfg.batch_size
            batch = []
            for k in range(first, first + cfg.batch_size):
                epoch, pos = divmod(k, n)
                order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
                batch.append(int(order[pos]))
            out.append(batch)
        return out

    def collate(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded (B, T) ids and labels. Causal attention never looks right, so padding needs no mask."""
        T = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), T), IGNORE, dtype=torch.long)
        for i, (x, y) in enumerate(rows):
            ids[i, : len(x)] = torch.tensor(x)
            labels[i, : len(y)] = torch.tensor(y)
        return ids, labels

    # ── the model's loss ──

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The residual stream after the last block, (B, T, C): Decoder.forward without ln_final/unembed."""
        m = self.module
        B, T = idx.shape
        x = m.embed(idx)  # (B, T, C)
        if m.pos_embed is not None:
            x = x + m.pos_embed(torch.arange(T, device=idx.device))  # (B, T, C)
        rope = m.rotary(0, T) if m.rotary is not None else None
        for block in m.blocks:
            x = block(x, rope=rope)  # (B, T, C)
        return x

    def loss_sum(self, ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(summed next-token cross-entropy over labelled positions, how many there were)."""
        x = self.hidden(ids)[:, :-1]  # (B, T-1, C): position t predicts token t+1
        targets = labels[:, 1:]  # (B, T-1)
        keep = targets != IGNORE
        h = x[keep]  # (N, C): only the positions the loss uses
        logits = self.module.unembed(self.module.ln_final(h))  # (N, V)
        return F.cross_entropy(logits.float(), targets[keep], reduction="sum"), int(keep.sum())

    # ── steps ──

    def train_step(self, step: int) -> float:
        self.module.train()
        batches = [[self.train_rows[i] for i in b] for b in self.micro_batches(step)]
        n_labels = sum(1 for b in batches for _, y in b for t in y[1:] if t != IGNORE)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for rows in batches:
            ids, labels = self.collate(rows)
            loss, _ = self.loss_sum(ids, labels)
            (loss / max(1, n_labels)).backward()  # token-weighted mean over the whole step
            total += float(loss.detach())
            self.tokens_seen += sum(len(x) for x, _ in rows)
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        self.optimizer.step()
        return total / max(1, n_labels)

    @torch.no_grad()
    def evaluate(self, answers: bool = True) -> Evaluation:
        self.module.eval()
        total, count = 0.0, 0
        for i in range(0, len(self.val_rows), self.config.batch_size):
            loss, n = self.loss_sum(*self.collate(self.val_rows[i : i + self.config.batch_size]))
            total, count = total + float(loss), count + n
        mean = total / count if count else float("nan")
        pairs = []
        if answers:
            for ex in self.dataset.validation[: self.config.eval_examples]:
                prompt = self.tokenizer.apply_chat_template(ex.prompt_messages, add_generation_prompt=True)
                predicted = self.lm.generate(prompt, max_new_tokens=self.config.max_new_tokens, temperature=0.0)
                pairs.append((ex.answer, predicted))
        exact = sum(normalize_answer(a) == normalize_answer(p) for a, p in pairs) / len(pairs) if pairs else float("nan")
        return Evaluation(mean, math.exp(min(mean, 50)) if count else float("nan"), exact, len(pairs), pairs)

    # ── checkpoints ──

    def fingerprint(self) -> str:
        """What must match for a checkpoint to resume this run: the settings, the model and the data."""
        cfg = {k: v for k, v in self.config.to_dict().items() if k not in ("eval_every", "checkpoint_every", "log_every")}
        key = json.dumps({"config": cfg, "model": str(self.lm.path), "data": self.train_rows}, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.module.named_parameters() if v.requires_grad}

    def save_checkpoint(self) -> Path:
        """Write checkpoint-<step>/ in full, then point `latest` at it (os.replace is atomic)."""
        from safetensors.torch import save_file

        self.run_dir.mkdir(parents=True, exist_ok=True)
        final = self.run_dir / f"checkpoint-{self.step}"
        tmp = self.run_dir / f".checkpoint-{self.step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file({k: v.contiguous() for k, v in self.trainable_state().items()}, str(tmp / "trainable.safetensors"))
        torch.save({"optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "optimizer.pt")
        state = {"step": self.step, "losses": self.losses, "tokens_seen": self.tokens_seen, "fingerprint": self.fingerprint(),
                 "before": asdict(self.before) if self.before else None}
        (tmp / "state.json").write_text(json.dumps(state))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = self.run_dir / ".latest.tmp"
        pointer.write_text(final.name)
        os.replace(pointer, self.run_dir / "latest")
        for old in self.run_dir.glob("checkpoint-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def resume(self) -> bool:
        """Load the latest checkpoint of this run dir, if any; False when starting fresh."""
        from safetensors.torch import load_file

        latest = self.run_dir / "latest"
        if not latest.is_file():
            return False
        folder = self.run_dir / latest.read_text().strip()
        state = json.loads((folder / "state.json").read_text())
        if state["fingerprint"] != self.fingerprint():
            raise UsageError(f"{self.run_dir} holds a checkpoint of a different run (other data or settings). "
                             "Pass another --name / output_dir, or resume=False to start over.")  # fmt: skip
        tensors = load_file(str(folder / "trainable.safetensors"))
        params = dict(self.module.named_parameters())
        with torch.no_grad():
            for k, v in tensors.items():
                params[k].copy_(v)
        extra = torch.load(folder / "optimizer.pt", weights_only=True)
        self.optimizer.load_state_dict(extra["optimizer"])
        torch.set_rng_state(extra["torch_rng"])
        self.step, self.losses, self.tokens_seen = state["step"], list(state["losses"]), state["tokens_seen"]
        if state.get("before"):
            self.before = Evaluation(**{**state["before"], "answers": [tuple(a) for a in state["before"]["answers"]]})
        return True

    def save_adapter(self, folder=None) -> Path:
        """adapter.safetensors (LoRA tensors, or every weight for full fine-tuning) + adapter_config.json."""
        from safetensors.torch import save_file

        folder = Path(folder or self.run_dir / "adapter")
        folder.mkdir(parents=True, exist_ok=True)
        tensors = lora.adapter_state_dict(self.module) if self.config.method == "lora" else self.trainable_state()
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "adapter.safetensors"))
        meta = {"base_model": self.lm.name, "base_path": str(self.lm.path), "method": self.config.method,
                "r": self.config.lora_rank, "lora_alpha": self.config.lora_alpha, "lora_dropout": self.config.lora_dropout,
                "target_modules": list(self.config.lora_targets), "steps": self.step, "config": self.config.to_dict()}  # fmt: skip
        (folder / "adapter_config.json").write_text(json.dumps(meta, indent=2))
        return folder

    def merge(self) -> int:
        """Fold the adapters into the base weights (one call; the module then has no LoRA layers)."""
        return lora.merge(self.module)

    # ── the whole run ──

    def _log(self, metrics: dict, step: int) -> None:
        for t in self.trackers:
            t.log_metrics(metrics, step)

    def fit(self) -> dict:
        from tqdm.auto import tqdm

        cfg = self.config
        self.setup()
        resumed = self.resume()
        if resumed:
            self.echo(f"Resuming {self.run_dir.name} from step {self.step} of {cfg.steps}.")
        if self.before is None:  # a resumed run keeps the figures of the base model it started from
            self.before = self.evaluate()
            self._log({f"eval/{k}": v for k, v in self.before.to_dict().items()}, self.step)
        before = self.before
        bar = tqdm(total=cfg.steps, initial=self.step, desc="fine-tuning", disable=not self.progress, leave=True)
        try:
            while self.step < cfg.steps:
                started = time.perf_counter()
                tokens_before = self.tokens_seen
                loss = self.train_step(self.step + 1)
                self.step += 1
                elapsed = time.perf_counter() - started
                self.train_seconds += elapsed
                self.losses.append(loss)
                tps = (self.tokens_seen - tokens_before) / max(elapsed, 1e-9)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:.0f}")
                bar.update(1)
                self._log({"train/loss": loss, "train/lr": self.lr_at(self.step), "train/tokens_per_second": tps}, self.step)
                if cfg.log_every and self.step % cfg.log_every == 0:
                    (bar.write if self.progress else self.echo)(f"step {self.step}/{cfg.steps}  loss {loss:.3f}  {tps:.0f} tok/s")
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                    mid = self.evaluate(answers=False)
                    self._log({"eval/loss": mid.loss, "eval/perplexity": mid.perplexity}, self.step)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise Interrupted(self.step, self.run_dir) from None
        finally:
            bar.close()
        self.save_checkpoint()
        after = self.evaluate()
        self._log({f"eval/{k}": v for k, v in after.to_dict().items()}, self.step)
        return {"before": before, "after": after, "resumed": resumed}
