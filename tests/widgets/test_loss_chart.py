"""LossChart: Python state, and the view drawn in headless Chromium."""

from __future__ import annotations

import pytest

from llm_magics.widgets.loss import LossChart


def test_points_accumulate_in_synced_state():
    chart = LossChart(title="run")
    for step, loss in enumerate([3.0, 2.5, 2.0], 1):
        chart.add_point("train", step, loss)
    chart.add_point("validation", 3, 2.2)
    assert chart.points("train") == [(1, 3.0), (2, 2.5), (3, 2.0)]
    assert chart.series["validation"] == [[3, 2.2]]


@pytest.mark.browser
def test_view_draws_one_line_per_series(harness):
    chart = LossChart(title="smollm2-codes")
    for step, loss in enumerate([3.0, 2.5, 2.0, 1.2], 1):
        chart.add_point("train", step, loss)
    chart.add_point("validation", 4, 1.5)
    harness.mount(chart)
    assert harness.rendered() == "points:5" and not harness.errors()
    assert harness.page.locator(".llmm-loss path.train").count() == 1
    assert harness.page.locator(".llmm-loss path.validation").count() == 1
    assert "step 4 · loss 1.200" in harness.text(".llmm-loss-status")
    assert not [u for u in harness.network if not u.startswith(("data:", "about:", "blob:"))]  # nothing fetched from outside
