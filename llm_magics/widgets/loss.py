"""``LossChart``: a fine-tuning run's loss curves, drawn live in the notebook as they arrive."""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets as t

HERE = Path(__file__).parent


class LossChart(anywidget.AnyWidget):
    """Training and validation loss by step; `add_point` appends and the view redraws in place."""

    _esm = HERE / "js" / "loss.js"
    _css = HERE / "js" / "loss.css"

    title = t.Unicode("").tag(sync=True)
    series = t.Dict(default_value={}).tag(sync=True)  # {"train": [[step, loss], ...], "validation": [...]}
    status = t.Unicode("running").tag(sync=True)  # "running", "finished", "interrupted", "failed"

    def add_point(self, name: str, step: int, value: float) -> None:
        series = {k: list(v) for k, v in self.series.items()}  # a new dict, so the change syncs
        series.setdefault(name, []).append([int(step), float(value)])
        self.series = series

    def points(self, name: str = "train") -> list[tuple[int, float]]:
        return [(int(s), float(v)) for s, v in self.series.get(name, [])]
