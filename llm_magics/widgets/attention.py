"""``AttentionWidget``: head, model, matrix and neuron views of one forward pass.

The widget holds synced traits only; the arrays stay in Python in an ``AttentionData``
and travel as bytes. What the first view needs is sent with the widget (and saved with
the notebook); other layers and the queries/keys of the neuron view are fetched when the
browser asks, through custom messages::

    browser -> {"type": "get_layer", "request_id": 7, "layer": 3}
    Python  -> {"type": "layer", "request_id": 7, "layer": 3, "shape": [H, T, T],
                "encoding": "sqrt-uint8"}   + one buffer
    browser -> {"type": "get_qk", "request_id": 8, "layer": 3}
    Python  -> {"type": "qk", "request_id": 8, "layer": 3, "shape": [2, H, T, d_head],
                "encoding": "float16"}       + one buffer
    browser -> {"type": "ping", "request_id": 0}   (at start: is a kernel answering?)
    Python  -> {"type": "pong", "request_id": 0}
    on a bad request -> {"type": "error", "request_id": ..., "message": "..."}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import anywidget
import numpy as np
import traitlets as t

from ..errors import UsageError
from . import _codec

HERE = Path(__file__).parent
VIEWS = ("head", "model", "matrix", "neuron")
PAIR_FILTERS = ("all", "ab", "ba", "aa", "bb")

#: Bytes of attention sent with the widget before layers are fetched on demand.
MAX_EAGER_BYTES = 4_000_000


@dataclass
class AttentionData:
    """The full arrays behind a widget, in the shapes TransformerLens uses.

    ``attention`` is (n_layers, n_heads, T, T): row i holds how much query token i attends
    to each key token j. ``q`` and ``k`` are (n_layers, n_heads, T, d_head), the vectors
    whose scaled dot products the softmax turns into those rows (keys already repeated
    for grouped-query attention, rotary already applied).
    """

    attention: np.ndarray
    tokens: list[str]
    q: np.ndarray | None = None
    k: np.ndarray | None = None

    def __post_init__(self):
        self.attention = _codec.to_numpy(self.attention)
        if self.attention.ndim == 3:  # one layer: (H, T, T)
            self.attention = self.attention[None]
        if self.attention.ndim != 4 or self.attention.shape[-1] != self.attention.shape[-2]:
            raise UsageError(
                f"attention must be (layers, heads, T, T) or (heads, T, T); got shape {self.attention.shape}."
            )
        n_layers, n_heads, n_tokens, _ = self.attention.shape
        self.tokens = [str(tok) for tok in self.tokens]
        if len(self.tokens) != n_tokens:
            raise UsageError(f"{len(self.tokens)} tokens for an attention pattern over {n_tokens}; pass one string per token.")
        if (self.q is None) != (self.k is None):
            raise UsageError("Pass both q and k (or neither) for the neuron view.")
        if self.q is not None:
            self.q, self.k = (self._heads_first(_codec.to_numpy(x), name) for x, name in ((self.q, "q"), (self.k, "k")))
            if self.k.shape[1] != n_heads:  # grouped-query attention: each key head serves n_heads / n_kv queries
                if n_heads % self.k.shape[1]:
                    raise UsageError(f"k has {self.k.shape[1]} heads, which does not divide the {n_heads} query heads.")
                self.k = np.repeat(self.k, n_heads // self.k.shape[1], axis=1)
            if self.q.shape != self.k.shape:
                raise UsageError(f"q {self.q.shape} and k {self.k.shape} differ; both must be (layers, heads, T, d_head).")

    def _heads_first(self, x: np.ndarray, name: str) -> np.ndarray:
        n_layers, n_heads, n_tokens, _ = self.attention.shape
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[0] != n_layers:
            raise UsageError(f"{name} must be (layers, heads, T, d_head); got {x.shape} for {n_layers} layers.")
        if x.shape[2] != n_tokens and x.shape[1] == n_tokens:  # (layers, T, heads, d_head), TransformerLens' order
            x = x.transpose(0, 2, 1, 3)
        if x.shape[2] != n_tokens:
            raise UsageError(f"{name} has shape {x.shape}; expected (layers, heads, {n_tokens}, d_head).")
        return np.ascontiguousarray(x)

    @property
    def shape(self) -> tuple[int, int, int]:
        n_layers, n_heads, n_tokens, _ = self.attention.shape
        return n_layers, n_heads, n_tokens

    def layer_bytes(self, layer: int) -> bytes:
        return _codec.quantise(self.attention[self.check_layer(layer)])

    def qk_bytes(self, layer: int) -> bytes:
        if self.q is None:
            raise UsageError("No queries and keys were captured; pass q= and k= to AttentionWidget.")
        layer = self.check_layer(layer)
        return _codec.float16(np.stack([self.q[layer], self.k[layer]]))

    def check_layer(self, layer) -> int:
        n_layers = self.attention.shape[0]
        if not isinstance(layer, (int, np.integer)) or not 0 <= layer < n_layers:
            raise UsageError(f"Layer {layer!r} does not exist; this model has layers 0-{n_layers - 1}.")
        return int(layer)

    def handle(self, content: dict) -> tuple[dict, list[bytes]]:
        """Answer one browser request; a bad one gets an ``error`` message, never an exception."""
        request_id = content.get("request_id")
        kind = content.get("type")
        try:
            if kind == "ping":  # the browser asks whether a kernel is there to answer
                return {"type": "pong", "request_id": request_id}, []
            if kind == "get_layer":
                layer = self.check_layer(content.get("layer"))
                n_heads, n_tokens = self.attention.shape[1:3]
                reply = {"type": "layer", "layer": layer, "shape": [n_heads, n_tokens, n_tokens], "encoding": _codec.ATTENTION_ENCODING}
                return {**reply, "request_id": request_id}, [self.layer_bytes(layer)]
            if kind == "get_qk":
                layer = self.check_layer(content.get("layer"))
                data = self.qk_bytes(layer)
                shape = [2, *self.q.shape[1:]]
                return {"type": "qk", "request_id": request_id, "layer": layer, "shape": shape, "encoding": "float16"}, [data]
            raise UsageError(f"Unknown request type {kind!r}; the widget asks for get_layer or get_qk.")
        except UsageError as e:
            return {"type": "error", "request_id": request_id, "message": str(e)}, []


class AttentionWidget(anywidget.AnyWidget):
    """Attention patterns of one forward pass, in four views.

    ``AttentionWidget(attention, tokens, q=None, k=None, view="head", layer=0, heads=None)``
    where ``attention`` is (layers, heads, T, T) as numpy or torch. ``q``/``k`` (layers,
    heads, T, d_head) switch on the neuron view. ``sentence_b_start`` marks where sentence B
    begins in an encoder pair, so the head view can show A→B.
    """

    _esm = HERE / "js" / "attention.js"
    _css = HERE / "js" / "attention.css"

    view = t.Enum(VIEWS, default_value="head").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    tokens = t.List(t.Unicode()).tag(sync=True)
    n_layers = t.Int(0).tag(sync=True)
    n_heads = t.Int(0).tag(sync=True)
    d_head = t.Int(0).tag(sync=True)
    causal = t.Bool(False).tag(sync=True)
    sentence_b_start = t.Int(-1).tag(sync=True)
    pair_filter = t.Enum(PAIR_FILTERS, default_value="all").tag(sync=True)
    layer = t.Int(0).tag(sync=True)
    heads = t.List(t.Int()).tag(sync=True)
    token = t.Int(0).tag(sync=True)
    top_k = t.Int(8).tag(sync=True)
    #: sqrt-uint8 attention of the layers in ``attention_layers``, (len, H, T, T) C order.
    attention = t.Bytes(b"").tag(sync=True)
    attention_layers = t.List(t.Int()).tag(sync=True)
    #: sqrt-uint8 thumbnails of every layer and head, (L, H, S, S): the model view.
    thumbnails = t.Bytes(b"").tag(sync=True)
    thumb_size = t.Int(0).tag(sync=True)
    #: float16 [q, k] of layer ``qk_layer``, (2, H, T, d_head); -1 when not sent.
    qk = t.Bytes(b"").tag(sync=True)
    qk_layer = t.Int(-1).tag(sync=True)
    has_qk = t.Bool(False).tag(sync=True)

    def __init__(
        self,
        attention,
        tokens: Sequence[str],
        *,
        q=None,
        k=None,
        view: str = "head",
        layer: int = 0,
        heads: Sequence[int] | None = None,
        token: int = 0,
        causal: bool | None = None,
        sentence_b_start: int | None = None,
        top_k: int = 8,
        model_name: str = "",
        title: str = "",
        max_eager_bytes: int = MAX_EAGER_BYTES,
    ):
        data = AttentionData(attention, list(tokens), q, k)
        n_layers, n_heads, n_tokens = data.shape
        if view not in VIEWS:
            raise UsageError(f"No view {view!r}. Known: {', '.join(VIEWS)}.")
        layer = data.check_layer(layer)
        heads = list(range(n_heads)) if heads is None else [int(h) for h in heads]
        bad = [h for h in heads if not 0 <= h < n_heads]
        if bad:
            raise UsageError(f"Head {bad[0]} does not exist; this model has heads 0-{n_heads - 1}.")
        if causal is None:  # a causal pattern has nothing above the diagonal
            causal = bool(n_tokens > 1 and np.triu(data.attention[0, 0], 1).max() <= 1e-6)
        eager = range(n_layers) if data.attention.size <= max_eager_bytes else [layer]  # one byte per weight
        size = _codec.thumbnail_size(n_tokens)
        qk_layer = layer if data.q is not None and (view == "neuron" or data.q[0].nbytes <= max_eager_bytes // 4) else -1
        super().__init__(
            view=view,
            title=title,
            model_name=model_name,
            tokens=data.tokens,
            n_layers=n_layers,
            n_heads=n_heads,
            d_head=0 if data.q is None else data.q.shape[-1],
            causal=causal,
            sentence_b_start=-1 if sentence_b_start is None else int(sentence_b_start),
            layer=layer,
            heads=heads,
            token=min(max(int(token), 0), n_tokens - 1),
            top_k=top_k,
            attention=_codec.quantise(data.attention[list(eager)]),
            attention_layers=list(eager),
            thumbnails=_codec.quantise(_codec.pool_max(data.attention, size)),
            thumb_size=size,
            qk=data.qk_bytes(qk_layer) if qk_layer >= 0 else b"",
            qk_layer=qk_layer,
            has_qk=data.q is not None,
        )
        self._data = data
        self.on_msg(self._on_request)

    @property
    def data(self) -> AttentionData:
        """The full arrays (not synced)."""
        return self._data

    def _on_request(self, widget, content, buffers) -> None:
        reply, reply_buffers = self._data.handle(content)
        self.send(reply, reply_buffers)

    @t.validate("layer")
    def _valid_layer(self, proposal):
        if self.n_layers and not 0 <= proposal["value"] < self.n_layers:
            raise t.TraitError(f"layer must be 0-{self.n_layers - 1}")
        return proposal["value"]
