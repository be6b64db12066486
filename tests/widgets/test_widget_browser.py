"""Each widget's real ES module rendered in headless Chromium: views, clicks, hovers, messages."""

from __future__ import annotations

import time

import numpy as np
import pytest
from widget_harness import SOURCES, attention_from_qk, random_attention, saved_state

from llm_magics.widgets import AttentionWidget, RetrievalWidget

pytestmark = pytest.mark.browser

HEAD = ".llmm-head-canvas"


def _qk_widget(n_layers=3, n_heads=4, n_tokens=8, d=16, causal=True, **kw):
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2, n_layers, n_heads, n_tokens, d)).astype(np.float32) * 2
    att = attention_from_qk(q, k, causal=causal)
    return AttentionWidget(att, [f"w{i}" for i in range(n_tokens)], q=q, k=k, **kw), att


def test_head_view_draws_hovers_and_toggles_heads(harness):
    w, att = _qk_widget(heads=[0, 1])
    harness.mount(w)
    assert harness.rendered().startswith("head:0") and not harness.errors()
    lines = int(harness.page.get_attribute(HEAD, "data-lines"))
    assert 0 < lines <= 2 * 8 * 8 and harness.ink(HEAD, (130, 8, 250, 150)) > 200  # lines between the columns
    # hover the left token w5: only its lines stay, and the status says where it looks
    before = harness.rendered()
    harness.hover_canvas(HEAD, 100, 8 + 5 * 18 + 9)
    status = harness.text(".llmm-status")
    assert status.startswith("“w5” #5 as a query attends most to:")
    isolated = int(harness.page.get_attribute(HEAD, "data-lines"))
    assert 0 < isolated <= 2 * 6  # causal: w5 sees w0..w5, in two heads
    best = int(np.argmax(att[0, [0, 1], 5].mean(0)))
    assert f"#{best} " in status.split(":", 1)[1].split("·")[0]
    # click a head's square: head 1 goes off, the change is saved back to Python's traits
    harness.page.click('.llmm-head[data-head="1"]')
    assert harness.saved()[-1] == {"heads": [0]}
    assert harness.page.get_attribute('.llmm-head[data-head="1"]', "class").split() == ["llmm-head"]
    harness.page.mouse.move(0, 0)
    assert int(harness.page.get_attribute(HEAD, "data-lines")) < lines
    # clicking a left token picks it for the neuron view
    harness.click_canvas(HEAD, 100, 8 + 2 * 18 + 9)
    assert harness.saved()[-1] == {"token": 2}
    assert before  # rendered at least once before the hover


def test_model_view_click_opens_the_matrix(harness):
    w, _ = _qk_widget(view="model")
    harness.mount(w)
    geom = harness.page.evaluate("JSON.parse(document.querySelector('.llmm-model-canvas').dataset.geometry)")
    assert harness.ink(".llmm-model-canvas") > 3 * 4 * 20
    before = harness.rendered()
    x = geom["left"] + 2 * (geom["cell"] + geom["gap"]) + geom["cell"] / 2
    y = geom["top"] + 1 * (geom["cell"] + geom["gap"]) + geom["cell"] / 2
    harness.click_canvas(".llmm-model-canvas", x, y)
    assert harness.saved()[-1] == {"layer": 1, "heads": [2], "view": "matrix"}
    assert harness.wait_rerender(before).startswith("matrix:1")
    assert "Layer 1, head 2" in harness.text(".llmm-caption")


def test_matrix_view_tooltip_and_causal_mask(harness):
    w, att = _qk_widget(view="matrix", layer=2, heads=[3])
    harness.mount(w)
    g = harness.geometry(".llmm-matrix-canvas")
    margin, px = g["margin"], g["px"]
    assert px >= 48  # 8 tokens fill the box: big cells, with labels
    harness.hover_canvas(".llmm-matrix-canvas", margin + 1.5 * px, margin + 6.5 * px)
    tip = harness.text(".llmm-tooltip")
    assert tip.startswith("“w6” #6 → “w1” #1:")
    assert abs(float(tip.rsplit(":", 1)[1]) - att[2, 3, 6, 1]) < 0.01
    assert harness.pixel(".llmm-matrix-canvas", margin + 6.5 * px, margin + 1.5 * px)[:3] == [232, 232, 232]  # masked
    harness.hover_canvas(".llmm-matrix-canvas", margin + 6.5 * px, margin + 1.5 * px)
    assert "causal mask" in harness.text(".llmm-tooltip")


def test_neuron_view_recomputes_the_captured_softmax(harness):
    w, _ = _qk_widget(view="neuron", layer=1, heads=[2], token=6)
    harness.mount(w)
    assert float(harness.page.get_attribute(".llmm-neuron-canvas", "data-max-diff")) < 0.01
    caption = harness.text(".llmm-caption")
    assert "Q: T×d_head = 8×16" in caption and "query #6 “w6”" in caption
    before = harness.rendered()
    harness.page.select_option(".llmm-token", "3")
    assert harness.saved()[-1] == {"token": 3}
    harness.wait_rerender(before)
    assert "query #3" in harness.text(".llmm-caption")


def test_layers_not_sent_are_fetched_with_messages(harness):
    w, att = _qk_widget(view="matrix", max_eager_bytes=0)
    assert w.attention_layers == [0]
    harness.mount(w)
    before = harness.rendered()
    harness.page.select_option(".llmm-layer", "2")
    assert harness.wait_rerender(before).startswith("matrix:2")
    assert harness.sent()[-1] == {"type": "get_layer", "request_id": 1, "layer": 2}
    assert harness.replies[-1] == {"type": "layer", "request_id": 1, "layer": 2, "shape": [4, 8, 8], "encoding": "sqrt-uint8"}
    # the neuron view asks for q and k of that layer
    before = harness.rendered()
    harness.page.click('button[data-view="neuron"]')
    harness.wait_rerender(before)
    assert harness.sent()[-1]["type"] == "get_qk" and harness.replies[-1]["shape"] == [2, 4, 8, 16]
    # a bad request gets an error message back, not silence
    harness.page.evaluate("window.__model.send({type: 'get_layer', request_id: 99, layer: 42})")
    harness.page.wait_for_function("window.__sent.length > 0")
    time.sleep(0.2)
    assert harness.replies[-1]["type"] == "error" and harness.replies[-1]["request_id"] == 99
    assert not harness.errors()
    assert all(url.startswith(("about:", "blob:", "data:")) for url in harness.network), harness.network  # offline: no CDN


def test_512_tokens_render_in_every_view(harness):
    """512 tokens × 12 heads draw in each view (how fast is bench/bench_widget.py's job, as ratios)."""
    att = random_attention(12, 12, 512, causal=True, sharp=4.0)
    w = AttentionWidget(att, [f"t{i}" for i in range(512)], top_k=3)
    harness.mount(w)
    lines = int(harness.page.get_attribute(HEAD, "data-lines"))
    assert 512 <= lines <= 12 * 512 * 3 + 12 * 512  # top-3 (ties can add a few)
    for view in ("model", "matrix"):
        before = harness.rendered()
        harness.page.click(f'button[data-view="{view}"]')
        assert harness.wait_rerender(before).startswith(view)
    g = harness.geometry(".llmm-matrix-canvas")
    assert g["side"] <= harness.page.evaluate("document.querySelector('.llmm-stage').clientWidth")  # 512 columns fit the box
    assert not harness.errors()


def test_encoder_pair_a_to_b_with_minilm(harness, attn_shell):
    attn_shell.run_cell('w = %attnviz "The cat sat on the mat." --pair "It was tired." --model minilm').raise_error()
    w = attn_shell.user_ns["w"]
    assert w.tokens[w.sentence_b_start] == "it" and not w.causal and w.d_head == 32
    harness.mount(w)
    before = harness.rendered()
    harness.page.select_option(".llmm-pair", "ab")
    assert harness.saved()[-1] == {"pair_filter": "ab"}
    harness.wait_rerender(before)
    n_a, n_b = w.sentence_b_start, len(w.tokens) - w.sentence_b_start
    # right column now lists sentence B only: hovering its first row names B's first token
    harness.hover_canvas(HEAD, 120 + 260 + 40, 8 + 9)
    assert "“it”" in harness.text(".llmm-status").split(" as a key")[0]
    assert n_a > n_b


def test_smollm2_neuron_view_matches_the_models_own_pattern(harness, smollm2, attn_shell):
    attn_shell.run_cell("w = %attnviz 'The quick brown fox jumps over the lazy dog.' --model smollm2 --view neuron --layer 4 --head 1").raise_error()
    w = attn_shell.user_ns["w"]
    assert w.causal and w.n_heads == 9 and w.d_head == 64
    w.token = len(w.tokens) - 1
    harness.mount(w)
    # softmax(q·k/√64) in the browser, from float16 q/k, reproduces the runtime's captured pattern
    assert float(harness.page.get_attribute(".llmm-neuron-canvas", "data-max-diff")) < 0.02
    assert "d_head = 64" in harness.text(".llmm-dims")


def test_grounding_view_after_a_real_generation(harness, attn_shell, rag_generation, smollm2):
    from llm_magics.qa.answer import Answer, Source

    messages, generation = rag_generation
    sources = [Source(s["number"], s["source"], s["text"], 0.8 - 0.3 * i) for i, s in enumerate(SOURCES)]
    answer = Answer("When was the Eiffel Tower finished?", generation.text, sources, [{"step": "stuff", "messages": messages, "reply": generation.text}],
                    model="local:smollm2", extras={"attention": generation.attention})  # fmt: skip
    attn_shell.user_ns["a"] = answer
    attn_shell.run_cell("a").raise_error()  # now the newest answer in Out
    attn_shell.run_cell("g = %attnviz --last").raise_error()
    g = attn_shell.user_ns["g"]
    m = np.frombuffer(g.matrix, "<f4").reshape(len(g.answer_tokens), len(g.sources))
    assert m.shape == (len(generation.token_ids), 2)
    assert m[:, 0].mean() > m[:, 1].mean()  # the answer about the tower read the tower's source more
    harness.mount(g)
    assert harness.page.locator(".llmm-sentence").count() == len(g.sentences)
    assert harness.ink(".llmm-heat-canvas") > 50
    shaded = harness.page.locator('.llmm-source[data-source="0"] .llmm-source-text span[style]').count()
    assert shaded > 0
    if len(g.sentences) > 1:
        harness.page.click('.llmm-sentence[data-sentence="1"]')
        assert harness.saved()[-1] == {"sentence": 1}


def test_retrieval_view_click_chunk_and_citation(harness):
    from test_widget_state import make_answer

    w = RetrievalWidget(make_answer())
    harness.mount(w)
    assert harness.page.locator(".llmm-chunk").count() == 2
    assert "prompt 61 tokens → answer 7 tokens" in harness.text(".llmm-tokens")
    assert harness.page.locator(".llmm-prompt mark").count() == 2  # both chunks found in the final prompt
    before = harness.rendered()
    harness.page.click('.llmm-chunk[data-chunk="1"]')
    assert harness.saved()[-1] == {"chunk": 1}
    harness.wait_rerender(before)
    assert harness.text(".llmm-full-text") == "Bananas are yellow."
    assert harness.page.get_attribute('.llmm-prompt mark[data-chunk="1"]', "class") == "on"
    harness.page.click('.llmm-cite[data-number="1"]')
    assert harness.saved()[-1] == {"chunk": 0}


def test_a_saved_notebook_re_renders_without_a_kernel(harness, tmp_path):
    """nbclient runs a real kernel and saves the widget state; the page renders from that alone."""
    import nbformat
    from nbclient import NotebookClient

    code = (
        "import numpy as np\n"
        "from llm_magics.widgets import AttentionWidget\n"
        "rng = np.random.default_rng(0)\n"
        "s = rng.normal(size=(2, 3, 6, 6)) * 3\n"
        "att = np.exp(s) / np.exp(s).sum(-1, keepdims=True)\n"
        "AttentionWidget(att, list('abcdef'), view='matrix', layer=1, heads=[2])"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}}).execute()
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    entry = next(m for m in models.values() if m["state"].get("_anywidget_id", "").endswith("AttentionWidget"))
    assert {tuple(b["path"]) for b in entry["buffers"]} == {("attention",), ("thumbnails",), ("qk",)}  # qk empty: no q/k given
    harness.mount(state=saved_state(entry), connected=False)
    assert harness.rendered().startswith("matrix:1") and "Layer 1, head 2" in harness.text(".llmm-caption")
    assert harness.ink(".llmm-matrix-canvas") > 6 * 6 * 20
