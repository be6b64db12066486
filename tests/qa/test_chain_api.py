"""The ``Chain`` API: YAML steps, validation, chains calling chains, parsers with retry."""

from __future__ import annotations

import pytest

from llm_magics import chain as chain_mod
from llm_magics.chain import Chain
from llm_magics.errors import UsageError


@pytest.fixture(autouse=True)
def no_chains():
    chain_mod.clear()
    yield
    chain_mod.clear()


def test_prompt_llm_parser_steps(scripted):
    scripted.enqueue("- apples\n- pears")
    c = Chain.from_yaml(
        """
        - prompt: "List two fruits that grow in {{ place }}."
        - llm: {model: scripted, max_tokens: 20}
        - parser: list
        """,
        "fruits",
    )
    run = c.run(place="{{ not a template }} Normandy")
    assert run.output == ["apples", "pears"]
    assert scripted.calls[0]["messages"][-1]["content"] == "List two fruits that grow in {{ not a template }} Normandy."
    assert scripted.calls[0]["params"].max_tokens == 20
    assert run.variables["text"] == "- apples\n- pears" and run.prompts[0]["step"] == "fruits.2"


def test_retrieve_step_and_mapping_form(scripted, index):
    scripted.enqueue("Rome.")
    c = Chain.from_yaml(
        """
        description: Answer from the documents
        steps:
          - retrieve: {query: "capital of {{ country }}", k: 2}
          - prompt: {template: "Context:\\n{{ context }}\\nWhich city? ", system: "Be brief."}
          - llm: {model: scripted}
            output: city
        """,
        "qa",
    )
    run = c.invoke({"country": "Italy"}, index=index)
    assert index.queries == ["capital of Italy"]
    messages = scripted.calls[0]["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["content"].startswith("Context:\n[1] Rome is the capital of Italy.")
    assert run.output == "Rome." and run.variables["city"] == "Rome."
    assert run.sources[0].source == "italy.pdf"
    assert "italy.pdf" in run._repr_markdown_()


def test_chains_call_other_chains(scripted):
    scripted.enqueue("bonjour", "BONJOUR!")
    Chain.define("translate", "- prompt: 'Translate to French: {{ text }}'\n- llm: {model: scripted}")
    Chain.define("shout", "- chain: {name: translate, inputs: {text: '{{ word }}'}}\n- prompt: 'Shout {{ translate }}'\n- llm: {model: scripted}")
    run = chain_mod.get("shout").run(word="hello")
    assert [c["messages"][-1]["content"] for c in scripted.calls] == ["Translate to French: hello", "Shout bonjour"]
    assert run.output == "BONJOUR!" and len(run.prompts) == 2
    assert chain_mod.names() == ["shout", "translate"]


def test_a_chain_that_calls_itself_is_stopped(scripted):
    Chain.define("loop", "- chain: loop")
    with pytest.raises(UsageError, match="calls itself"):
        chain_mod.get("loop").run()


def test_json_parser_step_retries_with_the_error(scripted):
    scripted.enqueue("{oops", '{"n": 3}')
    c = Chain.from_yaml(
        "- prompt: 'A number as JSON'\n- llm: {model: scripted}\n- parser: {name: json, schema: {type: object, required: [n]}}", "num"
    )
    run = c.run()
    assert run.output == {"n": 3}
    assert scripted.calls[1]["messages"][-1]["content"].startswith("That reply was not valid")
    assert scripted.calls[1]["messages"][-2] == {"role": "assistant", "content": "{oops"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("- promt: hi", "unknown step 'promt'.*Steps: retrieve, prompt, llm, parser, chain"),
        ("- llm: {max_tokens: -1}", "step 1 \\(llm\\).*greater than or equal to 1"),
        ("- prompt: '{{ oops'", "bad template"),
        ("key: [unclosed", "not valid YAML"),
        ("just text", "must be a YAML list"),
        ("[]", "has no steps"),
        ("- llm: {}\n  prompt: x", "one step kind per item"),
    ],
)
def test_bad_definitions_say_what_to_fix(text, message):
    with pytest.raises(UsageError, match=message):
        Chain.from_yaml(text, "bad")


def test_run_time_mistakes_are_usage_errors(scripted):
    with pytest.raises(UsageError, match="No chain 'nope'. Known: \\(none yet\\)"):
        chain_mod.get("nope")
    c = Chain.from_yaml("- prompt: 'Hi {{ name }}'\n- llm: {model: scripted}", "greet")
    with pytest.raises(UsageError, match="Undefined variable.*name"):
        c.run()
    c = Chain.from_yaml("- llm: {model: scripted}", "bare")
    with pytest.raises(UsageError, match="no variable 'prompt'"):
        c.run()


def test_describe_and_listing():
    c = Chain.define("s", "- retrieve: {k: 3}\n- prompt: 'x {{ context }}'\n- llm\n- parser: list")
    assert c.describe().splitlines()[0] == "1. retrieve k=3"
    assert repr(c) == "<Chain 's': retrieve → prompt → llm → parser>"
    rows = chain_mod.listing().rows
    assert rows == [["s", "retrieve → prompt → llm → parser", ""]]
