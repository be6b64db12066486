"""Training on the real SmolLM2: the loss falls, a checkpoint resumes the same run, merging is exact,
and the tuned model is registered under its name (in this process and in a new one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from llm_magics import finetune, hookimpl, plugins
from llm_magics.errors import UsageError

from .conftest import FAST

pytestmark = pytest.mark.slow


def test_loss_falls_and_the_model_is_registered(codes_file, tmp_path):
    result = finetune.train(codes_file, "smollm2", steps=10, name="smollm2-codes", output_dir=tmp_path / "run",
                            val_fraction=0.15, **FAST)  # fmt: skip
    losses = result.losses
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses
    assert result.after.loss < result.before.loss
    assert (result.adapter_path / "adapter.safetensors").is_file()
    config = json.loads((result.adapter_path / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["target_modules"] == ["q", "k", "v", "o", "gate", "up", "down"]
    assert "validation loss" in str(result) and "exact match" in str(result)

    # Registered: the resolver finds it in this process...
    from llm_magics import models
    from llm_magics.models import resolve

    spec = resolve("smollm2-codes")
    assert spec.format == "hf" and spec.path == result.model_path
    tuned = models.load("smollm2-codes")
    adapted = finetune.load_adapter("smollm2", result.adapter_path)
    ids = tuned.encode("<|im_start|>user\nFrance<|im_end|>\n<|im_start|>assistant\n")
    torch.testing.assert_close(tuned.logits(ids), adapted.logits(ids), atol=2e-4, rtol=1e-4)

    # ... and in a new one, through the built-in register_models plugin reading the registry file.
    code = "from llm_magics.models import resolve; print(resolve('smollm2-codes').path)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == str(result.model_path)


class Interrupter(finetune.Tracker):
    """Presses Ctrl-C right after step `stop_at` is logged (a test double, registered as a plugin)."""

    name = "interrupter"
    stop_at = 2

    def log_metrics(self, metrics, step):
        if "train/loss" in metrics and step == self.stop_at:
            raise KeyboardInterrupt


class InterrupterPlugin:
    @hookimpl
    def register_trackers(self, register):
        register(Interrupter)


@pytest.fixture
def interrupter():
    from llm_magics.finetune import trackers

    plugins.register(InterrupterPlugin(), "test-interrupter")
    trackers.refresh()
    try:
        yield
    finally:
        plugins.unregister("test-interrupter")
        trackers.refresh()


def test_resume_after_ctrl_c_continues_the_same_run(codes_file, tmp_path, interrupter):
    options = dict(steps=4, checkpoint_every=10, val_fraction=0.15, **FAST)
    straight = finetune.train(codes_file, "smollm2", output_dir=tmp_path / "straight", **options)

    with pytest.raises(finetune.TrainingInterrupted, match="Interrupted at step 2"):
        finetune.train(codes_file, "smollm2", output_dir=tmp_path / "resumed", tracker="interrupter", **options)
    assert (tmp_path / "resumed" / "latest").read_text() == "checkpoint-2"
    resumed = finetune.train(codes_file, "smollm2", output_dir=tmp_path / "resumed", **options)

    assert resumed.resumed and resumed.steps == 4
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5, abs=1e-6)
    assert resumed.before.loss == pytest.approx(straight.before.loss)  # the base model's figures, kept
    assert resumed.after.loss == pytest.approx(straight.after.loss, rel=1e-5)

    # A checkpoint of another configuration is never silently mixed in.
    with pytest.raises(UsageError, match="different run"):
        finetune.train(codes_file, "smollm2", output_dir=tmp_path / "resumed", **{**options, "lora_rank": 4})


def test_merge_reproduces_the_adapter(smollm2):
    from llm_magics import models
    from llm_magics.finetune import lora

    lm = models.load("smollm2")
    lora.inject(lm.module, rank=4, alpha=8, dropout=0.0)
    with torch.no_grad():  # a trained-looking adapter: B away from its zero start
        for name, layer in lora.lora_layers(lm.module):
            for b in layer.lora_B.values():
                b.normal_(0, 0.02)
    ids = lm.encode("The capital of France is Paris, and the capital of Spain is")
    adapted = lm.logits(ids)
    plain = smollm2.logits(ids)
    assert (adapted - plain).abs().max() > 0.1  # the adapter changes the outputs...
    assert lora.merge(lm.module) == 30 * 4 and not lora.lora_layers(lm.module)
    torch.testing.assert_close(lm.logits(ids), adapted, atol=1e-4, rtol=1e-4)  # ... and merging keeps them


def test_lora_slices_match_separate_projections(smollm2):
    """LoRA on the fused qkv rows equals PEFT's LoRA on separate q/k/v projections."""
    from llm_magics.finetune.lora import LoRALinear

    base = smollm2.module.blocks[0].attn.qkv
    layer = LoRALinear(base, {"q": (0, 576), "v": (768, 960)}, rank=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for b in layer.lora_B.values():
            b.normal_()
    x = torch.randn(2, 5, 576)
    y = layer(x)
    w = base.weight
    q = x @ w[:576].T + 2.0 * (x @ layer.lora_A["q"].T) @ layer.lora_B["q"].T
    k = x @ w[576:768].T
    v = x @ w[768:].T + 2.0 * (x @ layer.lora_A["v"].T) @ layer.lora_B["v"].T
    torch.testing.assert_close(y, torch.cat([q, k, v], dim=-1), atol=1e-4, rtol=1e-4)


def test_bad_row_fails_before_any_model_is_loaded(tmp_path, monkeypatch):
    from llm_magics import runtime

    monkeypatch.setattr(runtime, "load", lambda *a, **k: pytest.fail("loaded a model for bad data"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "answer": "b"}\n{"question": "c", "answer": "d"}\n{"question": "e"}\n')
    with pytest.raises(UsageError, match=r"^line 3: field 'answer' is missing"):
        finetune.train(bad, "smollm2", steps=1)
    with pytest.raises(UsageError, match="Unknown training option"):
        finetune.train(bad, "smollm2", steps=1, learning_rat=0.1)
