"""The step loop: what it does with each kind of model output and tool behaviour, its limits,
memory, callbacks and the replayable trace. The model is the ``scripted`` backend plugin
(replies the test writes), so each failure happens on cue; the tools are real."""

from __future__ import annotations

import json

import pytest

from llm_magics import UsageError
from llm_magics.agents import Agent, AgentInterrupted, replay, tool
from llm_magics.agents import tools as tools_mod


@pytest.fixture(autouse=True)
def no_session_tools():
    tools_mod.session_tools.clear()
    yield
    tools_mod.session_tools.clear()


def step(thought, action, args):
    return f"Thought: {thought}\nAction: {action}\nAction Input: {json.dumps(args)}"


def test_a_run_thinks_acts_observes_and_answers(scripted, planets_db):
    scripted.replies.extend([
        step("Look up both planets.", "sql", {"query": "SELECT sum(moons) FROM planets WHERE name IN ('Jupiter', 'Saturn')"}),
        "Thought: I know the answer.\nFinal Answer: 241",
    ])  # fmt: skip
    result = Agent(["sql", "calculator"], "scripted:x", db=planets_db).run("How many moons do Jupiter and Saturn have together?")
    assert result.answer == "241" and result.finish_reason == "final_answer"
    first, last = result.steps
    assert (first.kind, first.tool, first.observation) == ("action", "sql", "sum(moons)\n241")
    assert first.thought == "Look up both planets." and last.kind == "final"
    # the model saw the tools, then its own step and the observation
    second_prompt = scripted.calls[1]
    assert "sql:" in second_prompt[0]["content"] and "planets(name, diameter_km" in second_prompt[0]["content"]
    assert second_prompt[-2]["role"] == "assistant"
    # the observation, then the task again, so passages that ask questions of their own do not replace it
    assert second_prompt[-1]["content"] == "Observation: sum(moons)\n241\n\n(The question is still: How many moons do Jupiter and Saturn have together?)"
    assert result.steps[1].prompt == second_prompt


def test_unknown_tool_malformed_output_and_bad_arguments_become_observations(scripted):
    scripted.replies.extend([
        step("Use the web.", "browser", {"url": "x"}),
        "I think the answer is probably 5.",
        step("Compute.", "calculator", {"expr": "2+3"}),
        step("Compute.", "calculator", {"expression": "2 +* 3"}),
        step("Compute.", "calculator", {"expression": "2 + 3"}),
        "Thought: done\nFinal Answer: 5",
    ])  # fmt: skip
    result = Agent(["calculator"], "scripted:x", max_steps=8).run("What is 2 + 3?")
    kinds = [s.kind for s in result.steps]
    assert kinds == ["invalid", "invalid", "invalid", "action", "action", "final"]
    assert result.malformed_calls == 3 and result.answer == "5"
    unknown, malformed, bad_args, raised, good, _ = result.steps
    assert unknown.observation == "There is no tool 'browser'. Use one of: calculator."
    assert malformed.observation.startswith("Invalid format: write 'Action:'")
    assert bad_args.observation.startswith("Invalid arguments for calculator: expression: Field required")
    assert raised.error.startswith("ValueError: not an arithmetic expression") and raised.observation.startswith("Error: ValueError")
    assert good.observation == "5"
    # every observation went back to the model as the next user message
    reminder = "\n\n(The question is still: What is 2 + 3?)"
    assert [c[-1]["content"] for c in scripted.calls[1:]] == [f"Observation: {s.observation}{reminder}" for s in result.steps[:-1]]


def test_a_tool_that_raises_does_not_end_the_run(scripted):
    @tool
    def flaky(city: str) -> str:
        """Weather for a city."""
        raise ConnectionError("weather service unreachable")

    scripted.replies.extend([step("Ask.", "flaky", {"city": "Oslo"}), "Thought: It failed.\nFinal Answer: unknown"])
    result = Agent(["flaky"], "scripted:x").run("Weather in Oslo?")
    assert result.steps[0].observation == "Error: ConnectionError: weather service unreachable"
    assert result.finish_reason == "final_answer" and result.answer == "unknown"


def test_step_budget_and_time_budget(scripted):
    scripted.replies.extend([step("Again.", "calculator", {"expression": f"1+{n}"}) for n in range(5)])
    result = Agent(["calculator"], "scripted:x", max_steps=3, early_stopping_method="force").run("Loop forever")
    assert result.finish_reason == "max_steps" and len(result.steps) == 3 and result.answer == ""

    @tool
    def slow(seconds: float) -> str:
        """Wait a while."""
        import time

        time.sleep(seconds)
        return "done"

    scripted.replies.clear()
    scripted.replies.extend([step("Wait.", "slow", {"seconds": 0.3})] * 5)
    result = Agent(["slow"], "scripted:x", max_steps=5, max_time=0.2).run("Wait")
    assert result.finish_reason == "time_limit" and len(result.steps) == 1


def test_at_the_step_budget_the_model_answers_once_more_without_tools(scripted):
    """early_stopping_method="generate" (the default), as in LangChain's AgentExecutor."""
    scripted.replies.extend([step("Add.", "calculator", {"expression": "1+1"}), step("Add more.", "calculator", {"expression": "2+2"}),
                             "Thought: I have both.\nFinal Answer: 2 and 4"])  # fmt: skip
    result = Agent(["calculator"], "scripted:x", max_steps=2).run("Add twice")
    assert [s.kind for s in result.steps] == ["action", "action", "final"] and result.steps[-1].index == 3
    assert result.finish_reason == "max_steps" and result.answer == "2 and 4"
    assert scripted.calls[-1][-1]["content"] == "You have no steps left. Give your Final Answer now, from the observations above."
    # a model that writes a call there gets no answer (nothing runs), and force never asks
    scripted.replies.extend([step("Add.", "calculator", {"expression": "1+1"}), step("Add more.", "calculator", {"expression": "2+2"}),
                             step("Once more.", "calculator", {"expression": "3+3"})])  # fmt: skip
    result = Agent(["calculator"], "scripted:x", max_steps=2).run("Add twice")
    assert result.answer == "" and result.steps[-1].kind == "invalid" and result.steps[-1].observation is None
    calls = len(scripted.calls)
    scripted.replies.extend([step("Add.", "calculator", {"expression": "1+1"}), step("Add more.", "calculator", {"expression": "2+2"})])
    assert Agent(["calculator"], "scripted:x", max_steps=2, early_stopping_method="force").run("Add twice").answer == ""
    assert len(scripted.calls) == calls + 2
    with pytest.raises(UsageError, match="'force' or 'generate'"):
        Agent(["calculator"], "scripted:x", early_stopping_method="stop")


def test_a_repeated_call_is_not_run_again_and_the_next_step_answers(scripted):
    runs = []

    @tool
    def lookup(name: str) -> str:
        """Look a name up."""
        runs.append(name)
        return f"{name} is 42"

    scripted.replies.extend([step("Look.", "lookup", {"name": "x"}), step("Look again.", "lookup", {"name": "x"}),
                             "Thought: It is 42.\nFinal Answer: 42"])  # fmt: skip
    result = Agent(["lookup"], "scripted:x", max_steps=5).run("What is x?")
    first, again, final = result.steps
    assert runs == ["x"] and again.repeat_of == 1 and again.kind == "action"
    assert again.observation.startswith("You already called lookup with these arguments in step 1")
    assert final.kind == "final" and result.answer == "42" and result.finish_reason == "final_answer"


def test_an_interrupt_keeps_the_partial_trace(scripted, tmp_path):
    @tool
    def stuck(x: int) -> int:
        """A tool the user interrupts."""
        raise KeyboardInterrupt

    scripted.replies.extend([step("Add.", "calculator", {"expression": "1+1"}), step("Now this.", "stuck", {"x": 1})])
    trace = tmp_path / "run.jsonl"
    with pytest.raises(AgentInterrupted) as caught:
        Agent(["calculator", "stuck"], "scripted:x", trace=trace).run("Do two things")
    partial = caught.value.result
    assert partial.finish_reason == "interrupted" and [s.tool for s in partial.steps] == ["calculator"]
    replayed = replay(trace)  # the live trace has the finished step and the end
    assert replayed.finish_reason == "interrupted" and replayed.steps[0].observation == "2"


def test_callbacks_hear_every_step_and_the_trace_replays(scripted, tmp_path):
    heard = []

    class Listener:
        name = "listener"

        def __getattr__(self, event):
            if event.startswith("on_"):
                return lambda **kw: heard.append(event)
            raise AttributeError(event)

    scripted.replies.extend([step("Compute.", "calculator", {"expression": "6*7"}), "Thought: ok\nFinal Answer: 42"])
    result = Agent(["calculator"], "scripted:x", callbacks=[Listener()]).run("6 times 7?")
    assert heard == [
        "on_agent_start",
        "on_llm_start", "on_llm_new_token", "on_llm_end", "on_agent_action", "on_tool_start", "on_tool_end", "on_agent_step",
        "on_llm_start", "on_llm_new_token", "on_llm_end", "on_agent_step",
        "on_agent_finish",
    ]  # fmt: skip
    path = result.to_jsonl(tmp_path / "trace.jsonl")
    again = replay(path)
    assert (again.answer, again.finish_reason, len(again.steps)) == ("42", "final_answer", 2)
    assert again.steps[0].prompt == result.steps[0].prompt and again.steps[0].raw == result.steps[0].raw


def test_memory_carries_over_per_session(scripted):
    scripted.replies.extend(["Thought: easy\nFinal Answer: Paris", "Thought: from before\nFinal Answer: France"])
    Agent(["calculator"], "scripted:x", memory=True, session="geo", tool_choice="auto").run("Capital of France?")
    Agent(["calculator"], "scripted:x", memory=True, session="geo", tool_choice="auto").run("Which country was that?")
    second = scripted.calls[1]
    assert {"role": "user", "content": "Capital of France?"} in second and {"role": "assistant", "content": "Paris"} in second
    scripted.replies.append("Thought: new\nFinal Answer: ?")
    Agent(["calculator"], "scripted:x", memory=True, session="other", tool_choice="auto").run("Which country was that?")
    assert {"role": "user", "content": "Capital of France?"} not in scripted.calls[2]


def test_tool_choice_makes_the_first_step_call_a_tool(scripted, planets_db):
    # required (the default): an answer from memory at step 1 is turned back, and the run goes on
    scripted.replies.extend([
        "Thought: I remember it.\nFinal Answer: 82",
        step("Look it up.", "sql", {"query": "SELECT moons FROM planets WHERE name = 'Saturn'"}),
        "Thought: I know the answer.\nFinal Answer: 146",
    ])  # fmt: skip
    result = Agent(["sql", "calculator"], "scripted:x", db=planets_db).run("How many moons does Saturn have?")
    assert [s.kind for s in result.steps] == ["rejected", "action", "final"] and result.answer == "146"
    first = result.steps[0]
    assert first.answer == "82" and first.error == "tool_choice: the first step must call a tool"
    assert first.observation == "Call a tool first (sql, calculator), then answer from what it returns, not from memory."
    assert scripted.calls[1][-1]["content"].startswith(f"Observation: {first.observation}\n\n(The question is still: ")
    assert result.malformed_calls == 0  # well formed, only against the rule
    # a tool's name: that tool first; another tool is turned back too
    scripted.replies.extend([step("Compute.", "calculator", {"expression": "1+1"}), step("Look.", "sql", {"query": "SELECT 1"}), "Thought: ok\nFinal Answer: 1"])
    named = Agent(["sql", "calculator"], "scripted:x", db=planets_db, tool_choice={"type": "function", "function": {"name": "sql"}}).run("?")
    assert [s.kind for s in named.steps] == ["rejected", "action", "final"] and "(sql)" in named.steps[0].observation
    # auto: the model may answer at once
    scripted.replies.append("Thought: I know.\nFinal Answer: 146")
    assert [s.kind for s in Agent(["sql"], "scripted:x", db=planets_db, tool_choice="auto").run("?").steps] == ["final"]
    with pytest.raises(UsageError, match="names no tool of this agent \\(calculator\\)"):
        Agent(["calculator"], "scripted:x", tool_choice="sql")


def test_usage_errors():
    with pytest.raises(UsageError, match="at least 1"):
        Agent(["calculator"], "smollm2", max_steps=0)
    with pytest.raises(UsageError, match="No agent mode"):
        Agent(["calculator"], "smollm2", mode="plan")
    with pytest.raises(UsageError, match="Native tool calls need an OpenAI-compatible server"):
        Agent(["calculator"], "smollm2", mode="native")
