"""A one-line ``%ask`` that ends with ``?`` asks: the extension's input transformer keeps
IPython's help syntax from taking the question mark (a real shell, ``%load_ext llm_magics``)."""

from __future__ import annotations

from llm_magics.magics import transforms
from llm_magics.qa.answer import Answer

QUESTION = "What does sort_keys do in json.dumps?"


def test_assigned_one_line_ask_keeps_its_question_mark(ip, scripted, index):
    docs = type(index)([("json.dumps with sort_keys=True sorts the keys of dictionaries in the output.", {"source": "json.md"})])
    ip.user_ns["idx"] = docs
    scripted.enqueue("It sorts the keys of the output [1].")
    ip.run_cell(f"r = %ask --index idx --model scripted {QUESTION}").raise_error()
    r = ip.user_ns["r"]
    assert isinstance(r, Answer) and r.question == QUESTION
    assert QUESTION in scripted.calls[0]["messages"][-1]["content"]


def test_bare_one_line_ask_and_an_indented_one(ip, scripted, index):
    ip.user_ns["idx"] = index
    scripted.enqueue("Paris.", "Rome.")
    result = ip.run_cell("%ask --index idx --model scripted What is the capital of France?")
    result.raise_error()
    assert result.result.question == "What is the capital of France?"
    ip.run_cell("if True:\n    a = %ask --index idx --model scripted Where is the Colosseum?\n").raise_error()
    assert ip.user_ns["a"].question == "Where is the Colosseum?"


def test_help_on_the_magic_itself_still_works(ip, capsys):
    ip.run_cell("%ask?").raise_error()
    assert "Answer a question from your ingested documents" in capsys.readouterr().out


def test_the_transformer_rewrites_only_ask_lines():
    t = transforms.ask_question_mark
    assert t(["x = %ask Why?\n"]) == ["x = get_ipython().run_line_magic('ask', 'Why?')\n"]
    assert t(["%ask --k 2 It's what?"]) == ["get_ipython().run_line_magic('ask', \"--k 2 It's what?\")"]
    for same in (["%ask?\n"], ["%ask??"], ["%asked what?"], ["json.dumps?"], ["%%ask\n", "Why?\n"], ["%ask no question mark"]):
        assert t(same) == same


def test_unload_removes_the_transformer(ip):
    manager = ip.input_transformer_manager
    assert transforms.ask_question_mark in manager.line_transforms
    ip.run_cell("%unload_ext llm_magics").raise_error()
    assert transforms.ask_question_mark not in manager.line_transforms
    ip.run_cell("%load_ext llm_magics").raise_error()  # the fixture unloads it again
