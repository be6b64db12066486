"""Chain types, output parsers and callbacks are plugins: third-party ones work like built-ins."""

from __future__ import annotations

import pytest

from llm_magics import ask, catalog, plugins
from llm_magics.qa.chain_types import ChainResult, ChainType
from llm_magics.qa.callbacks import CallbackHandler
from llm_magics.hookspecs import hookimpl
from llm_magics.qa.parsers import OutputParser, OutputParserError


class FirstHitOnly(ChainType):
    """Answer from the best chunk alone."""

    name = "first_hit"

    def run(self, question, hits, llm, *, history=(), instructions=""):
        answer = llm.generate(f"{hits[0].text}\nQ: {question}", step="first", history=history, final=True)
        return ChainResult(answer, hits[:1], dropped=list(hits[1:]))


class YesNo(OutputParser):
    """yes/no as a bool."""

    name = "yesno"
    retries = 1

    def instructions(self):
        return "Reply yes or no."

    def parse(self, text):
        word = text.strip().lower().rstrip(".")
        if word not in ("yes", "no"):
            raise OutputParserError(f"{text!r} is neither yes nor no.")
        return word == "yes"


class Counter(CallbackHandler):
    name = "token_counter"
    seen: list = []

    def on_llm_new_token(self, token, **kwargs):
        Counter.seen.append(token)


class ThirdParty:
    @hookimpl
    def register_chain_types(self, register):
        register(FirstHitOnly)

    @hookimpl
    def register_output_parsers(self, register):
        register(YesNo)

    @hookimpl
    def register_callbacks(self, register):
        register(Counter)


@pytest.fixture
def third_party():
    name = plugins.register(ThirdParty(), "test-third-party")
    try:
        yield
    finally:
        plugins.unregister(name)


def test_builtins_are_listed_with_their_plugin():
    rows = {r[0]: r[2] for r in catalog.listing("chain-types").rows}
    assert rows == {n: "llm_magics.qa.chain_types.builtin" for n in ("map_reduce", "map_rerank", "refine", "stuff")}
    assert {r[0] for r in catalog.listing("parsers").rows} >= {"text", "markdown", "json", "list", "regex"}
    assert {r[0] for r in catalog.listing("callbacks").rows} >= {"logging", "timing", "trace"}


def test_a_plugin_chain_type_parser_and_callback(third_party, scripted, index, fresh_state):
    fresh_state.callbacks = ["token_counter"]  # switched on by name
    Counter.seen = []
    scripted.enqueue("Maybe.", "Yes.")
    a = ask("Is Paris the capital of France?", index=index, model="scripted", chain_type="first_hit", format="yesno", k=2)
    assert a.chain_type == "first_hit" and a.parsed is True and a.extras["retries"] == 1
    assert [s.source for s in a.sources] == ["france.txt"] and len(a.dropped) == 1
    assert "".join(Counter.seen) == "Maybe.Yes."


def test_unknown_callback_name_is_a_usage_error(scripted, index, fresh_state):
    from llm_magics.errors import UsageError

    fresh_state.callbacks = ["nope"]
    with pytest.raises(UsageError, match="No callback 'nope'. Known: logging, timing, trace"):
        ask("capital of France?", index=index, model="scripted")
