"""``GroundingWidget``: the answer-token × source heatmap behind ``%attnviz --last``."""

from __future__ import annotations

from pathlib import Path

import anywidget
import numpy as np
import traitlets as t

from . import _codec
from .grounding import Grounding

HERE = Path(__file__).parent


class GroundingWidget(anywidget.AnyWidget):
    """How much attention each generated token paid to each retrieved source.

    ``matrix`` is float32 (n_answer_tokens, n_sources); ``token_weights`` is sqrt-uint8
    (n_answer_tokens, total source tokens), the same attention spread over each source's
    own tokens, so a sentence's highlights can be drawn on the sources.
    """

    _esm = HERE / "js" / "grounding.js"
    _css = HERE / "js" / "grounding.css"

    title = t.Unicode("").tag(sync=True)
    answer_tokens = t.List(t.Unicode()).tag(sync=True)
    sources = t.List(t.Dict()).tag(sync=True)
    source_tokens = t.List(t.List(t.Unicode())).tag(sync=True)
    matrix = t.Bytes(b"").tag(sync=True)
    token_weights = t.Bytes(b"").tag(sync=True)
    sentences = t.List(t.List(t.Int())).tag(sync=True)
    layers = t.List(t.Int()).tag(sync=True)
    sentence = t.Int(0).tag(sync=True)

    def __init__(self, grounding: Grounding, *, title: str = "", sentence: int = 0):
        super().__init__(
            title=title,
            answer_tokens=grounding.answer_tokens,
            sources=grounding.sources,
            source_tokens=grounding.source_tokens,
            matrix=np.ascontiguousarray(grounding.matrix, dtype="<f4").tobytes(),
            token_weights=_codec.quantise(grounding.token_weights),
            sentences=[list(s) for s in grounding.sentences],
            layers=list(grounding.layers),
            sentence=sentence,
        )
        self.grounding = grounding
