"""``%%ask`` and ``%chain`` in a real IPython shell, with the scripted backend."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.interactiveshell import InteractiveShell

from llm_magics import chain as chain_mod
from llm_magics.qa.answer import Answer, Comparison
from llm_magics.magics.ask import AskMagics
from llm_magics.magics.chain import ChainMagics


@pytest.fixture
def shell(index, monkeypatch):
    """A real shell with the ask and chain magics; ``idx`` is the test index in its namespace.

    ``shell.shown`` records what was published to the display (and its update flags).
    """
    sh = InteractiveShell.instance()
    sh.register_magics(AskMagics(sh), ChainMagics(sh))
    sh.user_ns["idx"] = index
    chain_mod.clear()
    shown = []
    monkeypatch.setattr(sh.display_pub, "publish", lambda data, metadata=None, **kw: shown.append((data, kw)))
    monkeypatch.setattr(sh, "shown", shown, raising=False)
    yield sh
    chain_mod.clear()


def run(sh, cell):
    result = sh.run_cell(cell)
    result.raise_error()
    return result.result


def test_cell_magic_streams_and_returns_the_answer(shell, scripted, monkeypatch):
    from llm_magics.magics.ask import StreamDisplay

    monkeypatch.setattr(StreamDisplay, "interval", 0.0)  # show every piece
    scripted.enqueue("Paris is the capital of France.")
    a = run(shell, "%%ask --index idx -o ans --model scripted --format text\nWhat is the capital of France?")
    assert isinstance(a, Answer) and shell.user_ns["ans"] is a
    assert a.sources[0].source == "france.txt"
    # the display handle was created, updated with the streamed text, then cleared
    updates = [d for d, kw in shell.shown if kw.get("update") or kw.get("transient")]
    texts = [d.get("text/markdown", "") for d, kw in shell.shown]
    assert texts[:3] == ["*…*", "*retrieving…*", "*stuff…*"]
    assert "Paris ▌" in texts and "Paris is the capital of France.▌" in texts
    assert updates and shell.shown[-1][0].get("text/html") == ""  # cleared: the Answer shows as the result


def test_cell_magic_shows_a_quote_by_default_for_a_question(shell, scripted):
    scripted.enqueue("It is Paris, I believe.")
    a = run(shell, "%%ask --index idx -o ans --model scripted\nWhat is the capital of France?")
    assert a.answer == "Paris is the capital of France. [1]" and a.raw == "It is Paris, I believe." and a.extras["format"] == "quote"
    scripted.enqueue("France's capital is Paris.")
    assert run(shell, "%%ask --index idx --model scripted\nSummarize what you know about France.").extras["format"] == "text"


def test_interpolation_from_the_namespace(shell, scripted):
    shell.user_ns["country"] = "France"
    shell.user_ns["d"] = {"a": 1}
    scripted.enqueue("Paris is the capital of France.")
    run(shell, "%%ask --index idx --model scripted\nWhat is the capital of {{ country }}? {'a': 1} f'{x}'")
    assert "What is the capital of France? {'a': 1} f'{x}'" in scripted.calls[0]["messages"][-1]["content"]


def test_no_interpolate_and_undefined_variables(shell, scripted):
    scripted.enqueue("Paris is the capital of France.")
    run(shell, "%%ask --index idx --model scripted --no-interpolate\nWhat is the capital of {{ France }}?")
    assert "{{ France }}" in scripted.calls[0]["messages"][-1]["content"]
    with pytest.raises(IPythonUsageError, match="Undefined variable.*--no-interpolate"):
        run(shell, "%%ask --index idx --model scripted\nWhat about {{ nowhere }}?")


def test_line_magic_and_reset(shell, scripted, capsys):
    scripted.enqueue("Paris is the capital of France.", "Paris is the capital of France.")
    run(shell, "%ask --index idx --model scripted What's the capital of France")
    run(shell, "%ask --index idx --model scripted --reset")
    assert "memory cleared" in capsys.readouterr().out
    run(shell, "%ask --index idx --model scripted What's the capital of France")
    assert [m["role"] for m in scripted.calls[1]["messages"]] == ["system", "user"]


def test_backend_failure_is_one_line(shell, scripted):
    scripted.enqueue(TimeoutError("read timed out"))
    with pytest.raises(IPythonUsageError, match="^Model scripted:scripted-1 failed in step 'stuff': TimeoutError: read timed out$"):
        run(shell, "%%ask --index idx --model scripted\nWhat is the capital of France?")


def test_interrupt_returns_the_partial_answer(shell, scripted):
    scripted.interrupt_after = 2
    scripted.enqueue("Paris is the capital of France.")
    a = run(shell, "%%ask --index idx --model scripted -o part\nWhat is the capital of France?")
    assert a.interrupted and a.answer == "Paris is " and shell.user_ns["part"] is a


def test_compare_shows_chain_types_side_by_side(shell, scripted):
    scripted.default_reply = "Paris is the capital of France."
    c = run(shell, "%%ask --index idx --model scripted --compare stuff,map_rerank\nWhat is the capital of France?")
    assert isinstance(c, Comparison) and list(c.answers) == ["stuff", "map_rerank"]


def test_mistakes_are_one_line_usage_errors(shell, scripted):
    with pytest.raises(IPythonUsageError, match="no variable 'nope'"):
        run(shell, "%%ask --index nope\nq?")
    with pytest.raises(IPythonUsageError, match="Put the question in the cell body"):
        run(shell, "%%ask --index idx what\nq?")
    with pytest.raises(IPythonUsageError, match="No chain type 'stuf'"):
        run(shell, "%%ask --index idx --model scripted --chain-type stuf\nWhat is the capital of France?")


def test_json_format_with_schema_variable(shell, scripted):
    shell.user_ns["schema"] = {"type": "object", "required": ["city"]}
    scripted.enqueue('{"city": "Paris"}')
    a = run(shell, "%%ask --index idx --model scripted --format json --schema schema\nCapital of France?")
    assert a.parsed == {"city": "Paris"}


def test_help_lists_the_options(shell):
    doc = AskMagics.ask.__doc__
    for flag in ("--chain-type", "--no-history", "--no-retrieval", "--no-interpolate", "--compare", "--session", "--reset", "--schema"):
        assert flag in doc


def test_chain_define_run_list_show(shell, scripted):
    scripted.enqueue("Bonjour!")
    c = run(shell, "%%chain greet\n- prompt: 'Say hello to {{ name }} in French.'\n- llm: {model: scripted, max_tokens: 16}")
    assert c.name == "greet"
    shell.user_ns["who"] = "Ada"
    r = run(shell, "%chain run greet --input name='{{ who }} L.' -o res")
    assert r.output == "Bonjour!" and shell.user_ns["res"] is r
    assert scripted.calls[0]["messages"][-1]["content"] == "Say hello to Ada L. in French."
    assert run(shell, "%chain list").rows[0][0] == "greet"
    assert "```yaml" in run(shell, "%chain show greet")._repr_markdown_()
    with pytest.raises(IPythonUsageError, match="No chain 'nope'"):
        run(shell, "%chain run nope")
    with pytest.raises(IPythonUsageError, match="KEY=VALUE"):
        run(shell, "%chain run greet --input oops")
    run(shell, "%chain delete greet")
    assert chain_mod.names() == []


def test_view_shows_the_retrieval_widget(shell, scripted):
    scripted.enqueue("Paris is the capital of France.")
    a = run(shell, "%%ask --index idx --model scripted --view\nWhat is the capital of France?")
    widgets = [d for d, kw in shell.shown if "application/vnd.jupyter.widget-view+json" in d]
    assert widgets, "the retrieval view was displayed"
    view = a.view()
    assert type(view).__name__ == "RetrievalWidget"
    assert view.sources[0]["source"] == "france.txt"
