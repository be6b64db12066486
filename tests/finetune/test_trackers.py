"""Each tracker's files read back with the tracker's own reader; the tracker hook takes plugins."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llm_magics import finetune, plugins

from .conftest import FAST

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def docs_tracker():
    """The register_trackers example of docs/plugin_hooks.md, run and registered as a plugin."""
    from llm_magics.finetune import trackers

    section = re.search(r"^## register_trackers\n(.*?)(?=^## |\Z)", (ROOT / "docs" / "plugin_hooks.md").read_text(), re.S | re.M)
    code = re.search(r"```python\n(.*?)```", section.group(1), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs:register_trackers", "exec"), namespace)

    class Plugin:
        register_trackers = staticmethod(namespace["register_trackers"])

    plugins.register(Plugin(), "docs-jsonl-tracker")
    trackers.refresh()
    try:
        yield
    finally:
        plugins.unregister("docs-jsonl-tracker")
        trackers.refresh()


@pytest.mark.slow
def test_every_tracker_reads_back(codes_file, tmp_path, docs_tracker):
    run_dir = tmp_path / "run"
    result = finetune.train(codes_file, "smollm2", steps=2, output_dir=run_dir, val_fraction=0.15,
                            tracker="wandb,mlflow,tensorboard,chart,jsonl", **FAST)  # fmt: skip
    wandb_t, mlflow_t, tb_t, chart_t, jsonl_t = result.trackers
    losses = result.losses

    # Weights & Biases, offline: the run's records, parsed with wandb's own protobufs.
    run = finetune.read_wandb_run(wandb_t.path)
    history = [row for row in run["history"] if "train/loss" in row]
    assert [row["train/loss"] for row in history] == pytest.approx(losses)
    assert run["config"]["lora_rank"] == 8 and run["config"]["model"] == "smollm2-135m-instruct"
    assert run["summary"]["data_report"]["train"] == result.report.train
    assert wandb_t.path.name.startswith("offline-run-")

    # MLflow: MlflowClient on the local sqlite store.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir.resolve() / 'mlflow.db'}")
    history = client.get_metric_history(mlflow_t.run_id, "train/loss")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(losses)
    mlrun = client.get_run(mlflow_t.run_id)
    assert mlrun.data.params["method"] == "lora" and mlrun.info.status == "FINISHED"
    assert mlrun.data.metrics["eval/loss"] == pytest.approx(result.after.loss)
    artifacts = {a.path for a in client.list_artifacts(mlflow_t.run_id)}
    assert {"data_report.json", "adapter"} <= artifacts

    # TensorBoard: the event files, through tensorboard's EventAccumulator.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tb_t.logdir))
    events.Reload()
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(losses)
    assert "eval/exact_match" in events.Tags()["scalars"]

    # The notebook chart: the widget's synced state holds every point.
    assert [v for _, v in chart_t.widget.points("train")] == pytest.approx(losses)
    assert chart_t.widget.status == "finished"

    # The plugin from the docs: its file has every step.
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["train/loss"] for r in rows if "train/loss" in r] == pytest.approx(losses)


def test_unknown_tracker_lists_the_known_ones(codes_file):
    from llm_magics.errors import UsageError
    from llm_magics.finetune.trackers import make_trackers

    with pytest.raises(UsageError, match=r"No tracker 'neptune'\. Known: chart, mlflow, tensorboard, wandb"):
        make_trackers("neptune", run_dir=".", run_name="x")
