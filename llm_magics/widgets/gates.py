"""``GatesWidget``: an LSTM's gates and cell state over a sequence, one heatmap each.

For every time step t (one character or token) and hidden unit j the LSTM computes

    input gate i, forget gate f, output gate o  in (0, 1)     how much to write, keep, show
    candidate g                                 in (-1, 1)    what could be written
    cell state c  (unbounded)                   c = f·c_prev + i·g
    hidden state h                              h = o·tanh(c)

The view draws each as a heatmap, time along x and units along y; hovering a cell shows
every quantity for that character and unit, and clicking a unit colours the text by its
cell state (the "interpretable cell" picture of Karpathy et al. 2015).
Arrays travel as float32 bytes, (T, n_units) each, for the units chosen.

    >>> from llm_magics.widgets import GatesWidget
    >>> out, state, cache = lstm.run_with_cache(x)       # runtime.rnn.Recurrent
    >>> GatesWidget.from_cache(cache, tokens=list(text))
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import anywidget
import numpy as np
import traitlets as t

from ..errors import UsageError
from . import _codec

HERE = Path(__file__).parent

QUANTITIES = ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")
LABELS = {
    "input_gate": "input gate i",
    "forget_gate": "forget gate f",
    "candidate": "candidate g",
    "output_gate": "output gate o",
    "cell": "cell state c",
    "hidden": "hidden state h",
}


def pick_units(cell: np.ndarray, n: int) -> list[int]:
    """The n units whose cell state varies most over the sequence (T, H) -> indices, in unit order."""
    order = np.argsort(-cell.std(axis=0), kind="stable")[:n]
    return sorted(int(j) for j in order)


class GatesWidget(anywidget.AnyWidget):
    """Heatmaps of an LSTM's gates and states over time; hover for values, click a unit.

    ``GatesWidget(arrays, tokens)``: ``arrays`` maps each of ``QUANTITIES`` to a (T, H) array
    (a batch dimension of 1 is dropped); ``tokens`` is one label per time step. ``units``
    picks which hidden units to show (default: the ``max_units`` whose cell state varies most).
    """

    _esm = HERE / "js" / "gates.js"
    _css = HERE / "js" / "gates.css"

    title = t.Unicode("").tag(sync=True)
    tokens = t.List(t.Unicode()).tag(sync=True)
    units = t.List(t.Int()).tag(sync=True)  # the hidden units shown, in order (rows of each map)
    hidden_size = t.Int(0).tag(sync=True)
    quantities = t.List(t.Unicode()).tag(sync=True)  # which maps, in order
    labels = t.Dict().tag(sync=True)
    data = t.Bytes(b"").tag(sync=True)  # float32 (len(quantities), T, len(units)), C order
    unit = t.Int(-1).tag(sync=True)  # the unit whose cell state colours the text (-1: none)
    selected = t.List(t.Int(), default_value=[-1, -1]).tag(sync=True)  # [t, unit] clicked last

    def __init__(self, arrays: Mapping[str, object], tokens: Sequence[str], *, units: Sequence[int] | None = None,
                 max_units: int = 32, title: str = "", quantities: Sequence[str] = QUANTITIES):  # fmt: skip
        quantities = list(quantities)
        unknown = [q for q in quantities if q not in LABELS]
        if unknown:
            raise UsageError(f"Unknown quantity {unknown[0]!r}; choose from {', '.join(QUANTITIES)}.")
        missing = [q for q in quantities if q not in arrays]
        if missing:
            raise UsageError(f"No {missing[0]!r} array given; pass an LSTM's capture (it records {', '.join(QUANTITIES)}).")
        mats = {}
        for q in quantities:
            a = _codec.to_numpy(arrays[q])
            if a.ndim == 3 and a.shape[0] == 1:
                a = a[0]
            if a.ndim != 2:
                raise UsageError(f"{q} has shape {a.shape}; expected (T, H) or (1, T, H).")
            mats[q] = a
        T, H = mats[quantities[0]].shape
        if len(tokens) != T:
            raise UsageError(f"{len(tokens)} tokens for {T} time steps: give one label per step.")
        if units is None:
            units = pick_units(mats["cell"] if "cell" in mats else mats[quantities[0]], max_units)
        units = [int(u) for u in units]
        if any(not 0 <= u < H for u in units):
            raise UsageError(f"Units must lie in 0..{H - 1}.")
        stacked = np.stack([mats[q][:, units] for q in quantities]).astype("<f4")  # (Q, T, U)
        super().__init__(
            title=title, tokens=[str(x) for x in tokens], units=units, hidden_size=H, quantities=quantities,
            labels={q: LABELS[q] for q in quantities}, data=np.ascontiguousarray(stacked).tobytes(),
        )  # fmt: skip
        self.arrays = {q: stacked[i] for i, q in enumerate(quantities)}  # (T, U) each, as shown

    @classmethod
    def from_cache(cls, cache: Mapping[str, object], tokens: Sequence[str], *, layer: int = 0, **kw) -> "GatesWidget":
        """From a runtime capture: ``layers.{layer}.hook_input_gate`` and the rest."""
        prefix = f"layers.{layer}.hook_"
        arrays = {q: cache[prefix + q] for q in QUANTITIES if prefix + q in cache}
        if not arrays:
            raise UsageError(f"The capture has no {prefix}* entries: run an LSTM with a capture (Recurrent.run_with_cache).")
        kw.setdefault("title", f"LSTM layer {layer}: gates and states over {len(tokens)} steps")
        return cls(arrays, tokens, **kw)

    def value(self, quantity: str, step: int, unit: int) -> float:
        """The number shown for (quantity, time step, hidden unit): what a hover displays."""
        return float(self.arrays[quantity][step, self.units.index(unit)])
