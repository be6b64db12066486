"""Constrained decoding on the real SmolLM2-135M: the grammar holds every step to a well-formed call."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch

from llm_magics.agents import Agent
from llm_magics.agents.react import parse_step, step_grammar

pytestmark = pytest.mark.slow


def test_json_schema_constraint_makes_the_small_model_emit_valid_json(smollm2_backend):
    from llm_magics.runtime.grammar import GrammarConstraint

    lm = smollm2_backend.runtime_model
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
              "required": ["city", "days"], "additionalProperties": False}  # fmt: skip
    constraint = GrammarConstraint.from_json_schema(lm.tokenizer, schema)
    text = lm.generate(lm.chat_prompt("Weather in Oslo for three days, as JSON."), max_new_tokens=40, logits_processor=constraint, stop_on_loop=False)
    jsonschema.validate(json.loads(text), schema)
    assert constraint.done and constraint.steps >= 5
    # without the constraint the same model does not produce that object
    free = lm.generate(lm.chat_prompt("Weather in Oslo for three days, as JSON."), max_new_tokens=40)
    with pytest.raises((json.JSONDecodeError, jsonschema.ValidationError)):
        jsonschema.validate(json.loads(free), schema)


def test_constrained_agent_steps_are_always_well_formed(smollm2_backend, planets_db):
    agent = Agent(["calculator", "sql"], smollm2_backend, db=planets_db, max_steps=2, max_tokens=64)
    assert agent.policy.mode == "react+grammar" and "call1" in step_grammar(agent.tools)
    result = agent.run("How many moons does Saturn have?")
    assert result.steps and result.malformed_calls == 0
    for step in result.steps:
        parsed = parse_step(step.raw)
        assert parsed.error is None and step.constrained
        if step.kind == "action":
            assert parsed.tool in ("calculator", "sql") and isinstance(parsed.tool_input, dict)
            agent.tool_map[parsed.tool].validate(parsed.tool_input)  # the arguments fit the schema


def test_tool_choice_is_held_by_the_first_steps_grammar(smollm2_backend, planets_db):
    from llm_magics.runtime.grammar import GrammarConstraint, GrammarError

    lm = smollm2_backend.runtime_model
    answer = "Thought: I remember it.\nFinal Answer: 146"
    call = 'Thought: Look it up.\nAction: sql\nAction Input: {"query": "SELECT moons FROM planets"}'

    def fits(grammar: str, text: str) -> bool:
        constraint, ids = GrammarConstraint.from_lark(lm.tokenizer, grammar), lm.tokenizer.encode(text)
        logits = torch.zeros(lm.config.vocab_size)
        try:
            for n in range(len(ids) + 1):
                constraint(ids[:n], logits)
        except GrammarError:
            return False
        return True

    for choice, first_answers, first_sql in (("auto", True, True), ("required", False, True), ("calculator", False, False)):
        policy = Agent(["calculator", "sql"], smollm2_backend, db=planets_db, tool_choice=choice).policy
        assert fits(policy.grammar, answer) and fits(policy.grammar, call)  # later steps are free
        assert fits(policy.first_grammar, answer) is first_answers and fits(policy.first_grammar, call) is first_sql
    result = Agent(["calculator", "sql"], smollm2_backend, db=planets_db, max_steps=1, max_tokens=64).run("Say hello.")
    assert result.steps[0].kind == "action"  # the grammar gave it no other way (no "rejected" step)


def test_ask_json_format_is_decoded_under_the_schema_on_the_local_model(smollm2_backend):
    from llm_magics import ask

    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 40}}, "required": ["name"], "additionalProperties": False}
    a = ask("Who painted the Mona Lisa? Reply with the painter's name.", model=smollm2_backend, retrieval=False,
            format="json", schema=schema, max_tokens=40, memory=None)  # fmt: skip
    assert a.parse_error is None and set(a.parsed) == {"name"} and a.parsed["name"].strip()
    assert not a.extras.get("retries")  # valid on the first try: the grammar allowed nothing else
