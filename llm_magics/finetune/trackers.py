"""Experiment trackers: where a fine-tuning run's parameters, metrics, data report and adapter go.

Trackers are plugins (`register_trackers` in hookspecs.py); the built-ins below register
through the same hook. Each writes where its own tools read it back:

    wandb        Weights & Biases in offline mode: <dir>/wandb/offline-run-*/ (`wandb sync` uploads it later)
    mlflow       an MLflow tracking store: sqlite:///<dir>/mlflow.db by default (MlflowClient reads it)
    tensorboard  event files in <dir>/tensorboard/<run> (TensorBoard, EventAccumulator)
    chart        a live loss chart in the notebook (LossChart anywidget)

Nothing is sent off the machine: wandb runs with WANDB_MODE=offline, MLflow writes a local store.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from pathlib import Path

from ..errors import unknown
from ..hookspecs import hookimpl


class Tracker:
    """One experiment tracker. Subclasses set `name` and override the methods they need.

    Constructed with `tracking_uri` (where to write; each tracker has a local default under
    `run_dir`), `run_name` and `project`.
    """

    name = ""

    def __init__(self, *, run_dir, run_name: str, tracking_uri: str | None = None, project: str = "llm-magics"):
        self.run_dir, self.run_name = Path(run_dir), run_name
        self.tracking_uri, self.project = tracking_uri, project

    def start(self, params: dict) -> None:
        """The run begins: its settings (learning rate, LoRA rank, model, ...)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Metrics at an optimizer step: train/loss, train/lr, eval/loss, eval/exact_match, ..."""

    def log_report(self, report: dict) -> None:
        """The data report: counts, drop reasons, token statistics."""

    def log_artifact(self, path: Path, kind: str = "adapter") -> None:
        """A folder the run produced (the adapter)."""

    def finish(self, status: str = "finished") -> None:
        """The run ended ("finished", "interrupted" or "failed")."""


def _flat(params: dict) -> dict:
    return {k: (json.dumps(v) if isinstance(v, (list, tuple, dict)) else v) for k, v in params.items()}


class WandbTracker(Tracker):
    """Weights & Biases, offline: the run is written under <dir>/wandb/ and can be synced later."""

    name = "wandb"

    def start(self, params):
        os.environ["WANDB_MODE"] = "offline"  # never upload from here; `wandb sync` does that on purpose
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        directory = Path(self.tracking_uri or self.run_dir)
        directory.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(x_disable_stats=True, disable_git=True, console="off", silent=True)
        self.run = wandb.init(project=self.project, name=self.run_name, dir=str(directory), mode="offline",
                              config=params, settings=settings, reinit="create_new")  # fmt: skip
        self.path = Path(self.run.dir).parent  # .../wandb/offline-run-<time>-<id>

    def log_metrics(self, metrics, step):
        self.run.log(dict(metrics), step=step)

    def log_report(self, report):
        self.run.summary["data_report"] = report

    def log_artifact(self, path, kind="adapter"):
        import wandb

        artifact = wandb.Artifact(f"{self.run_name}-{kind}".replace("/", "-"), type="model")
        artifact.add_dir(str(path))
        self.run.log_artifact(artifact)

    def finish(self, status="finished"):
        self.run.finish(exit_code=0 if status == "finished" else 1)


class MlflowTracker(Tracker):
    """MLflow through MlflowClient; default store sqlite:///<run_dir>/mlflow.db, artifacts beside it."""

    name = "mlflow"

    def start(self, params):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.run_dir.mkdir(parents=True, exist_ok=True)
        uri = self.tracking_uri or f"sqlite:///{self.run_dir.resolve() / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(self.project)
        if experiment is None:
            artifacts = (self.run_dir.resolve() / "mlflow-artifacts").as_uri() if not self.tracking_uri else None
            experiment_id = self.client.create_experiment(self.project, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in _flat(params).items()])

    def log_metrics(self, metrics, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_report(self, report):
        self.client.log_dict(self.run_id, report, "data_report.json")

    def log_artifact(self, path, kind="adapter"):
        self.client.log_artifacts(self.run_id, str(path), kind)

    def finish(self, status="finished"):
        self.client.set_terminated(self.run_id, {"finished": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED"))


class TensorBoardTracker(Tracker):
    """TensorBoard event files in <dir>/tensorboard/<run name>."""

    name = "tensorboard"

    def start(self, params):
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = Path(self.tracking_uri or self.run_dir / "tensorboard") / self.run_name
        self.writer = SummaryWriter(log_dir=str(self.logdir))
        self.writer.add_text("params", "\n".join(f"    {k}: {v}" for k, v in _flat(params).items()), 0)

    def log_metrics(self, metrics, step):
        for k, v in metrics.items():
            self.writer.add_scalar(k, float(v), step)
        self.writer.flush()

    def log_report(self, report):
        self.writer.add_text("data_report", "    " + json.dumps(report, indent=2).replace("\n", "\n    "), 0)

    def log_artifact(self, path, kind="adapter"):
        self.writer.add_text(kind, str(path), 0)

    def finish(self, status="finished"):
        self.writer.add_text("status", status, 0)
        self.writer.close()


class ChartTracker(Tracker):
    """A live loss chart in the notebook (the LossChart anywidget), shown when the run starts."""

    name = "chart"

    def start(self, params):
        from ..widgets.loss import LossChart

        self.widget = LossChart(title=self.run_name)
        try:
            from IPython.display import display

            display(self.widget)
        except ImportError:  # plain Python: the widget still collects the points
            pass

    def log_metrics(self, metrics, step):
        if "train/loss" in metrics:
            self.widget.add_point("train", step, metrics["train/loss"])
        if "eval/loss" in metrics:
            self.widget.add_point("validation", step, metrics["eval/loss"])

    def finish(self, status="finished"):
        self.widget.status = status


@hookimpl
def register_trackers(register):
    for cls in (WandbTracker, MlflowTracker, TensorBoardTracker, ChartTracker):
        register(cls)


# ─── the tracker registry ─────────────────────────────────────────────────────

_trackers: dict | None = None
_generation = None  # plugins.generation when _trackers was collected
_lock = threading.RLock()


def available() -> dict:
    """{name: Tracker class} from every plugin's register_trackers (collected again when plugins change)."""
    global _trackers, _generation
    from .. import plugins

    with _lock:
        if _trackers is None or _generation != getattr(plugins, "generation", None):
            _generation = getattr(plugins, "generation", None)
            from .. import registry

            def make(plugin, cls, aliases=()):
                return registry.Entry("tracker", cls.name, cls, plugin, tuple(aliases), (cls.__doc__ or "").split("\n")[0])

            _trackers = {k: e.obj for k, e in registry.collect("register_trackers", make).items()}
        return _trackers


def refresh() -> None:
    global _trackers
    with _lock:
        _trackers = None


def make_trackers(names, **kwargs) -> list[Tracker]:
    """Tracker objects for names ("wandb", "mlflow,tensorboard", ["chart"]); UsageError for an unknown one."""
    if not names:
        return []
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    found = available()
    out = []
    for n in names:
        if n not in found:
            raise unknown("tracker", n, sorted(set(found)), "Use --tracker wandb|mlflow|tensorboard|chart, or install a tracker plugin.")
        out.append(found[n](**kwargs))
    return out


# ─── reading a wandb offline run back (its records are wandb's own protobufs) ──


def read_wandb_run(run_path) -> dict:
    """{"config": {...}, "history": [{"step": n, key: value}, ...], "summary": {...}} of an offline run.

    The .wandb file is a sequence of 32 KiB blocks holding length-prefixed `wandb_internal_pb2.Record`s
    (LevelDB's log format: a 7-byte header per chunk, crc32 + length + type; FULL/FIRST/MIDDLE/LAST).
    """
    from wandb.proto import wandb_internal_pb2 as pb

    run_path = Path(run_path)
    file = run_path if run_path.suffix == ".wandb" else next(run_path.glob("*.wandb"))
    data = file.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{file} is not a wandb run file")
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        room = block - pos % block
        if room < 7:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:  # zero padding at the end of a block
            pos += room
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    out: dict = {"config": {}, "history": [], "summary": {}}
    for r in records:
        kind = r.WhichOneof("record_type")
        if kind in ("run", "config"):
            for item in (r.run.config if kind == "run" else r.config).update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            row = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item}
            out["history"].append(row)
        elif kind == "summary":
            for item in r.summary.update:
                out["summary"]["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
    return out
