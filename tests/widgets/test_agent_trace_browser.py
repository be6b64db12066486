"""The agent trace widget's real ES module in headless Chromium: a timeline of a real run's steps;
clicking a step shows the prompt the model saw and its raw output; themes from CSS variables."""

from __future__ import annotations

import json

import pytest

from llm_magics.agents.trace import AgentResult, Step
from llm_magics.widgets.agent_trace import AgentTraceWidget

pytestmark = pytest.mark.browser


def make_result() -> AgentResult:
    prompt = [{"role": "system", "content": "You answer questions using tools."}, {"role": "user", "content": "Question: 6 times 7?"}]
    steps = [
        Step(1, "invalid", thought="", tool="browser", tool_input={"url": "x"}, observation="There is no tool 'browser'. Use one of: calculator.",
             error="unknown tool 'browser'", prompt=prompt, raw='Thought: web\nAction: browser\nAction Input: {"url": "x"}', seconds=0.4, tokens=12),
        Step(2, "action", thought="Multiply.", tool="calculator", tool_input={"expression": "6*7"}, observation="42",
             prompt=prompt + [{"role": "assistant", "content": "..."}], raw='Thought: Multiply.\nAction: calculator\nAction Input: {"expression": "6*7"}',
             seconds=0.5, tokens=15, constrained=True),
        Step(3, "final", thought="I know it.", answer="42", prompt=prompt, raw="Thought: I know it.\nFinal Answer: 42", seconds=0.2, tokens=9, constrained=True),
    ]  # fmt: skip
    return AgentResult("6 times 7?", answer="42", steps=steps, finish_reason="final_answer", model="local:smollm2", mode="react+grammar", seconds=1.1)


def test_timeline_click_shows_prompt_and_raw_output(harness, tmp_path):
    result = make_result()
    replayed = AgentResult.from_jsonl(result.to_jsonl(tmp_path / "t.jsonl"))  # the widget draws a replayed trace the same
    harness.mount(AgentTraceWidget(replayed))
    assert not harness.errors()
    assert harness.page.locator(".llmm-step").count() == 3
    assert harness.page.get_attribute(".llmm-step >> nth=0", "class").split() == ["llmm-step", "llmm-invalid"]
    assert "calculator({\"expression\": \"6*7\"})" in harness.text(".llmm-step >> nth=1")
    assert harness.text(".llmm-agent-answer") == "Answer: 42"
    assert harness.page.locator(".llmm-detail").count() == 0
    before = harness.rendered()
    harness.page.click(".llmm-step >> nth=1")
    harness.wait_rerender(before)
    assert harness.saved()[-1] == {"selected": 1}
    detail = harness.text(".llmm-detail")
    assert "You answer questions using tools." in detail and "Question: 6 times 7?" in detail
    assert harness.text(".llmm-raw") == 'Thought: Multiply.\nAction: calculator\nAction Input: {"expression": "6*7"}'
    assert harness.page.get_attribute(".llmm-step >> nth=1", "aria-expanded") == "true"
    before = harness.rendered()
    harness.page.click(".llmm-step >> nth=1")  # a second click closes it
    harness.wait_rerender(before)
    assert harness.saved()[-1] == {"selected": -1} and harness.page.locator(".llmm-detail").count() == 0
    assert not [u for u in harness.network if not u.startswith(("about:", "data:", "blob:"))]  # nothing fetched from a network


def test_theme_follows_jupyterlab_variables_with_dark_fallback(harness):
    harness.mount(AgentTraceWidget(make_result()))
    color = lambda: harness.page.evaluate("getComputedStyle(document.querySelector('.llmm-agent')).color")  # noqa: E731
    assert color() == "rgb(31, 31, 31)"  # light fallback
    harness.page.evaluate("document.body.dataset.jpThemeLight = 'false'")
    assert color() == "rgb(232, 232, 232)"  # dark fallback
    harness.page.evaluate("document.body.style.setProperty('--jp-content-font-color1', 'rgb(1, 2, 3)')")
    assert color() == "rgb(1, 2, 3)"  # JupyterLab's own variable wins


def test_widget_state_is_json(tmp_path):
    w = AgentTraceWidget(make_result(), selected=2)
    state = w.get_state()
    json.dumps({k: state[k] for k in ("steps", "sources", "selected", "answer")})
    assert [s["kind"] for s in state["steps"]] == ["invalid", "action", "final"] and state["steps"][0]["tool_input"] == '{"url": "x"}'


def test_a_rejected_step_has_its_own_label_and_stripe(harness):
    result = make_result()
    result.steps.insert(0, Step(0, "rejected", thought="I remember it.", answer="41", error="tool_choice: the first step must call a tool",
                                observation="Call a tool first (calculator), then answer from what it returns, not from memory.",
                                raw="Thought: I remember it.\nFinal Answer: 41"))  # fmt: skip
    harness.mount(AgentTraceWidget(result))
    assert not harness.errors()
    first = ".llmm-step >> nth=0"
    assert harness.page.get_attribute(first, "class").split() == ["llmm-step", "llmm-rejected"]
    assert harness.text(".llmm-step-kind >> nth=0").lower() == "rejected" and "Call a tool first" in harness.text(first)
    stripe = lambda n: harness.page.evaluate(  # noqa: E731
        f"getComputedStyle(document.querySelectorAll('.llmm-step')[{n}], '::before').backgroundColor")
    # rejected (a muted stripe) is told apart from invalid (the error colour) and from an action (the accent)
    assert len({stripe(0), stripe(1), stripe(2)}) == 3
    harness.page.evaluate("document.body.dataset.jpThemeLight = 'false'")
    assert len({stripe(0), stripe(1), stripe(2)}) == 3
