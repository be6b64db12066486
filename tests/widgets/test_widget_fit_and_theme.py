"""The widgets at home in a host page: its theme (JupyterLab's --jp-* variables, or the
browser's dark preference), its width (narrow, wide, resized), and the defects issue #11
found in a real JupyterLab, each checked in the real ES modules in headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest
from widget_harness import attention_from_qk

from llm_magics.widgets import AttentionWidget, GroundingWidget, RetrievalWidget, grounding

pytestmark = pytest.mark.browser

HEAD = ".llmm-head-canvas"

#: What JupyterLab's Dark theme puts on <body>: the theme flag and the variables we read.
JP_DARK = {
    "--jp-content-font-color1": "#fff",
    "--jp-content-font-color2": "rgba(255,255,255,.7)",
    "--jp-layout-color1": "#212121",
    "--jp-layout-color2": "#424242",
    "--jp-border-color2": "#424242",
    "--jp-content-link-color": "#64b5f6",
}

CONTRAST_JS = """(sel) => {
  const root = document.querySelector(sel);
  const rgb = (css) => { const c = document.createElement('canvas').getContext('2d'); c.fillStyle = css; c.fillRect(0, 0, 1, 1); return Array.from(c.getImageData(0, 0, 1, 1).data); };
  const lum = (c) => { const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const over = (top, a, under) => under.map((v, i) => i < 3 ? top[i] * a + v * (1 - a) : 255);
  const backOf = (e) => {  // backgrounds composited from the first opaque one up to the element
    const layers = [];
    for (let p = e; p; p = p.parentElement) { const b = rgb(getComputedStyle(p).backgroundColor); if (b[3]) layers.push(b); if (b[3] === 255) break; }
    let back = layers.length && layers[layers.length - 1][3] === 255 ? layers.pop() : [255, 255, 255, 255];
    while (layers.length) { const l = layers.pop(); back = over(l, l[3] / 255, back); }
    return back;
  };
  let worst = {ratio: 99, text: ''}, n = 0;
  for (const e of [root, ...root.querySelectorAll('*')]) {
    if (![...e.childNodes].some((x) => x.nodeType === 3 && x.textContent.trim())) continue;
    if (!e.getClientRects().length || e.closest('[hidden]') || e.disabled) continue;
    const cs = getComputedStyle(e);
    const back = backOf(e);
    const c = rgb(cs.color);
    const fg = over(c, c[3] / 255 * parseFloat(cs.opacity), back);
    const [l1, l2] = [lum(fg), lum(back)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05); n++;
    if (ratio < worst.ratio) worst = {ratio, text: `${e.tagName}.${e.className}: ${e.textContent.trim().slice(0, 40)}`};
  }
  return {...worst, n};
}"""



def _qk_widget(n_layers=2, n_heads=12, n_tokens=8, d=16, causal=True, **kw):
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2, n_layers, n_heads, n_tokens, d)).astype(np.float32) * 2
    att = attention_from_qk(q, k, causal=causal)
    return AttentionWidget(att, [f"w{i}" for i in range(n_tokens)], q=q, k=k, **kw), att


def _jupyterlab_dark(page):
    style = "; ".join(f"{k}: {v}" for k, v in JP_DARK.items())
    page.evaluate("(s) => { document.body.setAttribute('data-jp-theme-light', 'false'); document.body.style.cssText += '; background: #111; ' + s; }", style)


def _ink(harness, selector, box, dark=True):
    """Light pixels (text on a dark canvas) in a CSS-pixel box."""
    return harness.page.evaluate(
        """([sel, box]) => { const c = document.querySelector(sel); const s = c.width / parseFloat(c.style.width);
           const d = c.getContext('2d').getImageData(...box.map(v => Math.round(v * s))).data; let n = 0;
           for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] > 180 && d[i + 1] > 180 && d[i + 2] > 180) n++; return n; }""",
        [selector, list(box)],
    )


def _mount(harness, kind: str) -> str:
    """Mount one widget of each themed kind; return its root's selector."""
    from test_widget_state import make_answer

    if kind == "attention":
        w, sel = _qk_widget()[0], ".llmm-attn"
    elif kind == "retrieval":
        w, sel = RetrievalWidget(make_answer()), ".llmm-retr"
    else:
        w, sel = GroundingWidget(_grounding()), ".llmm-ground"
    harness.mount(w)
    return sel


@pytest.mark.parametrize("kind", ["attention", "retrieval", "grounding"])
def test_jupyterlab_dark_theme_reads_well(harness, kind):
    _jupyterlab_dark(harness.page)
    sel = _mount(harness, kind)
    got = harness.page.evaluate(CONTRAST_JS, sel)
    bg = harness.page.evaluate("(s) => getComputedStyle(document.querySelector(s)).backgroundColor", sel)
    assert bg == "rgb(33, 33, 33)"  # --jp-layout-color1
    assert got["ratio"] >= 4.5, got  # WCAG AA for every text element
    if kind == "attention":  # canvas text is drawn in the theme's colour too: light labels on the left
        g = harness.geometry(HEAD)
        assert _ink(harness, HEAD, (g["numW"], 0, g["labelW"], 60)) > 20
    assert not harness.errors()


#: What VS Code's notebook renderer puts on <body> in a dark theme (Dark Modern's colours).
VSCODE_DARK = {
    "--vscode-editor-foreground": "#cccccc",
    "--vscode-descriptionForeground": "#9d9d9d",
    "--vscode-editor-background": "#1f1f1f",
    "--vscode-editorWidget-background": "#202020",
    "--vscode-panel-border": "#2b2b2b",
    "--vscode-textLink-foreground": "#4daafc",
}


@pytest.mark.parametrize("kind", ["attention", "retrieval", "grounding"])
def test_vscode_dark_theme_reads_well(harness, kind):
    style = "; ".join(f"{k}: {v}" for k, v in VSCODE_DARK.items())
    harness.page.evaluate("(s) => { document.body.classList.add('vscode-dark'); document.body.style.cssText += '; background: #1f1f1f; ' + s; }", style)
    sel = _mount(harness, kind)
    bg = harness.page.evaluate("(s) => getComputedStyle(document.querySelector(s)).backgroundColor", sel)
    assert bg == "rgb(31, 31, 31)"  # --vscode-editor-background
    got = harness.page.evaluate(CONTRAST_JS, sel)
    assert got["ratio"] >= 4.5, got
    if kind == "attention":  # the canvas labels follow the editor's foreground
        g = harness.geometry(HEAD)
        assert _ink(harness, HEAD, (g["numW"], 0, g["labelW"], 60)) > 20
    assert not harness.errors()


def test_dark_preference_without_host_variables(harness):
    harness.page.emulate_media(color_scheme="dark")
    w, _ = _qk_widget(view="matrix")
    harness.mount(w)
    got = harness.page.evaluate(CONTRAST_JS, ".llmm-attn")
    assert got["ratio"] >= 4.5, got
    assert harness.page.get_attribute(".llmm-attn", "data-theme") == "dark"


def test_views_fit_a_narrow_output_and_follow_a_resize(harness):
    w, _ = _qk_widget(n_heads=9, d=64, view="neuron", heads=[0, 3])
    harness.page.evaluate("document.getElementById('mount').style.width = '500px'")
    harness.mount(w)
    width = lambda sel: harness.page.evaluate("(s) => document.querySelector(s).getBoundingClientRect().width", sel)  # noqa: E731
    stage = width(".llmm-stage")
    assert stage <= 500 and width(".llmm-neuron-canvas") <= stage
    # the headers sit over their columns: each numeric header ends where its numbers end
    g = harness.geometry(".llmm-neuron-canvas")
    assert g["colX"][-1] <= g["W"] and len(g["colX"]) == 5
    # head buttons say what is drawn: the neuron view draws one head
    on = harness.page.locator(".llmm-head.on")
    assert on.count() == 1 and on.get_attribute("data-head") == "0"
    for view in ("head", "matrix", "model"):
        before = harness.rendered()
        harness.page.click(f'button[data-view="{view}"]')
        harness.wait_rerender(before)
        canvas = {"head": HEAD, "matrix": ".llmm-matrix-canvas", "model": ".llmm-model-canvas"}[view]
        assert width(canvas) <= width(".llmm-stage"), view
    narrow = width(".llmm-model-canvas")
    before = harness.rendered()
    harness.page.evaluate("document.getElementById('mount').style.width = '1300px'")
    harness.wait_rerender(before)  # the ResizeObserver redrew
    assert width(".llmm-model-canvas") > narrow + 100
    assert not harness.errors()


def test_matrix_fills_its_box_with_a_colour_scale(harness):
    w, _ = _qk_widget(view="matrix", heads=[1])
    harness.mount(w)
    g = harness.geometry(".llmm-matrix-canvas")
    stage = harness.page.evaluate("document.querySelector('.llmm-stage').clientWidth")
    assert g["side"] >= min(0.5 * stage, 8 * 48)
    # the scale's strongest end (top) is navy, its weakest (bottom) white
    lx, ly, lw, lh = g["legend"]
    assert lx > g["margin"] + g["side"] and lh >= 120
    top = harness.pixel(".llmm-matrix-canvas", lx + lw / 2, ly + 1)[:3]
    assert max(abs(a - b) for a, b in zip(top, [8, 48, 107])) <= 4, top
    assert min(harness.pixel(".llmm-matrix-canvas", lx + lw / 2, ly + lh - 2)[:3]) > 240


def test_head_view_status_keeps_one_line_and_hover_shows_weights(harness):
    w, att = _qk_widget(n_tokens=12, heads=list(range(12)))
    harness.mount(w)
    height = lambda: harness.page.evaluate("document.querySelector('.llmm-attn').getBoundingClientRect().height")  # noqa: E731
    h0 = height()
    g = harness.geometry(HEAD)
    harness.hover_canvas(HEAD, g["numW"] + 30, g["pad"] + 7 * g["rowH"] + g["rowH"] / 2)
    status = harness.page.locator(".llmm-status")
    assert status.inner_text().startswith("“w7” #7 as a query")
    assert height() == h0  # the long status did not wrap: nothing below moved
    assert harness.page.evaluate("(e) => e.scrollHeight <= e.clientHeight + 1", status.element_handle())
    # the weights stand beside the key tokens on the right, in the theme's secondary text colour
    right_numbers = harness.ink(HEAD, (g["x1"] + g["labelW"], g["pad"], g["numW"], 8 * g["rowH"]))
    assert right_numbers > 30
    harness.page.mouse.move(0, 0)
    assert harness.ink(HEAD, (g["x1"] + g["labelW"], g["pad"], g["numW"], 8 * g["rowH"])) == 0


def test_only_this_head_by_double_click_alt_click_and_solo(harness):
    w, _ = _qk_widget()
    harness.mount(w)
    colours = harness.page.evaluate("[...document.querySelectorAll('.llmm-head')].map(b => getComputedStyle(b).borderTopColor)")
    assert len(set(colours)) == 12  # twelve heads, twelve colours
    harness.page.dblclick('.llmm-head[data-head="5"]')
    assert harness.saved()[-1] == {"heads": [5]}
    assert [b for b in harness.page.locator(".llmm-head.on").all()][0].get_attribute("data-head") == "5"
    harness.page.click(".llmm-all")
    assert harness.saved()[-1] == {"heads": list(range(12))}
    harness.page.click('.llmm-head[data-head="3"]', modifiers=["Alt"])
    assert harness.saved()[-1] == {"heads": [3]}
    harness.page.click(".llmm-solo")
    assert harness.page.get_attribute(".llmm-solo", "aria-pressed") == "true"
    harness.page.click('.llmm-head[data-head="7"]')
    assert harness.saved()[-1] == {"heads": [7]}
    assert harness.page.locator(".llmm-head.on").count() == 1


def test_a_missing_kernel_is_named_not_a_missing_layer(harness):
    w, _ = _qk_widget(view="matrix", max_eager_bytes=0)
    assert w.qk_layer == -1 and w.attention_layers == [0]
    harness.mount(w, connected=False)  # a saved notebook: nobody answers
    assert harness.sent()[0]["type"] == "ping"
    harness.page.click('button[data-view="neuron"]')
    harness.page.wait_for_selector(".llmm-error", timeout=15000)
    message = harness.text(".llmm-error")
    assert message.startswith("The kernel is not connected") and "queries and keys of layer 0" in message
    assert "attention of layer 0" in message  # what the saved output does hold


def test_kernel_answers_ping():
    from test_widget_state import _round_trip

    w, _ = _qk_widget()
    assert _round_trip(w, {"type": "ping", "request_id": 0}) == ({"type": "pong", "request_id": 0}, [])


def _answer_with_counts_and_pdf_text():
    from test_widget_state import make_answer

    a = make_answer()
    a.timings = {"retrieval": 0.02, "llm": 1.5, "first_token": 0.3, "answer_first_token": 0.35, "total": 1.6, "llm_calls": 1, "completion_tokens": 32, "tokens_per_s": 21.3}
    a.sources[1].text = "Bananas are\nyellow and\ngrow in\nbunches.\n\nA new paragraph."
    a.prompts[0]["messages"][1]["content"] = "[1] The Eiffel Tower was finished in 1889.\n[2] " + a.sources[1].text + "\nQuestion: When?"
    a.answer = "It was finished in 1889 [1]. Bananas are yellow [2]."
    return a


def test_retrieval_counts_are_not_seconds_and_labels_fit(harness):
    w = RetrievalWidget(_answer_with_counts_and_pdf_text())
    assert "completion_tokens" not in w.timings and w.counts == {"llm_calls": 1, "completion_tokens": 32, "tokens_per_s": 21.3}
    harness.page.evaluate("document.getElementById('mount').style.width = '500px'")
    harness.mount(w)
    timings = harness.text(".llmm-timings")
    assert "32" not in timings and "completion_tokens" not in timings and "answer_first_token" in timings
    assert "completion_tokens" in harness.text(".llmm-counts") and "32" in harness.text(".llmm-counts")
    assert "21.3 tokens/s" in harness.text(".llmm-tokens")
    clipped = harness.page.evaluate("[...document.querySelectorAll('.llmm-k')].filter(e => e.scrollWidth > e.clientWidth + 1).length")
    assert clipped == 0


def test_retrieval_reflows_pdf_lines_and_links_citations(harness):
    w = RetrievalWidget(_answer_with_counts_and_pdf_text())
    harness.mount(w)
    before = harness.rendered()
    harness.page.click('.llmm-cite[data-number="2"]')
    assert harness.saved()[-1] == {"chunk": 1}
    harness.wait_rerender(before)
    card = harness.page.locator('.llmm-chunk[data-chunk="1"]')
    assert "on" in card.get_attribute("class").split() and "flash" in card.get_attribute("class").split()
    assert harness.page.get_attribute('.llmm-cite[data-number="2"]', "href") == "#llmm-chunk-2"
    full = harness.page.eval_on_selector(".llmm-full-text", "e => e.textContent")
    assert full == "Bananas are yellow and grow in bunches.\n\nA new paragraph."
    assert "Bananas are yellow and grow in bunches." in harness.page.eval_on_selector('.llmm-prompt mark[data-chunk="1"]', "e => e.textContent")
    assert "[1] The Eiffel Tower was finished in 1889.\n[2]" in harness.page.eval_on_selector(".llmm-user .llmm-content", "e => e.textContent")
    harness.page.check(".llmm-raw input")
    assert harness.page.eval_on_selector(".llmm-full-text", "e => e.textContent") == w.sources[1]["text"]


def _grounding():
    rng = np.random.default_rng(5)
    prompt = ["<s>", " The", " tower", "\n", "\n", " is", " tall", ".", " Ban", "anas", " are", " yellow", "Q"]
    rows = []
    for i in range(6):
        r = rng.random((2, 2, 13 + i)).astype(np.float32) * 0.01
        r[..., 3:5] = 0.9  # most attention on the two newline tokens
        r[..., 6] = 0.6  # and much on " tall"
        rows.append(r)
    answer = ["In", "es", " O", "ka", " for", "."]
    return grounding.Grounding.build(rows, 13, prompt, [(1, 8), (8, 12)], answer, [{"number": 1, "label": "tower.md"}, {"number": 2, "label": "fruit.md"}])


def test_grounding_shades_no_whitespace_and_marks_words(harness):
    harness.mount(GroundingWidget(_grounding()))
    shaded = harness.page.eval_on_selector_all('.llmm-source-text span[style*="background"]', "es => es.map(e => e.textContent)")
    assert "tall" in shaded and all(t.strip() for t in shaded)  # the newline tokens carry the most weight but draw no block
    assert harness.page.get_attribute(".llmm-heat-canvas", "data-words") == "4"  # Ines · Oka · for · .
    g = harness.geometry(".llmm-heat-canvas")
    harness.hover_canvas(".llmm-heat-canvas", g["labelW"] + 5, g["top"] + 1.5 * g["rowH"])
    assert harness.text(".llmm-status").startswith("“es” (in “Ines”) spent")
    assert not harness.errors()


def test_head_buttons_say_what_the_matrix_averages(harness):
    w, _ = _qk_widget(view="matrix", heads=[])
    harness.mount(w)
    assert "mean of heads 0, 1, 2" in harness.text(".llmm-caption")
    assert harness.page.locator(".llmm-head.on").count() == 12  # none selected: all are averaged, and all say so
