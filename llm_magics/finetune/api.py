"""`train()`: data in, a tuned model out, with the figures before and after.

    >>> from llm_magics import finetune
    >>> result = finetune.train(data="qa.jsonl", model="smollm2", method="lora", steps=60,
    ...                         tracker="mlflow", name="smollm2-qa")
    step 1/60  loss 2.345  410 tok/s
    ...
    >>> result.after.exact_match, result.adapter_path
    >>> models.load("smollm2-qa")          # and %%ask --model smollm2-qa, in any kernel
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import LLMMagicsError, UsageError
from . import data as data_mod


class TrainingInterrupted(LLMMagicsError):
    """Ctrl-C during training: the checkpoint is saved and the same call resumes it."""


@dataclass
class FinetuneResult:
    """What a run produced: losses per step, validation figures before and after, and where things are."""

    name: str
    model: str
    method: str
    steps: int
    losses: list[float]
    before: object  # trainer.Evaluation
    after: object
    report: data_mod.DataReport
    run_dir: Path
    adapter_path: Path
    model_path: Path | None = None  # the merged HF folder, when registered under a name
    trainable_parameters: int = 0
    tokens_per_second: float = 0.0
    resumed: bool = False
    trackers: list = field(default_factory=list)

    def table(self) -> str:
        b, a = self.before, self.after
        rows = [("validation loss", b.loss, a.loss, "{:.3f}"), ("perplexity", b.perplexity, a.perplexity, "{:.2f}"),
                (f"exact match ({a.examples} held out)", b.exact_match, a.exact_match, "{:.1%}")]  # fmt: skip
        width = max(len(r[0]) for r in rows)
        lines = [f"{'':{width}}  {'before':>9}  {'after':>9}"]
        lines += [f"{n:{width}}  {f.format(x):>9}  {f.format(y):>9}" for n, x, y, f in rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        where = f"registered as {self.name!r} ({self.model_path})" if self.model_path else f"adapter in {self.adapter_path}"
        return f"{self.table()}\n{self.steps} steps of {self.method} on {self.model}; {where}."

    def __repr__(self) -> str:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else (float("nan"),) * 2
        return (f"<FinetuneResult {self.name!r}: {self.steps} steps, loss {first:.3f} -> {last:.3f}, "
                f"exact match {self.before.exact_match:.0%} -> {self.after.exact_match:.0%}>")  # fmt: skip


def _config(method: str, steps: int, seed: int, options: dict):
    from .trainer import TrainConfig

    known = {f.name for f in fields(TrainConfig)}
    bad = sorted(set(options) - known)
    if bad:
        raise UsageError(f"Unknown training option(s) {', '.join(bad)}. Known: {', '.join(sorted(known))}.")
    return TrainConfig(method=method, steps=steps, seed=seed, **options)


def runs_root() -> Path:
    return Path(os.environ.get("LLM_MAGICS_CACHE") or Path.home() / ".cache" / "llm_magics") / "finetune"


def train(data, model: str = "smollm2-135m-instruct", *, method: str = "lora", steps: int = 100,
          tracker=None, tracking_uri: str | None = None, name: str | None = None, output_dir=None,
          resume: bool = True, val_fraction: float = 0.1, seed: int = 0, fmt: str | None = None,
          near_duplicates: float | None = 0.85, augment: dict | None = None, progress: bool = True,
          verbose: bool = True, project: str = "llm-magics", **options) -> FinetuneResult:  # fmt: skip
    """Fine-tune `model` on `data` (a .jsonl/.json/.csv path, a DataFrame, a list of rows, or a Dataset).

    method: "lora" or "full". steps: optimizer steps. tracker: "wandb", "mlflow", "tensorboard",
    "chart" (or several, comma-separated); tracking_uri: where they write (default: the run folder).
    name: register the merged model under this name. output_dir: the run folder (checkpoints, adapter);
    the same folder resumes an interrupted run. options: any TrainConfig field (batch_size,
    learning_rate, lora_rank, lora_targets, eval_every, checkpoint_every, max_seq_len, ...).
    """
    from .. import models
    from .trackers import make_trackers
    from .trainer import Interrupted, Trainer

    echo = print if verbose else (lambda *a, **k: None)
    config = _config(method, steps, seed, options)
    if name is not None and (not name.strip() or "/" in name or name.startswith(".")):
        raise UsageError(f"--name {name!r} is not a usable model name; use letters, digits, '-' and '_'.")
    examples = data if isinstance(data, data_mod.Dataset) else data_mod.read(data, fmt)  # bad rows fail here, before loading
    if not isinstance(examples, data_mod.Dataset) and not examples:
        raise UsageError("The dataset is empty: no examples to train on. Check the file, or pass at least a few rows.")
    lm = models.load(model, dtype="float32")  # a private copy: training changes its weights
    max_tokens = min(config.max_seq_len, lm.context_window)
    dataset = data_mod.prepare(examples, tokenizer=lm.tokenizer, max_tokens=max_tokens, val_fraction=val_fraction,
                               seed=seed, near_duplicates=near_duplicates, augment=augment, augment_model=lm)  # fmt: skip
    echo(str(dataset.report))

    digest = hashlib.sha256(json.dumps([lm.name, method, steps, seed, len(dataset.train)]).encode()).hexdigest()[:8]
    run_name = name or f"{lm.name}-{method}-{digest}"
    run_dir = Path(output_dir) if output_dir else runs_root() / run_name
    if not resume and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    trackers = make_trackers(tracker, run_dir=run_dir, run_name=run_name, tracking_uri=tracking_uri, project=project)
    trainer = Trainer(lm, dataset, config, run_dir, trackers, progress=progress, echo=echo)
    params = {"model": lm.name, "data_examples": len(dataset.train), **config.to_dict()}
    for t in trackers:
        t.start(params)
        t.log_report(dataset.report.to_dict())
    try:
        outcome = trainer.fit()
    except Interrupted as e:
        for t in trackers:
            t.finish("interrupted")
        raise TrainingInterrupted(str(e)) from None
    except BaseException:
        for t in trackers:
            t.finish("failed")
        raise
    adapter = trainer.save_adapter()
    for t in trackers:
        t.log_artifact(adapter, "adapter")
    model_path = None
    if name:
        trainer.merge()
        from . import registry

        model_path = registry.save(lm, name, base=lm.name, adapter=str(adapter), method=method, steps=config.steps)
    for t in trackers:
        t.finish("finished")
    result = FinetuneResult(
        name=run_name, model=lm.name, method=method, steps=trainer.step, losses=list(trainer.losses),
        before=outcome["before"], after=outcome["after"], report=dataset.report, run_dir=run_dir,
        adapter_path=adapter, model_path=model_path, trainable_parameters=trainer.trainable,
        tokens_per_second=trainer.tokens_seen / max(trainer.train_seconds, 1e-9) if trainer.train_seconds else 0.0,
        resumed=outcome["resumed"], trackers=trackers,
    )  # fmt: skip
    echo(str(result))
    return result


def load_adapter(model: str, adapter_path, merge: bool = False):
    """A runtime LanguageModel with a saved LoRA adapter applied (merged into the weights if merge=True)."""
    from safetensors.torch import load_file

    from .. import models
    from . import lora

    folder = Path(adapter_path)
    meta = json.loads((folder / "adapter_config.json").read_text())
    lm = models.load(model, dtype="float32")
    if meta["method"] == "lora":
        lora.inject(lm.module, rank=meta["r"], alpha=meta["lora_alpha"], dropout=0.0, targets=meta["target_modules"])
        lora.load_adapter(lm.module, load_file(str(folder / "adapter.safetensors")))
        if merge:
            lora.merge(lm.module)
    else:
        import torch

        params = dict(lm.module.named_parameters())
        with torch.no_grad():
            for k, v in load_file(str(folder / "adapter.safetensors")).items():
                params[k].copy_(v)
    lm.module.eval()
    return lm
