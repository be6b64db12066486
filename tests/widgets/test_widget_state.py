"""Python-side state of the widgets: traits, binary buffers, quantisation, messages, grounding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipywidgets.widgets.widget import _remove_buffers

from llm_magics.qa.answer import Answer, Source
from llm_magics.backends.base import Usage
from llm_magics.errors import UsageError
from llm_magics.widgets import AttentionWidget, GroundingWidget, RetrievalWidget, _codec, grounding
from widget_harness import attention_from_qk, random_attention


# ─── codec ────────────────────────────────────────────────────────────────────


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200))
def test_sqrt_uint8_round_trip_error_is_bounded(values):
    a = np.array(values, dtype=np.float32)
    back = _codec.dequantise(_codec.quantise(a), a.shape)
    # error in sqrt space is at most half a step, so |Δa| <= 2·sqrt(a)/510 + 1/510²
    assert np.all(np.abs(back - a) <= 2 * np.sqrt(a) / 510 + 1 / 510**2 + 1e-6)


def test_small_weights_survive_quantisation():
    a = np.array([1 / 512, 1 / 1000, 0.0], dtype=np.float32)
    back = _codec.dequantise(_codec.quantise(a), a.shape)
    assert back[0] > 0 and back[1] > 0 and back[2] == 0  # a linear uint8 code would zero the first two
    assert abs(back[0] - a[0]) / a[0] < 0.1


def test_float16_round_trip():
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    assert np.allclose(_codec.from_float16(_codec.float16(x), x.shape), x, atol=2e-3)


def test_pool_max_matches_brute_force():
    p = np.random.default_rng(1).random((2, 3, 50, 50)).astype(np.float32)
    pooled = _codec.pool_max(p, 7)
    edges = np.linspace(0, 50, 8).round().astype(int)
    for r in range(7):
        for c in range(7):
            block = p[..., edges[r] : edges[r + 1], edges[c] : edges[c + 1]]
            assert np.allclose(pooled[..., r, c], block.max(axis=(-1, -2)))


# ─── AttentionWidget traits ───────────────────────────────────────────────────


def test_widget_state_is_binary_and_small():
    att = random_attention(4, 3, 10)
    w = AttentionWidget(att, [f"t{i}" for i in range(10)], view="matrix", layer=1, heads=[0, 2])
    state, paths, buffers = _remove_buffers(w.get_state())
    assert sorted(p[0] for p in paths) == ["attention", "qk", "thumbnails"]
    assert len(w.attention) == 4 * 3 * 10 * 10 and w.attention_layers == [0, 1, 2, 3]
    assert np.allclose(_codec.dequantise(w.attention, (4, 3, 10, 10)), att, atol=0.004)
    assert (w.n_layers, w.n_heads, w.view, w.layer, w.heads, w.has_qk, w.qk_layer) == (4, 3, "matrix", 1, [0, 2], False, -1)
    assert w._esm.startswith("// @ts-check") and "export default { render }" in w._esm
    assert ".llmm-attn" in w._css


def test_large_inputs_send_one_layer_and_thumbnails():
    att = random_attention(3, 2, 64)
    w = AttentionWidget(att, [str(i) for i in range(64)], layer=2, max_eager_bytes=10_000)
    assert w.attention_layers == [2] and len(w.attention) == 2 * 64 * 64
    assert w.thumb_size == 48 and len(w.thumbnails) == 3 * 2 * 48 * 48


def test_causal_is_detected_and_qk_accepted_in_both_orders():
    rng = np.random.default_rng(2)
    q = rng.normal(size=(2, 4, 6, 8)).astype(np.float32)
    k = rng.normal(size=(2, 2, 6, 8)).astype(np.float32)  # grouped-query: 2 key heads for 4 query heads
    att = attention_from_qk(q, np.repeat(k, 2, axis=1), causal=True)
    w = AttentionWidget(att, list("abcdef"), q=q.transpose(0, 2, 1, 3), k=k, view="neuron")  # q as (L, T, H, d)
    assert w.causal and w.has_qk and w.d_head == 8 and w.qk_layer == 0
    qk = _codec.from_float16(w.qk, (2, 4, 6, 8))
    assert np.allclose(qk[0], q[0], atol=1e-2) and np.allclose(qk[1, 2], k[0, 1], atol=1e-2)  # head 2 uses key head 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attention": np.zeros((2, 3, 4)), "tokens": list("abcd")}, "(layers, heads, T, T)"),
        ({"attention": np.zeros((1, 2, 3, 3)), "tokens": list("ab")}, "one string per token"),
        ({"attention": np.zeros((1, 2, 3, 3)), "tokens": list("abc"), "layer": 5}, "layers 0-0"),
        ({"attention": np.zeros((1, 2, 3, 3)), "tokens": list("abc"), "heads": [7]}, "heads 0-1"),
        ({"attention": np.zeros((1, 2, 3, 3)), "tokens": list("abc"), "view": "cube"}, "Known: head"),
        ({"attention": np.zeros((1, 2, 3, 3)), "tokens": list("abc"), "q": np.zeros((1, 2, 3, 4))}, "both q and k"),
    ],
)
def test_user_mistakes_say_the_fix(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AttentionWidget(**kwargs)


# ─── messages ─────────────────────────────────────────────────────────────────


def _round_trip(widget, content):
    """Send ``content`` through the widget's comm as the front end would; return what it sent back."""
    sent = []
    widget.comm.publish_msg = lambda msg_type, data=None, metadata=None, buffers=None, **kw: sent.append((data, buffers))
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})
    assert len(sent) == 1 and sent[0][0]["method"] == "custom"
    return sent[0][0]["content"], sent[0][1]


def test_get_layer_and_get_qk_answer_with_one_buffer():
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(2, 2, 2, 5, 4)).astype(np.float32)
    att = attention_from_qk(q, k)
    w = AttentionWidget(att, list("abcde"), q=q, k=k, max_eager_bytes=0)
    reply, buffers = _round_trip(w, {"type": "get_layer", "request_id": 7, "layer": 1})
    assert reply == {"type": "layer", "request_id": 7, "layer": 1, "shape": [2, 5, 5], "encoding": "sqrt-uint8"}
    assert np.allclose(_codec.dequantise(buffers[0], (2, 5, 5)), att[1], atol=0.004)
    reply, buffers = _round_trip(w, {"type": "get_qk", "request_id": 8, "layer": 1})
    assert reply["shape"] == [2, 2, 5, 4] and reply["request_id"] == 8
    assert np.allclose(_codec.from_float16(buffers[0], (2, 2, 5, 4))[1], k[1], atol=1e-2)


def test_bad_requests_come_back_as_error_messages():
    w = AttentionWidget(random_attention(2, 1, 3), list("abc"))
    reply, buffers = _round_trip(w, {"type": "get_layer", "request_id": 1, "layer": 9})
    assert reply["type"] == "error" and reply["request_id"] == 1 and "layers 0-1" in reply["message"] and not buffers
    reply, _ = _round_trip(w, {"type": "get_qk", "request_id": 2, "layer": 0})
    assert reply["type"] == "error" and "pass q= and k=" in reply["message"]
    reply, _ = _round_trip(w, {"type": "explode", "request_id": 3})
    assert reply["type"] == "error" and "get_layer" in reply["message"]


# ─── grounding ────────────────────────────────────────────────────────────────


def test_attribute_sums_spans_and_averages_layers_and_heads():
    rng = np.random.default_rng(4)
    rows = [rng.random((3, 2, 10 + i)).astype(np.float32) for i in range(4)]  # 4 generated tokens, prompt of 10
    spans = [(1, 4), (6, 9)]
    got = grounding.attribute(rows, spans, prompt_len=10)
    want = np.array([[r.mean(axis=(0, 1))[a:b].sum() for a, b in spans] for r in rows])
    assert np.allclose(got, want, atol=1e-6)
    only = grounding.attribute(rows, spans, prompt_len=10, layers=[2], heads=[1])
    assert np.allclose(only[0, 0], rows[0][2, 1, 1:4].sum())


def test_source_spans_find_sources_by_text():
    prompt = "Sources: [1] cats purr. [2] dogs bark loudly. Q?"
    pieces = ["Sources:", " [1]", " cats", " purr.", " [2]", " dogs", " bark", " loudly.", " Q?"]
    offsets, at = [], 0
    for p in pieces:
        offsets.append((at, at + len(p)))
        at += len(p)
    assert "".join(pieces) == prompt
    spans = grounding.source_spans(prompt, offsets, ["cats purr.", "dogs bark loudly.", "not there"])
    assert spans == [(2, 4), (5, 8), None]


def test_sentences_split_generated_pieces():
    assert grounding.sentences(["It", " is", " 1889", ".", " It", " is", " tall", "."]) == [(0, 4), (4, 8)]
    assert grounding.sentences(["No", " stop"]) == [(0, 2)]


def test_grounding_widget_traits():
    rng = np.random.default_rng(5)
    rows = [rng.random((2, 2, 12 + i)).astype(np.float32) for i in range(3)]
    g = grounding.Grounding.build(rows, 12, [f"p{i}" for i in range(12)], [(2, 5), None, (7, 10)], ["A", " b", "."],
                                  [{"number": 1, "label": "x"}, {"number": 2, "label": "y"}, {"number": 3, "label": "z"}])  # fmt: skip
    assert [s["number"] for s in g.sources] == [1, 3] and g.matrix.shape == (3, 2) and g.token_weights.shape == (3, 6)
    w = GroundingWidget(g)
    assert len(w.matrix) == 3 * 2 * 4 and len(w.token_weights) == 3 * 6 and w.source_tokens == [["p2", "p3", "p4"], ["p7", "p8", "p9"]]
    assert np.allclose(np.frombuffer(w.matrix, "<f4").reshape(3, 2), g.matrix)
    with pytest.raises(UsageError, match="None of the answer's sources"):
        grounding.Grounding.build(rows, 12, ["p"] * 12, [None], ["A"], [{"number": 1, "label": "x"}])


# ─── retrieval ────────────────────────────────────────────────────────────────


def make_answer() -> Answer:
    sources = [
        Source(1, "paris.md", "The Eiffel Tower was finished in 1889.", 0.82, page=None, start_index=0, cited=True),
        Source(2, "report.pdf", "Bananas are yellow.", 0.41, page=3, start_index=120),
    ]
    prompt = [{"step": "stuff", "messages": [{"role": "system", "content": "Answer from the sources."},
              {"role": "user", "content": "[1] The Eiffel Tower was finished in 1889.\n[2] Bananas are yellow.\nQuestion: When?"}], "reply": "In 1889 [1]."}]  # fmt: skip
    usage = Usage(prompt_tokens=61, completion_tokens=7, finish_reason="stop", extra={"calls": 1})
    return Answer("When was it finished?", "It was finished in 1889 [1].", sources, prompt, usage, {"retrieval": 0.01, "llm": 0.5, "total": 0.52}, "stuff", model="local:smollm2")


def test_retrieval_widget_reads_an_answer():
    w = RetrievalWidget(make_answer())
    assert [s["label"] for s in w.sources] == ["paris.md, chars 0+", "report.pdf, p. 3, chars 120+"]
    assert w.citations == [{"number": 1, "start": 24, "end": 27}] and w.sources[0]["cited"] and not w.sources[1]["cited"]
    assert w.usage["prompt_tokens"] == 61 and w.usage["calls"] == 1 and w.timings["llm"] == 0.5
    assert w.prompts[0]["messages"][1]["role"] == "user" and w.chain_type == "stuff" and w.chunk == -1
