"""``%%agent`` in a real IPython shell: the run streams into the cell and returns the AgentResult."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError as IPythonUsageError


def test_agent_magic_streams_steps_and_cites_sources(ip, scripted, capsys, monkeypatch, tmp_path):
    from llm_magics.agents import tool
    from llm_magics.agents import tools as tools_mod

    class Hit:
        def __init__(self, text, source):
            self.text, self.metadata = text, {"source": source}

    @tool
    def lookup(query: str):
        """Look up the lab handbook."""
        from llm_magics.agents import ToolResult

        return ToolResult("found", [Hit("The lab meets on Thursdays.", "handbook.md")])

    try:
        scripted.replies.extend([
            f'Thought: Search.\nAction: lookup\nAction Input: {json.dumps({"query": "meeting day"})}',
            "Thought: ok\nFinal Answer: Thursday [1]",
        ])  # fmt: skip
        trace = tmp_path / "t.jsonl"
        ip.run_cell(f"%%agent --tools lookup --model scripted:x -o r --trace {trace}\nWhen does the lab meet?").raise_error()
        result = ip.user_ns["r"]
        assert result.answer == "Thursday [1]" and result.cited == [{"number": 1, "text": "The lab meets on Thursdays.", "source": "handbook.md"}]
        assert result.steps[0].observation == "[1] The lab meets on Thursdays. (source: handbook.md)"
        assert trace.exists() and trace.read_text().count('"event": "agent_step"') == 2
    finally:
        tools_mod.session_tools.clear()


def test_agent_magic_early_stopping_method(ip, scripted):
    step = 'Thought: Add.\nAction: calculator\nAction Input: {"expression": "1+1"}'
    scripted.replies.extend([step, "Thought: I have it.\nFinal Answer: 2"])
    ip.run_cell("%%agent --model scripted:x --max-steps 1 -o r\nOne plus one?").raise_error()
    assert ip.user_ns["r"].answer == "2" and ip.user_ns["r"].finish_reason == "max_steps"  # "generate", the default
    scripted.replies.extend([step, "Thought: I have it.\nFinal Answer: 2"])
    ip.run_cell("%%agent --model scripted:x --max-steps 1 --early-stopping-method force -o r\nOne plus one?").raise_error()
    assert ip.user_ns["r"].answer == "" and len(scripted.replies) == 1  # no call after the budget
    scripted.replies.clear()


def test_agent_magic_user_errors_are_one_line(ip):
    with pytest.raises(IPythonUsageError, match="No tool 'calc'"):
        ip.run_cell("%%agent --tools calc\n2+2").raise_error()
    with pytest.raises(IPythonUsageError, match="--db"):
        ip.run_cell("%%agent --tools sql\nHow many rows?").raise_error()
    help_text = ip.find_cell_magic("agent").__self__.agent.parser.format_help()  # what %%agent? prints
    assert all(flag in help_text for flag in ("--tools", "--db", "--collection", "--model", "--max-steps"))


def test_agent_memory_carries_over_between_cells_until_reset(ip, scripted):
    scripted.replies.extend(["Thought: easy\nFinal Answer: Paris", "Thought: before\nFinal Answer: France", "Thought: new\nFinal Answer: ?"])
    ip.run_cell("%%agent --model scripted:x --tool-choice auto\nCapital of France?").raise_error()
    ip.run_cell("%%agent --model scripted:x --tool-choice auto\nWhich country was that?").raise_error()
    assert {"role": "assistant", "content": "Paris"} in scripted.calls[1]
    ip.run_cell("%%agent --model scripted:x --tool-choice auto --reset\nWhich country was that?").raise_error()
    assert {"role": "assistant", "content": "Paris"} not in scripted.calls[2]
