"""``--format quote``: the answer shown is the passage sentence that says what the model said."""

from __future__ import annotations

import pytest

from llm_magics import ask
from llm_magics.errors import UsageError
from llm_magics.qa.chain_types.base import Numbered
from llm_magics.qa.quote import quote, sentences

HANDBOOK = (
    "# Kestrel Lab handbook\n\n## Getting started\n\n"
    "Welcome to Kestrel Lab. New members receive their access badge from Marta Ruiz,\n"
    "the lab manager, in room B214. Badges are issued on weekdays between 9:00 and 11:00.\n"
    "## Safety\n\nThe training is given by Dr. Ines Okafor on the first Monday of each month."
)
CLUSTER = "Heron is the lab's GPU cluster. It has 8 nodes, and each node has four GPUs with 80 GB of memory each."


def chunks(*texts):
    return [Numbered(i, t, None) for i, t in enumerate(texts, 1)]


def test_sentences_join_wrapped_lines_drop_headers_and_keep_titles_whole():
    assert sentences(HANDBOOK) == [
        "Welcome to Kestrel Lab.",
        "New members receive their access badge from Marta Ruiz, the lab manager, in room B214.",
        "Badges are issued on weekdays between 9:00 and 11:00.",
        "The training is given by Dr. Ines Okafor on the first Monday of each month.",  # not cut after "Dr."
    ]
    assert sentences("- one item\n- another item. Then more\n\n2. two") == ["one item", "another item.", "Then more", "two"]  # no list markers
    long = sentences("word " * 200)[0]
    assert len(long) <= 402 and long.endswith(" …")


def test_a_sentence_that_ends_with_a_colon_is_quoted_with_what_it_introduces():
    manual = "To see the history, run:\n\n    $ kestrel log --all\n\nor, for one file:\n\n    $ kestrel log FILE\n\nLogs are kept for a year."
    assert sentences(manual) == ["To see the history, run: $ kestrel log --all", "or, for one file: $ kestrel log FILE", "Logs are kept for a year."]
    assert sentences("The flags are:") == ["The flags are:"]  # nothing follows: kept as it is
    assert sentences("The flags are:\n\n## Next part\n\nText.") == ["The flags are:", "Text."]  # nor across a header
    text, _ = quote("Run kestrel log --all.", "How do I see the history?", chunks(manual))
    assert text == "To see the history, run: $ kestrel log --all [1]"


def test_the_quote_is_the_sentence_holding_what_the_reply_adds_to_the_question():
    # the reply drops the room, and invents a duty; the quote has the room and nothing invented
    text, number = quote("The badges are issued by the lab manager, Marta Ruiz. She guards the server.",
                         "Who gives out access badges, and where?", chunks(CLUSTER, HANDBOOK))  # fmt: skip
    assert (text, number) == ("New members receive their access badge from Marta Ruiz, the lab manager, in room B214. [2]", 2)
    # "Heron", "GPU" and "cluster" echo the question; "8" is what the reply adds, and it is rare among the sentences
    text, _ = quote("The Heron GPU cluster has 8 nodes.", "How many nodes does the Heron GPU cluster have?", chunks(CLUSTER))
    assert text.startswith("It has 8 nodes")
    # "drills" meets "drill"
    fire = "The fire assembly point is the car park. Fire drills take place twice a year, in March and October."
    assert quote("The drill is in March.", "When is the fire drill?", chunks(fire))[0].startswith("Fire drills take place")


def test_only_the_replys_first_sentence_that_adds_to_the_question_is_matched():
    # the answer comes first; what follows is copied from the neighbouring passage and would outweigh it
    reply = "Dr. Ines Okafor gives it. Badges are issued on weekdays between 9:00 and 11:00 by Marta Ruiz in room B214."
    text, _ = quote(reply, "Who gives the safety training?", chunks(HANDBOOK))
    assert text == "The training is given by Dr. Ines Okafor on the first Monday of each month. [1]"
    # a first sentence that only restates the question is passed over, not matched
    text, _ = quote("The Heron GPU cluster. It has 8 nodes.", "How many nodes does the Heron GPU cluster have?", chunks(CLUSTER))
    assert text.startswith("It has 8 nodes")


def test_a_cited_passage_is_where_the_quote_comes_from_and_i_dont_know_stays():
    both = chunks("Paris is the capital of France.", "Paris, Texas is a small town.")
    assert quote("Paris [2]", "Where is Paris?", both) == ("Paris, Texas is a small town. [2]", 2)
    assert quote("Paris", "Where is Paris?", both) == ("Paris is the capital of France. [1]", 1)  # equals: the better-ranked passage
    assert quote("I don't know.", "Where is Paris?", both) == ("I don't know.", None)
    assert quote("The context does not mention it.", "Where is Paris?", both) == ("The context does not mention it.", None)
    assert quote("Paris", "Where is Paris?", chunks("## Only a header")) == ("Paris", None)


def test_ask_format_quote_shows_the_sentence_and_keeps_the_models_words(scripted, index):
    scripted.enqueue("It is Rome, I think, a city of seven hills.")
    streamed = []
    a = ask("What is the capital of Italy?", index=index, model="scripted", format="quote", stream_to=streamed.append, memory=None)
    assert a.answer == "Rome is the capital of Italy. [1]" and a.grounded
    assert a.extras["generated"] == "It is Rome, I think, a city of seven hills." and a.extras["format"] == "quote"
    assert "".join(streamed) == a.answer  # only the quote reaches the cell
    assert a.sources[0].source == "italy.pdf" and [s.cited for s in a.sources] == [True, False, False]
    assert a._repr_markdown_().startswith("Rome is the capital of Italy. [1]\n")  # its own mark, not written twice
    assert "<p>Rome is the capital of Italy. [1]</p>" in a._repr_html_()


def test_format_quote_needs_the_stuff_chain_and_retrieval(scripted, index):
    with pytest.raises(UsageError, match="--chain-type stuff"):
        ask("Capital of Italy?", index=index, model="scripted", format="quote", chain_type="refine")
    with pytest.raises(UsageError, match="retrieval on"):
        ask("Capital of Italy?", model="scripted", format="quote", retrieval=False)


def test_auto_quotes_questions_on_the_stuff_chain_and_keeps_words_for_long_form_requests():
    from llm_magics.qa.chain_types import get_chain_type
    from llm_magics.qa.quote import auto_format

    stuff, refine = get_chain_type("stuff"), get_chain_type("refine")
    for question in ("Who gives out access badges, and where?", "In which year was R first released?", "How do I check that R works?"):
        assert auto_format(question, stuff) == "quote", question
    for question in ("Summarize the handbook.", "Please explain how backups work", "Why is the sky blue?", "Give me an overview of Git."):
        assert auto_format(question, stuff) == "text", question
    assert auto_format("Who gives out badges?", refine) == auto_format("Who gives out badges?", None) == "text"


def test_ask_format_auto_and_the_format_setting(scripted, index):
    from llm_magics import config

    scripted.enqueue("It is Rome.")
    assert ask("What is the capital of Italy?", index=index, model="scripted", format="auto", memory=None).answer == "Rome is the capital of Italy. [1]"
    scripted.enqueue("Rome is the capital, and the Colosseum stands there.")
    a = ask("Describe Italy's capital.", index=index, model="scripted", format="auto", memory=None)
    assert a.answer == "Rome is the capital, and the Colosseum stands there." and a.extras["format"] == "text"
    settings = config.settings()
    old, settings.format = settings.format, "quote"
    try:
        scripted.enqueue("It is Rome.")
        assert ask("What is the capital of Italy?", index=index, model="scripted", memory=None).extras["format"] == "quote"
    finally:
        settings.format = old
