"""``ask`` with the scripted backend: grounding, thresholds, memory, failures, parsers, callbacks."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from llm_magics import ask
from llm_magics.qa import memory, session
from llm_magics.qa.answer import Answer, AskInterrupted
from llm_magics.qa.session import Session
from llm_magics.qa.chain_types import GenerationError
from llm_magics.errors import UsageError


def test_answer_carries_sources_prompts_usage_timings(scripted, index):
    scripted.enqueue("Rome is the capital of Italy.")
    a = ask("What is the capital of Italy?", index=index, model="scripted", format="text")  # --format quote: test_quote.py
    assert isinstance(a, Answer) and str(a) == "Rome is the capital of Italy."
    top = a.sources[0]
    assert (top.number, top.source, top.page, top.start_index, top.chunk_id) == (1, "italy.pdf", 2, 120, "c2")
    assert top.cited and "Colosseum" in top.text and top.score > 0.25
    assert a.prompts[0]["messages"][0]["role"] == "system"
    assert a.prompts[0]["reply"] == "Rome is the capital of Italy."
    assert a.usage.completion_tokens == 6 and a.usage.extra["calls"] == 1
    for key in ("retrieval", "llm", "first_token", "answer_first_token", "total", "overhead"):
        assert key in a.timings, key
    assert a.timings["total"] >= a.timings["llm"]
    assert a.model == "scripted:scripted-1"
    md = a._repr_markdown_()
    assert md.startswith("Rome is the capital of Italy. [1]") and "`italy.pdf, p. 2, chars 120+`" in md
    assert "<code>italy.pdf, p. 2, chars 120+</code>" in a._repr_html_()
    assert session.current().last is a


def test_nothing_relevant_says_so_without_calling_the_model(scripted, index):
    a = ask("Who won the football world cup?", index=index, model="scripted")
    assert not a.grounded and scripted.calls == []
    assert "could not find" in a.answer.lower()
    assert "threshold" in a.note and "%ingest" in a.note
    assert a.sources == []


def test_threshold_comes_from_settings(scripted, index, fresh_state):
    fresh_state.score_threshold = 0.0
    scripted.enqueue("Paris is the capital of France.")
    a = ask("Who won the football world cup?", index=index, model="scripted")
    assert len(scripted.calls) == 1 and a.sources


def test_an_answer_not_from_the_sources_is_flagged(scripted, index):
    scripted.enqueue("Madrid hosts the annual bullfighting festival with flamenco dancers.")
    a = ask("What is the capital of France?", index=index, model="scripted")
    assert not a.grounded
    assert "do not seem to answer" in a.answer and "Madrid" in a.raw
    assert "not from them" in a.note


def test_a_model_that_does_not_know_is_reported(scripted, index):
    scripted.enqueue("I don't know.")
    a = ask("What is the capital of France?", index=index, model="scripted")
    assert not a.grounded and "sources do not answer" in a.note


def test_braces_and_format_strings_in_the_question_are_safe(scripted, index):
    scripted.enqueue("Paris is the capital of France.")
    q = "What is {the} capital of France? {'a': 1} f'{x}' {0} %s"
    a = ask(q, index=index, model="scripted")
    assert q in scripted.calls[0]["messages"][-1]["content"] and a.grounded


def test_memory_follow_up_sees_the_previous_turn(scripted, index):
    scripted.enqueue("Paris is the capital of France.", "The Eiffel tower stands in Paris.")
    ask("What is the capital of France?", index=index, model="scripted", format="text")
    a = ask("What tower stands in that city?", index=index, model="scripted", format="text")
    messages = scripted.calls[1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Paris is the capital of France."
    assert a.sources[0].source == "france.txt"
    assert len(session.current().memory(Session.key(None, "docs"))) == 2


def test_follow_up_retrieval_uses_the_last_question(scripted, index):
    scripted.enqueue("Rome is the capital of Italy.", "The Colosseum is in Rome.", "Berlin is the capital of Germany.")
    ask("What is the capital of Italy?", index=index, model="scripted")
    a = ask("And its famous arena?", index=index, model="scripted")  # no word in common with any chunk
    assert index.queries[-2:] == ["And its famous arena?", "What is the capital of Italy? And its famous arena?"]
    assert a.sources[0].source == "italy.pdf" and a.extras["retrieval_query"].startswith("What is the capital of Italy?")
    b = ask("What is the capital city of Germany?", index=index, model="scripted")  # a new topic keeps its own hits
    assert b.sources[0].source == "germany.txt" and "retrieval_query" not in b.extras


def test_memory_is_per_session_and_reset(scripted, index):
    scripted.enqueue("Paris is the capital of France.", "Berlin is the capital of Germany.")
    ask("What is the capital of France?", index=index, model="scripted", session="a")
    ask("What is the capital of Germany?", index=index, model="scripted", session="b")
    assert [m["role"] for m in scripted.calls[1]["messages"]] == ["system", "user"]
    assert session.current().forget(session="a") == 1
    assert len(session.current().memory(Session.key("a"))) == 0
    assert len(session.current().memory(Session.key("b"))) == 1


def test_no_history_neither_reads_nor_writes(scripted, index):
    scripted.enqueue("Paris is the capital of France.", "Paris is the capital of France.")
    ask("What is the capital of France?", index=index, model="scripted", memory=None)
    ask("What is the capital of France?", index=index, model="scripted")
    assert [m["role"] for m in scripted.calls[1]["messages"]] == ["system", "user"]


def test_backend_error_is_one_line_and_memory_is_untouched(scripted, index):
    scripted.enqueue("Paris is the capital of France.", ConnectionError("server went away\nlong traceback text"))
    ask("What is the capital of France?", index=index, model="scripted")
    with pytest.raises(GenerationError) as e:
        ask("What is the capital of Germany?", index=index, model="scripted")
    assert str(e.value) == "Model scripted:scripted-1 failed in step 'stuff': ConnectionError: server went away"
    assert len(session.current().memory(Session.key(None, "docs"))) == 1


def test_interrupt_keeps_what_was_produced_and_skips_memory(scripted, index):
    scripted.interrupt_after = 3
    scripted.enqueue("Paris is the capital of France.")
    seen = []
    with pytest.raises(AskInterrupted) as e:
        ask("What is the capital of France?", index=index, model="scripted", stream_to=seen.append, format="text")
    a = e.value.answer
    assert isinstance(e.value, KeyboardInterrupt)
    assert a.interrupted and a.answer == "Paris is the " == "".join(seen)
    assert a.usage.finish_reason == "interrupted"
    assert "Interrupted" in a._repr_markdown_()
    assert len(session.current().memory(Session.key(None, "docs"))) == 0


def test_stream_to_receives_only_the_final_answer(scripted, index):
    scripted.enqueue("Paris is the capital of France.", "NONE", "NONE", "The capital is Paris.")
    seen = []
    ask("What is the capital of France?", index=index, model="scripted", chain_type="map_reduce", k=3, stream_to=seen.append)
    assert "".join(seen) == "The capital is Paris."


def test_no_retrieval_asks_the_model_alone(scripted, index):
    scripted.enqueue("Hello there.")
    a = ask("Say hello", index=index, model="scripted", retrieval=False)
    assert a.answer == "Hello there." and a.sources == [] and index.queries == []
    assert a.chain_type is None


class City(BaseModel):
    city: str
    country: str


def test_json_with_pydantic_retries_with_the_error(scripted, index):
    scripted.enqueue('{"city": "Paris"}', 'Here: {"city": "Paris", "country": "France"}')
    a = ask("Capital of France as JSON?", index=index, model="scripted", format="json", schema=City)
    assert a.parsed == City(city="Paris", country="France")
    assert a.extras["retries"] == 1 and a.parse_error is None
    retry = scripted.calls[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"city": "Paris"}'}
    assert "country" in retry[-1]["content"] and "Field required" in retry[-1]["content"]
    first_user = scripted.calls[0]["messages"][-1]["content"]
    assert '"country"' in first_user  # the schema is in the instructions


def test_json_schema_gives_up_after_bounded_retries(scripted, index):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    scripted.enqueue("not json", '{"n": "x"}', '{"n": 1')
    a = ask("capital of France as a number?", index=index, model="scripted", format="json", schema=schema)
    assert a.parsed is None and len(scripted.calls) == 3
    assert "not valid JSON" in a.parse_error
    assert "Could not parse" in a._repr_markdown_()


def test_list_and_regex_parsers(scripted, index):
    scripted.enqueue("- Paris\n- Berlin\n- Rome", "The answer is 42 today")
    a = ask("capital cities?", index=index, model="scripted", format="list")
    assert a.parsed == ["Paris", "Berlin", "Rome"]
    from llm_magics.qa.parsers import get_parser

    b = ask("capital number?", index=index, model="scripted", format=get_parser("regex", pattern=r"is (?P<n>\d+)"))
    assert b.parsed == {"n": "42"}


def test_schema_without_json_is_a_usage_error(scripted, index):
    with pytest.raises(UsageError, match="--format json"):
        ask("q?", index=index, model="scripted", schema={"type": "object"})


def test_bad_settings_and_arguments_are_usage_errors(scripted, index):
    with pytest.raises(UsageError, match="Ask a question"):
        ask("  ", index=index, model="scripted")
    with pytest.raises(UsageError, match="--k must be"):
        ask("capital?", index=index, model="scripted", k=0)
    with pytest.raises(UsageError, match="No output parser 'yaml'"):
        ask("capital?", index=index, model="scripted", format="yaml")


def test_compare_runs_each_chain_type_on_the_same_hits(scripted, index):
    from llm_magics.qa.pipeline import compare

    scripted.default_reply = "Paris is the capital of France."
    c = compare("What is the capital of France?", ["stuff", "refine", "map_reduce", "map_rerank"], index=index, model="scripted", k=2)
    assert list(c.answers) == ["stuff", "refine", "map_reduce", "map_rerank"]
    assert len(index.queries) == 1  # one retrieval for all
    assert all([s.source for s in a.sources] == ["france.txt", "germany.txt"] for a in c.answers.values())
    html = c._repr_html_()
    assert html.count("llm-magics-answer") == 4 and "map_rerank" in html


def test_trace_callback_writes_jsonl(scripted, index, fresh_state, tmp_path):
    fresh_state.trace_path = str(tmp_path / "trace.jsonl")
    scripted.enqueue("Paris is the capital of France.")
    ask("What is the capital of France?", index=index, model="scripted")
    events = [json.loads(line) for line in open(fresh_state.trace_path)]
    kinds = [e["event"] for e in events]
    assert kinds == ["chain_start", "retriever_start", "retriever_end", "llm_start", "llm_end", "chain_end"]
    start = events[3]
    assert start["model"] == "scripted:scripted-1" and start["params"]["temperature"] == 0.0
    assert "What is the capital of France?" in start["messages"][-1]["content"]
    assert events[4]["text"] == "Paris is the capital of France."
    assert events[2]["hits"][0]["metadata"]["source"] == "france.txt"


def test_callbacks_hear_every_event_and_a_broken_one_is_isolated(scripted, index, caplog):
    from llm_magics.qa.callbacks import CallbackHandler, CallbackManager

    class Recorder(CallbackHandler):
        name = "recorder"

        def __init__(self):
            super().__init__()
            self.events = []

        def __getattribute__(self, attr):
            if attr.startswith("on_"):
                return lambda **kw: object.__getattribute__(self, "events").append((attr, kw.get("step") or kw.get("name")))
            return object.__getattribute__(self, attr)

    class Broken(CallbackHandler):
        name = "broken"

        def on_llm_new_token(self, **kw):
            raise RuntimeError("boom")

    rec = Recorder()
    manager = CallbackManager.for_run([rec, Broken(), "logging"])
    scripted.enqueue("Paris is the capital.")
    a = ask("What is the capital of France?", index=index, model="scripted", callbacks=manager, format="text")
    names = [e[0] for e in rec.events]
    assert names[0] == "on_chain_start" and names[-1] == "on_chain_end"
    for event in ("on_retriever_start", "on_retriever_end", "on_llm_start", "on_llm_new_token", "on_llm_end"):
        assert event in names
    assert names.count("on_llm_new_token") == 4
    assert a.answer == "Paris is the capital." and manager.errors[0][:2] == ("broken", "on_llm_new_token")
    scripted.enqueue(RuntimeError("down"))
    with pytest.raises(GenerationError):
        ask("What is the capital of France?", index=index, model="scripted", callbacks=[rec])
    assert ("on_llm_error", "stuff") in rec.events


def test_window_and_summary_memory(scripted):
    from llm_magics.qa.chain_types import LLM
    from llm_magics.backends import get_model
    from llm_magics.backends.base import GenerationParams

    w = memory.WindowMemory(k=2)
    for i in range(4):
        w.save(f"q{i}", f"a{i}")
    assert [m["content"] for m in w.messages()] == ["q2", "a2", "q3", "a3"]

    b = memory.BufferMemory(max_tokens=10)
    b.save("q" * 20, "a" * 8)  # 7 tokens
    b.save("x" * 8, "y" * 8)  # 4 tokens
    assert [m["content"] for m in b.messages()] == ["x" * 8, "y" * 8]

    llm = LLM(get_model("scripted"), GenerationParams(max_tokens=30))
    scripted.enqueue("They talked about Paris and Berlin.")
    s = memory.SummaryMemory(max_tokens=10, keep_turns=1)
    s.save("What is the capital of France?", "Paris.", llm)
    s.save("And of Germany?", "Berlin.", llm)
    assert s.summary.startswith("They talked about") and len(s.turns) == 1  # cut to half the budget
    assert llm.prompts[0]["step"] == "summarize memory"
    assert "capital of France" in llm.prompts[0]["messages"][-1]["content"]
    msgs = s.messages()
    assert "Summary of our conversation so far" in msgs[0]["content"] and msgs[-1]["content"] == "Berlin."


def test_memory_kind_follows_settings(fresh_state):
    fresh_state.memory = "window"
    assert isinstance(session.current().memory("session:x"), memory.WindowMemory)
    fresh_state.memory = "none"
    assert session.current().memory("session:y") is None
    fresh_state.memory = "nonsense"
    with pytest.raises(UsageError, match="buffer, window, summary, none"):
        session.current().memory("session:z")


def test_json_parser_skips_an_echoed_example_and_shows_an_example_to_the_model():
    from llm_magics.qa.parsers import get_parser

    p = get_parser("json", schema=City)
    assert p.instructions().startswith('Reply with only a JSON object shaped like {"city": "...", "country": "..."}')
    echoed = 'Like {"city": "..."} so: ```json\n{"city": "Paris", "country": "France"}\n```'
    assert p.parse(echoed) == City(city="Paris", country="France")


def test_small_model_stop_sequence_is_passed(scripted, index):
    scripted.enqueue("Paris is the capital of France.")
    ask("What is the capital of France?", index=index, model="scripted")
    assert "\nQuestion:" in scripted.calls[0]["params"].stop


def test_session_reset_forgets_memories_and_the_last_answer(scripted, index):
    scripted.enqueue("Paris is the capital of France.")
    a = ask("What is the capital of France?", index=index, model="scripted")
    current = session.current()
    assert current.last is a and len(current.memory(Session.key(None, "docs"))) == 1
    assert Session.key(index=index) == "collection:docs" and Session.key("s", "docs") == "session:s"
    assert current.reset() == 1
    assert current.last is None and current.memories() == {}
