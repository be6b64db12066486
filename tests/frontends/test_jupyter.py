"""Every widget in a real JupyterLab and a real Notebook 7: one notebook that loads the
extension, shows the four attention views of the real MiniLM, then a retrieval view and a
grounding view from a real ``%%ask`` (SmolLM2) on a tiny collection ingested into Chroma.

Each front end runs the notebook once (one server and one kernel per front end); the tests
then check that each widget renders, answers a hover and a click, fetches a layer from the
kernel, and reads well in the Dark theme (WCAG AA, 4.5:1, measured from screenshot pixels
and from computed styles), with no console errors from our code.
"""

from __future__ import annotations

import re
import time

import nbformat
import pytest
from servers import CONTRAST_JS, Console, pixel_contrast, shot, start_jupyter

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXT = "The cat sat on the mat because it was tired."
CELLS = [
    "%load_ext llm_magics",
    f'%attnviz "{TEXT}" --model minilm -o head',
    f'%attnviz "{TEXT}" --model minilm --view model',
    f'%attnviz "{TEXT}" --model minilm --view matrix --head 3',
    "from llm_magics.widgets import AttentionWidget\n"
    "d = head.data  # only layer 0 goes with the widget: the others are fetched from the kernel\n"
    "AttentionWidget(d.attention, d.tokens, q=d.q, k=d.k, view='neuron', heads=[1], token=3, max_eager_bytes=0,\n"
    "                model_name='minilm', title='Neuron view, layers fetched on demand')",
    "from pathlib import Path\n"
    "Path('docs').mkdir(exist_ok=True)\n"
    "Path('docs/tower.md').write_text('# The tower\\n\\nThe Eiffel Tower in Paris was finished in 1889.\\n"
    "It is 330 metres tall and was built by the company of Gustave Eiffel.\\n')\n"
    "Path('docs/fruit.md').write_text('# Fruit\\n\\nBananas are yellow fruit.\\nThey grow in bunches in tropical countries.\\n')",
    "%ingest docs --collection frontends",
    "%%ask --collection frontends --k 2 --max-tokens 16 --view -o answer\nWhen was the Eiffel Tower finished?",
    "%attnviz --last",
]
ATTENTION_VIEWS = ["head", "model", "matrix", "neuron"]
PATHS = {"lab": "/lab/tree/all.ipynb", "notebook": "/notebooks/all.ipynb"}
ERROR = re.compile(r"Traceback|Error\b|UsageError")
KERNEL_IDLE = "() => { const w = window.jupyterapp.shell.currentWidget; const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel; return !!k && k.status === 'idle'; }"


def write_notebook(root):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "all.ipynb")


class FrontEnd:
    def __init__(self, name, page, console):
        self.name, self.page, self.console = name, page, console

    def attn(self, view: str):
        """The attention widget that opened in ``view`` (cells keep their order)."""
        return self.page.locator(".llmm-attn").nth(ATTENTION_VIEWS.index(view))

    def command(self, name: str, args: dict | None = None):
        return self.page.evaluate("([n, a]) => window.jupyterapp.commands.execute(n, a)", [name, args or {}])


def _wait_for_widgets(page, timeout=240):
    """Until every widget drew; fails early with the text of a cell error."""
    deadline = time.monotonic() + timeout
    want = "document.querySelectorAll('.llmm-attn[data-rendered]').length >= 4 && !!document.querySelector('.llmm-retr[data-rendered]') && !!document.querySelector('.llmm-ground[data-rendered]')"
    while time.monotonic() < deadline:
        if page.evaluate(want):
            return
        errors = [t for t in page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts() if ERROR.search(t)]
        assert not errors, errors[0][-2000:]
        time.sleep(1)
    raise AssertionError(f"widgets did not all render in {timeout} s: " + page.evaluate(
        "[...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText.slice(0, 200)).join(' | ')"))


@pytest.fixture(scope="module", params=["lab", "notebook"])
def fe(request, chromium, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"frontend-{request.param}")
    write_notebook(root)
    server = start_jupyter(request.param, root)
    context = chromium.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    console = Console(page)
    t0 = time.monotonic()
    phase = lambda name: print(f"[{request.param}] {name}: {time.monotonic() - t0:.1f} s", flush=True)  # noqa: E731
    phase("server up")
    try:
        page.goto(server.url(PATHS[request.param]))
        page.wait_for_function("() => window.jupyterapp && document.querySelectorAll('.jp-Notebook .jp-Cell').length >= 9", timeout=90000)
        # run the cells once the notebook is the current widget and its kernel is idle
        phase("notebook open")
        page.wait_for_function(KERNEL_IDLE, timeout=90000)
        phase("kernel idle")
        front = FrontEnd(request.param, page, console)
        assert front.command("notebook:run-all-cells") is not False
        try:
            _wait_for_widgets(page)
            phase("all widgets drawn")
        except BaseException:
            shot(page, f"{request.param}-failed-run")
            raise
        yield front
    finally:
        context.close()
        server.stop()


def test_every_widget_renders(fe):
    page = fe.page
    assert page.eval_on_selector_all(".llmm-attn", "es => es.map(e => e.dataset.view)") == ATTENTION_VIEWS
    assert page.eval_on_selector_all("[data-error]", "es => es.map(e => e.dataset.error)") == []
    assert page.locator(".llmm-retr .llmm-chunk").count() >= 1
    assert page.locator(".llmm-ground .llmm-sentence").count() >= 1
    for view in ATTENTION_VIEWS:
        canvas = fe.attn(view).locator("canvas").first
        box = canvas.bounding_box()
        stage = fe.attn(view).locator(".llmm-stage").bounding_box()
        assert box["width"] > 100 and box["width"] <= stage["width"], (view, box, stage)  # fits the output area
    shot(page, f"{fe.name}-light-page")
    for view in ATTENTION_VIEWS:
        shot(fe.attn(view), f"{fe.name}-light-{view}")
    shot(page.locator(".llmm-retr"), f"{fe.name}-light-retrieval")
    shot(page.locator(".llmm-ground"), f"{fe.name}-light-grounding")


def test_hovers_and_clicks(fe):
    page = fe.page
    head = fe.attn("head")
    canvas = head.locator(".llmm-head-canvas")
    g = canvas.evaluate("c => JSON.parse(c.dataset.geometry)")
    canvas.hover(position={"x": g["numW"] + 40, "y": g["pad"] + 2.5 * g["rowH"]})
    assert " as a query attends most to:" in head.locator(".llmm-status").inner_text()
    head.locator('.llmm-head[data-head="4"]').dblclick()
    page.wait_for_function("(e) => e.querySelectorAll('.llmm-head.on').length === 1", arg=head.element_handle())
    # the model view: a click on layer 2, head 5 opens it as a matrix (through the kernel's traits)
    model = fe.attn("model")
    mg = model.locator(".llmm-model-canvas").evaluate("c => JSON.parse(c.dataset.geometry)")
    model.locator(".llmm-model-canvas").click(position={"x": mg["left"] + 5.5 * (mg["cell"] + mg["gap"]), "y": mg["top"] + 2.5 * (mg["cell"] + mg["gap"])})
    page.wait_for_function("(e) => (e.dataset.rendered || '').startsWith('matrix:2')", arg=model.element_handle(), timeout=20000)
    matrix = fe.attn("matrix")
    mx = matrix.locator(".llmm-matrix-canvas")
    geo = mx.evaluate("c => JSON.parse(c.dataset.geometry)")
    mx.hover(position={"x": geo["margin"] + 1.5 * geo["px"], "y": geo["margin"] + 3.5 * geo["px"]})
    assert "→" in matrix.locator(".llmm-tooltip").inner_text()
    # retrieval: a [n] link goes to its chunk; grounding: hover names a token, a click picks a sentence
    retr = page.locator(".llmm-retr")
    cite = retr.locator(".llmm-cite").first
    if cite.count():
        n = cite.get_attribute("data-number")
        cite.click()
        page.wait_for_function("(e) => e.querySelector('.llmm-chunk.on')", arg=retr.element_handle())
        assert retr.locator(".llmm-chunk.on").get_attribute("id") == f"llmm-chunk-{n}"
    else:  # the model cited nothing this time: the chunk itself is the link target
        retr.locator(".llmm-chunk").last.click()
        page.wait_for_function("(e) => e.querySelector('.llmm-chunk.on')", arg=retr.element_handle())
    ground = page.locator(".llmm-ground")
    heat = ground.locator(".llmm-heat-canvas")
    hg = heat.evaluate("c => JSON.parse(c.dataset.geometry)")
    heat.hover(position={"x": hg["labelW"] + 5, "y": hg["top"] + 0.5 * hg["rowH"]})
    assert "of its attention on [" in ground.locator(".llmm-status").inner_text()
    ground.locator(".llmm-sentence").first.click()
    assert "on" in ground.locator(".llmm-sentence").first.get_attribute("class")


def test_a_layer_is_fetched_from_the_kernel(fe):
    neuron = fe.attn("neuron")
    neuron.locator(".llmm-layer").select_option("4")
    try:
        fe.page.wait_for_function("(e) => (e.dataset.rendered || '').startsWith('neuron:4')", arg=neuron.element_handle(), timeout=90000)
    except Exception:
        if any(Console.LOADER_TIMEOUT in e for e in fe.console.errors):  # seen with every core busy (load average ~30)
            pytest.xfail("anywidget timed out initialising a model (its 2 s limit), so its messages are lost; not our code")
        raise
    assert neuron.get_attribute("data-error") is None
    diff = float(neuron.locator(".llmm-neuron-canvas").get_attribute("data-max-diff"))
    assert diff < 0.02  # q and k of layer 4 came from the kernel and reproduce its attention


def _text_elements(fe):
    yield from ((f"{v}{sel}", fe.attn(v).locator(sel).first) for v in ("head", "matrix") for sel in (".llmm-title", ".llmm-dims", ".llmm-legend"))
    for sel in (".llmm-question", ".llmm-tokens", ".llmm-preview", ".llmm-content"):
        yield f"retrieval{sel}", fe.page.locator(".llmm-retr").locator(sel).first
    for sel in (".llmm-dims", ".llmm-source-head", ".llmm-legend", ".llmm-sentence"):
        yield f"grounding{sel}", fe.page.locator(".llmm-ground").locator(sel).first


def test_dark_theme_reads_well(fe, record_property):
    page = fe.page
    fe.command("apputils:change-theme", {"theme": "JupyterLab Dark"})
    page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached", timeout=20000)
    page.wait_for_function("[...document.querySelectorAll('.llmm-attn')].every(e => e.dataset.theme === 'dark')", timeout=60000)
    # JupyterLab covers the page with its splash while a theme loads, then fades it out:
    # a screenshot taken under the fading splash reads low (3.44:1 on CI), so wait it out
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60000)
    ratios = {}
    for name, locator in _text_elements(fe):
        ratios[name] = round(pixel_contrast(locator.screenshot()), 2)
    head = fe.attn("head").locator(".llmm-head-canvas")
    g = head.evaluate("c => JSON.parse(c.dataset.geometry)")
    head.scroll_into_view_if_needed()
    box = head.bounding_box()
    labels = page.screenshot(clip={"x": box["x"] + g["numW"], "y": box["y"] + g["pad"], "width": g["labelW"], "height": 4 * g["rowH"]})
    ratios["head canvas labels"] = round(pixel_contrast(labels), 2)
    computed = {}
    for name, sel in (("attention", ".llmm-attn"), ("retrieval", ".llmm-retr"), ("grounding", ".llmm-ground")):
        for i, root in enumerate(page.locator(sel).all()):
            got = root.evaluate(CONTRAST_JS)
            computed[f"{name}{i}"] = (round(got["ratio"], 2), got["text"], got["n"])
    shot(page, f"{fe.name}-dark-page")
    for view in ATTENTION_VIEWS:
        shot(fe.attn(view), f"{fe.name}-dark-{view}")
    shot(page.locator(".llmm-retr"), f"{fe.name}-dark-retrieval")
    shot(page.locator(".llmm-ground"), f"{fe.name}-dark-grounding")
    record_property("pixel_contrast", ratios)
    record_property("computed_contrast", computed)
    print(f"\n{fe.name} dark: pixel contrast {ratios}\ncomputed (worst per widget) {computed}")
    assert min(ratios.values()) >= 4.5, ratios
    assert min(r for r, _, _ in computed.values()) >= 4.5, computed
    fe.command("apputils:change-theme", {"theme": "JupyterLab Light"})


def test_no_console_errors_from_our_code(fe):
    print(f"\n{fe.name} console errors (all): {fe.console.errors}")
    assert fe.console.ours() == [], fe.console.ours()


def test_a_stopped_kernel_is_named(fe):
    """After the kernel stops, asking for a layer says that the kernel does not answer, not that a layer is missing."""
    neuron = fe.attn("neuron")
    fe.page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.shutdown()")
    neuron.locator(".llmm-layer").select_option("2")
    error = neuron.locator(".llmm-error")
    error.wait_for(timeout=30000)
    text = error.inner_text()
    assert "kernel" in text and "not connected" in text and "layer 2" in text, text
    shot(neuron, f"{fe.name}-stopped-kernel")
