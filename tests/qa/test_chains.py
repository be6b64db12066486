"""Chain types with the scripted backend: prompts, budgets, dropping, collapse, reranking."""

from __future__ import annotations

import pytest

from llm_magics import ask
from llm_magics.qa.chain_types.builtin import parse_score
from llm_magics.ingest.documents import Hit


def test_stuff_puts_every_chunk_in_one_prompt_numbered(scripted, index):
    scripted.enqueue("Paris is the capital of France.")
    a = ask("What is the capital of France?", index=index, model="scripted", k=3, format="text")
    assert a.chain_type == "stuff"
    assert len(scripted.calls) == 1
    system, user = scripted.calls[0]["messages"]  # RetrievalQA's layout: the passages in the system message
    assert system["role"] == "system" and "[1] Paris is the capital" in system["content"] and "don't know" in system["content"]
    assert user == {"role": "user", "content": "What is the capital of France?"}
    assert a.sources[0].source == "france.txt" and a.sources[0].cited
    assert a.answer == "Paris is the capital of France."
    assert a.grounded and a.dropped == []


def test_stuff_can_put_the_passages_in_the_users_turn(scripted, index):
    from llm_magics.qa.chain_types import get_chain_type, prompts
    from llm_magics.qa.chain_types.base import LLM
    from llm_magics.backends import GenerationParams, get_model

    scripted.enqueue("Paris is the capital of France.")
    llm = LLM(get_model("scripted"), GenerationParams(max_tokens=32))
    result = get_chain_type("stuff", context="user").run("What is the capital of France?", index.search("capital of France", k=3), llm)
    system, user = result.final_messages
    assert system["content"] == prompts.SYSTEM and "[1] Paris is the capital" in user["content"]
    assert user["content"].rstrip().endswith("Answer the question using the context.")


def test_stuff_packs_what_fits_and_reports_the_dropped(scripted):
    long = "word " * 300  # ~375 tokens at 4 characters a token
    hits = [Hit("Paris is the capital of France. " + long, 0.9, {"source": "a.txt"}),
            Hit("Lyon is a city in France. " + long, 0.8, {"source": "b.txt"}),
            Hit("Nice is in France too.", 0.7, {"source": "c.txt"})]
    scripted.window = 700
    scripted.enqueue("Paris is the capital of France.")
    a = ask("capital of France?", hits=hits, model="scripted", max_tokens=64, memory=None)
    assert [s.source for s in a.sources] == ["a.txt", "c.txt"]  # b.txt no longer fits; the small c.txt does
    assert [s.source for s in a.dropped] == ["b.txt"]
    context = scripted.calls[0]["messages"][0]["content"]
    assert "[2] Nice is in France" in context and "Lyon" not in context
    assert "did not fit the context window" in a._repr_markdown_()


def test_stuff_cuts_a_single_chunk_that_is_too_long(scripted):
    hits = [Hit("Paris is the capital. " + "blah " * 2000, 0.9, {"source": "a.txt"})]
    scripted.window = 400
    scripted.enqueue("Paris is the capital.")
    a = ask("capital?", hits=hits, model="scripted", max_tokens=32, memory=None)
    prompt = scripted.calls[0]["messages"][0]["content"]
    assert len(prompt) < 400 * 4 and "Paris is the capital" in prompt
    assert a.extras["truncated"] == 1


def test_refine_answers_from_the_first_chunk_then_improves(scripted, index):
    scripted.enqueue("Paris is the capital of France.", "Paris is the capital of France, home of the Eiffel tower.", "")
    a = ask("What is the capital of France?", index=index, model="scripted", chain_type="refine", k=3)
    steps = [p["step"] for p in a.prompts]
    assert steps == ["refine 1/3", "refine 2/3", "refine 3/3"]
    second = scripted.calls[1]["messages"][-1]["content"]
    assert "Current answer: Paris is the capital of France." in second and "[2]" in second
    # an empty last refinement keeps the answer so far
    assert a.answer == "Paris is the capital of France, home of the Eiffel tower."
    assert len(a.sources) == 3


def test_map_reduce_maps_each_chunk_then_reduces_with_labels(scripted, index):
    scripted.enqueue("Paris is the capital of France.", "NONE", "The capital of France is not mentioned.", "The capital of France is Paris.")
    a = ask("What is the capital of France?", index=index, model="scripted", chain_type="map_reduce", k=3)
    assert [p["step"] for p in a.prompts] == ["map 1/3", "map 2/3", "map 3/3", "reduce"]
    reduce_prompt = scripted.calls[-1]["messages"][-1]["content"]
    assert "[1] Paris is the capital of France." in reduce_prompt and "NONE" not in reduce_prompt
    assert "[2]" not in reduce_prompt and "[3]" not in reduce_prompt  # "NONE" and "not mentioned" are dropped
    assert a.answer == "The capital of France is Paris." and a.sources[0].cited


def test_map_reduce_collapses_repeatedly_until_the_notes_fit(scripted):
    hits = [Hit(f"Fact {i}: the capital of France is Paris.", 0.9 - i / 100, {"source": f"{i}.txt"}) for i in range(6)]
    scripted.window = 450
    long_note = "Paris is the capital of France and " + "a very long note " * 25  # ~110 tokens each

    def collapse(messages):  # each collapse returns something still long until the third round
        return long_note if collapse.n < 4 else "Paris."

    collapse.n = 0

    def reply(messages):
        text = messages[-1]["content"]
        if text.startswith("Notes:") and "Shorten" in text:
            collapse.n += 1
            return collapse(messages)
        if text.startswith("Notes:"):
            return "Paris is the capital of France."
        return long_note

    scripted.default_reply = ""
    scripted.queue.extend([reply] * 30)
    a = ask("capital of France?", hits=hits, model="scripted", chain_type="map_reduce", max_tokens=64, memory=None)
    steps = [p["step"] for p in a.prompts]
    assert steps[:6] == [f"map {i}/6" for i in range(1, 7)]
    assert a.extras["collapse_rounds"] >= 2, steps
    assert steps[-1] == "reduce"
    reduce_prompt = a.prompts[-1]["messages"][-1]["content"]
    for call in scripted.calls:  # no prompt ever overflowed the window
        assert sum(len(m["content"]) // 4 for m in call["messages"]) + 64 <= 450
    assert "[1]" in reduce_prompt  # collapsed notes keep their chunk numbers


def test_map_rerank_returns_the_best_scored_answer(scripted, index):
    scripted.enqueue("Paris.\nScore: 40", "Berlin is the capital of Germany.\nScore: 90", "Rome.\nScore: 10")
    a = ask("What is the capital of Germany?", index=index, model="scripted", chain_type="map_rerank", k=3)
    assert a.answer == "Berlin is the capital of Germany."
    germany = next(s for s in a.sources if s.source == "germany.txt")
    assert germany.cited
    assert [s["score"] for s in a.extras["scores"]] == [40, 90, 10] or sorted(s["score"] for s in a.extras["scores"]) == [10, 40, 90]
    assert a.extras["score_fallback"] is False


def test_map_rerank_falls_back_to_retrieval_order_without_scores(scripted, index):
    scripted.enqueue("Berlin is the capital of Germany.", "I think so", "maybe")
    a = ask("What is the capital of Germany?", index=index, model="scripted", chain_type="map_rerank", k=3)
    assert a.extras["score_fallback"] is True
    assert a.answer == "Berlin is the capital of Germany."
    assert a.sources[0].source == "germany.txt" and a.sources[0].cited


@pytest.mark.parametrize(
    "text, answer, score",
    [("Paris.\nScore: 85", "Paris.", 85), ("Paris.\n**Score:** 7/100", "Paris.", 7), ("Paris. Score 120", "Paris. Score 120", None),
     ("Paris.\nscore = 55%", "Paris.", 55), ("no idea", "no idea", None)],
)
def test_parse_score(text, answer, score):
    assert parse_score(text) == (answer, score)


def test_unknown_chain_type_names_the_known_ones(scripted, index):
    from llm_magics.errors import UsageError

    with pytest.raises(UsageError, match="map_rerank.*refine.*stuff"):
        ask("q?", index=index, model="scripted", chain_type="stuf")
