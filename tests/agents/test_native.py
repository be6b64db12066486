"""Native tool calls (``tools`` / ``tool_calls``) against llama.cpp's server on loopback, running
SmolLM2 with llama-cpp-python's ``chatml-function-calling`` chat format."""

from __future__ import annotations

import pytest

from llm_magics.agents import Agent

pytestmark = [pytest.mark.slow, pytest.mark.server]


def test_native_tool_call_round_trip(function_calling_server, planets_db):
    from llm_magics.backends import get_model

    backend = get_model("openai:smollm2", base_url=function_calling_server, api_key="none")
    agent = Agent(["calculator", "sql"], backend, db=planets_db, max_steps=2, max_tokens=48,
                  tool_choice={"type": "function", "function": {"name": "calculator"}})  # fmt: skip
    assert agent.policy.mode == "native"  # auto picks native for the openai backend
    result = agent.run("What is 347 multiplied by 29? Use the calculator.")
    first = result.steps[0]
    # the server answered with tool_calls whose arguments fit the calculator's schema (its grammar did that)
    assert first.kind == "action" and first.tool == "calculator", first.raw
    assert set(first.tool_input) == {"expression"} and first.observation
    # the observation went back as a role "tool" message answering that call
    second_prompt = result.steps[1].prompt
    assert second_prompt[-1]["role"] == "tool" and second_prompt[-1]["content"] == first.observation
    assert second_prompt[-2]["tool_calls"][0]["function"]["name"] == "calculator"
    assert result.finish_reason in ("final_answer", "max_steps")
    if result.finish_reason == "max_steps":  # then one more request, without tools, for the answer ("generate")
        last = result.steps[-1]
        assert len(result.steps) == 3 and last.kind == "final" and last.prompt[-1]["content"].startswith("You have no steps left.")
        assert result.answer == last.answer and "tools" not in agent.policy.body(last.prompt, final=True)
    else:
        assert len(result.steps) == 2


def test_default_tool_choice_on_a_server_that_refuses_required(function_calling_server, planets_db):
    """llama-cpp-python's chatml-function-calling asserts tool_choice "auto" or a name: the default
    ("required") goes on the wire as the one tool's name, or as "auto" with the Agent holding the rule."""
    from llm_magics.backends import get_model

    backend = get_model("openai:smollm2", base_url=function_calling_server, api_key="none")
    one = Agent(["calculator"], backend, max_steps=2, max_tokens=48)
    assert one.policy.body([])["tool_choice"] == {"type": "function", "function": {"name": "calculator"}}
    result = one.run("What is 12 times 12?")
    assert result.steps[0].kind == "action" and result.steps[0].tool == "calculator", result.steps[0].raw
    two = Agent(["calculator", "sql"], backend, db=planets_db, max_steps=2, max_tokens=48)
    assert two.policy.body([])["tool_choice"] == "auto"
    result = two.run("How many moons does Saturn have?")  # the server answered (no 500), whatever it chose
    assert result.steps and result.steps[0].kind in ("action", "rejected", "invalid")
    assert result.steps[0].kind != "final"  # an answer before any call is never taken at step 1
