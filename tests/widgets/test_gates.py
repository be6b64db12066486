"""The LSTM gates view: Python state from a real LSTM capture, and its ES module in headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest
from widget_harness import state_of

from llm_magics.errors import UsageError
from llm_magics.widgets import GatesWidget

torch = pytest.importorskip("torch")

TEXT = 'ALONE, adj. In bad company.\n"Quoted," he said.'


@pytest.fixture(scope="module")
def capture():
    """Our runtime LSTM (2 layers) run over TEXT with every gate recorded."""
    from llm_magics.runtime.rnn import CharModel, RecurrentConfig

    torch.manual_seed(0)
    vocab = sorted(set(TEXT))
    model = CharModel(len(vocab), RecurrentConfig("lstm", input_size=8, hidden_size=24, num_layers=2))
    from llm_magics.runtime.capture import ActivationCache

    cache = ActivationCache()
    with torch.no_grad():
        model(torch.tensor([[vocab.index(c) for c in TEXT]]), capture=cache)
    return cache


def test_state_holds_the_chosen_units_of_every_quantity(capture):
    w = GatesWidget.from_cache(capture, list(TEXT), layer=1, max_units=10)
    assert w.quantities == ["input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden"]
    assert len(w.units) == 10 and w.hidden_size == 24
    data = np.frombuffer(w.data, dtype="<f4").reshape(6, len(TEXT), 10)
    cell = capture["layers.1.hook_cell"][0].numpy()  # (T, H)
    assert np.allclose(data[4], cell[:, w.units])
    assert set(w.units) == set(np.argsort(-cell.std(0))[:10].tolist())  # the most varying units
    assert w.value("forget_gate", 3, w.units[2]) == pytest.approx(float(capture["layers.1.hook_forget_gate"][0, 3, w.units[2]]))


def test_mistakes_say_what_to_pass(capture):
    with pytest.raises(UsageError, match="one label per step"):
        GatesWidget.from_cache(capture, list(TEXT)[:-1])
    with pytest.raises(UsageError, match="run an LSTM with a capture"):
        GatesWidget.from_cache(capture, list(TEXT), layer=5)
    with pytest.raises(UsageError, match="Units must lie in 0..23"):
        GatesWidget.from_cache(capture, list(TEXT), units=[30])


@pytest.mark.browser
def test_gates_view_draws_hovers_and_colours_the_text_by_a_unit(harness, capture):
    w = GatesWidget.from_cache(capture, list(TEXT), layer=0, max_units=12)
    harness.mount(w)
    assert harness.rendered() == "unit:-1" and not harness.errors()
    geom = harness.page.evaluate("JSON.parse(document.querySelector('.llmm-gates').dataset.geometry)")
    assert geom["T"] == len(TEXT) and geom["U"] == 12 and geom["Q"] == 6
    for q in w.quantities:  # every map has ink over most of its cells
        sel = f'.llmm-gates-canvas[data-quantity="{q}"]'
        assert harness.ink(sel, (geom["labelW"], 0, geom["T"] * geom["colW"], geom["U"] * geom["rowH"])) > 0.3 * geom["T"] * geom["U"]
    # hover step 5 (the "," after ALONE), unit row 3: the status shows every quantity's value
    t, row = 5, 3
    x, y = geom["labelW"] + t * geom["colW"] + geom["colW"] / 2, row * geom["rowH"] + geom["rowH"] / 2
    harness.hover_canvas('.llmm-gates-canvas[data-quantity="forget_gate"]', x, y)
    status = harness.text(".llmm-status")
    unit = w.units[row]
    assert status.startswith(f"t={t} “,” · unit {unit}:")
    for q, short in (("input_gate", "i"), ("forget_gate", "f"), ("candidate", "g"), ("cell", "c")):
        assert f"{short} {w.value(q, t, unit):.2f}" in status
    assert harness.page.get_attribute(f'.llmm-tok[data-t="{t}"]', "class").split() == ["llmm-tok", "hover"]
    # click: that unit is picked, saved to Python, and the text is coloured by its cell state
    before = harness.rendered()
    harness.click_canvas('.llmm-gates-canvas[data-quantity="cell"]', x, y)
    assert harness.saved()[-1] == {"selected": [t, unit], "unit": unit}
    assert harness.wait_rerender(before) == f"unit:{unit}"
    cell = w.arrays["cell"][:, row]
    strongest = int(np.argmax(np.abs(cell)))
    assert harness.page.get_attribute(f'.llmm-tok[data-t="{strongest}"]', "title") == f"c = {cell[strongest]:.3f}"
    assert f"unit {unit}'s cell state" in harness.text(".llmm-gates .llmm-head")


@pytest.mark.browser
def test_gates_view_follows_a_dark_theme(harness, capture):
    harness.page.evaluate("document.body.dataset.jpThemeLight = 'false'")
    w = GatesWidget.from_cache(capture, list(TEXT), max_units=8)
    harness.mount(w, state=state_of(w))
    r, g, b, _ = harness.pixel('.llmm-gates-canvas[data-quantity="cell"]', 2, 2)  # the label gutter: background
    assert max(r, g, b) < 60
    bg = harness.page.evaluate("getComputedStyle(document.querySelector('.llmm-gates')).backgroundColor")
    assert bg == "rgb(30, 30, 30)"
