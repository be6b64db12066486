"""The head view in marimo, which renders anywidgets too: ``marimo run`` serves a small app
on loopback (with a token) that shows the real MiniLM's attention; Chromium hovers, clicks
and switches layer, which fetches the layer from marimo's Python kernel."""

from __future__ import annotations

import secrets
import sys
import textwrap

import pytest
from servers import Console, Server, free_port, quiet_env, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP = textwrap.dedent(
    '''
    import marimo

    app = marimo.App(width="medium")


    @app.cell
    def _():
        import marimo as mo

        try:
            from llm_magics.widgets.builders import attention_widget
        except ImportError:  # the module's name before the restructure
            from llm_magics.widgets.capture import attention_widget

        # only layer 0 travels with the widget: other layers are asked of the kernel
        widget = mo.ui.anywidget(attention_widget("The cat sat on the mat because it was tired.", model="minilm", max_eager_bytes=0))
        widget
        return (widget,)


    if __name__ == "__main__":
        app.run()
    '''
)


@pytest.fixture(scope="module")
def marimo_page(chromium, tmp_path_factory):
    root = tmp_path_factory.mktemp("marimo")
    (root / "app.py").write_text(APP)
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "marimo", "run", "app.py", "--headless", "--host", "127.0.0.1", "-p", str(port),
           "--token", "--token-password", token]  # fmt: skip
    server = Server(cmd, root, quiet_env(root), port, "/health")
    context = chromium.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    console = Console(page)
    try:
        page.goto(f"http://127.0.0.1:{port}/?access_token={token}")
        page.locator(".llmm-attn[data-rendered]").wait_for(state="attached", timeout=120000)
        yield page, console
    finally:
        context.close()
        server.stop()


def test_head_view_renders_hovers_clicks_and_fetches_a_layer(marimo_page):
    page, console = marimo_page
    root = page.locator(".llmm-attn")
    assert root.get_attribute("data-view") == "head" and root.get_attribute("data-error") is None
    shot(root, "marimo-light-head")
    canvas = root.locator(".llmm-head-canvas")
    g = canvas.evaluate("c => JSON.parse(c.dataset.geometry)")
    assert canvas.bounding_box()["width"] <= root.locator(".llmm-stage").bounding_box()["width"]
    canvas.hover(position={"x": g["numW"] + 40, "y": g["pad"] + 2.5 * g["rowH"]})
    assert " as a query attends most to:" in root.locator(".llmm-status").inner_text()
    root.locator('.llmm-head[data-head="2"]').dblclick()
    root.locator(".llmm-head.on").first.wait_for()
    page.wait_for_function("(e) => e.querySelectorAll('.llmm-head.on').length === 1", arg=root.element_handle())
    root.locator(".llmm-layer").select_option("3")
    page.wait_for_function("(e) => (e.dataset.rendered || '').startsWith('head:3') || !!e.dataset.error", arg=root.element_handle(), timeout=30000)
    assert root.get_attribute("data-error") is None, root.get_attribute("data-error")
    shot(root, "marimo-light-head-layer3")
    assert console.ours() == [], console.ours()
