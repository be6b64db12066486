"""Tools: schemas from functions and pydantic models, the safe calculator, read-only SQL,
search over a real Chroma collection, and tools from plugins through ``register_tools``."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from llm_magics import UsageError, hookimpl, plugins
from llm_magics.agents import Tool, ToolArgumentsError, available, get_tools, tool, tools as tools_mod
from llm_magics.agents.builtin import calculate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_session_tools():
    tools_mod.session_tools.clear()
    yield
    tools_mod.session_tools.clear()


# ─── calculator ──────────────────────────────────────────────────────────────


@pytest.mark.parametrize("expression, value", [
    ("12 * 7", 84), ("(3 + 4) ** 2 / 7", 7.0), ("1,000,000 / 4", 250000.0), ("sqrt(144) + round(2.567, 2)", 14.57),
    ("-2 ^ 3", -8), ("17 % 5 + 17 // 5", 5), ("2 * pi", 6.283185307179586),
])  # fmt: skip
def test_calculator_evaluates_arithmetic(expression, value):
    assert calculate(expression) == pytest.approx(value)


@pytest.mark.parametrize("expression", ["__import__('os').system('echo hi')", "open('/etc/passwd').read()", "(1).__class__", "[x for x in range(3)]", "9 ** 9 ** 9", "a + 1"])
def test_calculator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(ValueError):
        calculate(expression)


def test_calculator_tool_returns_plain_numbers():
    (calc,) = get_tools("calculator")
    assert calc(expression="0.15 * 80").content == "12"
    assert calc(expression="10 / 3").content == "3.333333"
    with pytest.raises(ToolArgumentsError, match="expression"):
        calc.validate({"expr": "1+1"})


# ─── sql ─────────────────────────────────────────────────────────────────────


def test_sql_tool_answers_and_describes_the_tables(planets_db):
    (sql,) = get_tools(["sql"], db=planets_db)
    assert "planets(name, diameter_km" in sql.description and "elements(number, symbol" in sql.description
    out = sql(query="SELECT name, moons FROM planets WHERE moons > 20 ORDER BY moons DESC").content
    assert out.splitlines() == ["name | moons", "Saturn | 146", "Jupiter | 95", "Uranus | 28"]


@pytest.mark.parametrize("statement", [
    "DROP TABLE planets", "DELETE FROM planets", "INSERT INTO elements VALUES (11, 'Na', 'Sodium', 22.99)",
    "UPDATE planets SET moons = 0", "CREATE TABLE t (x)",
])  # fmt: skip
def test_sql_tool_is_read_only(planets_db, statement):
    (sql,) = get_tools(["sql"], db=planets_db)
    with pytest.raises(RuntimeError, match="SQL error: .*(readonly|read-only|query_only)"):
        sql(query=statement)
    path = planets_db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:  # the data is intact
        assert connection.execute("SELECT count(*), sum(moons) FROM planets").fetchone() == (8, 288)
        assert connection.execute("SELECT count(*) FROM elements").fetchone() == (10,)


def test_sql_tool_says_what_is_missing(tmp_path):
    with pytest.raises(UsageError, match="--db"):
        get_tools(["sql"])
    with pytest.raises(UsageError, match="No SQLite database"):
        get_tools(["sql"], db=f"sqlite:///{tmp_path / 'nope.db'}")


# ─── schemas, @tool and the registry ─────────────────────────────────────────


def test_tool_decorator_builds_the_schema_from_type_hints_and_registers():
    @tool
    def convert(amount: float, unit: str = "km") -> str:
        """Convert a distance to miles.

        Longer explanation that stays out of the description."""
        return f"{amount * 0.621371:.1f} mi" if unit == "km" else f"{amount} mi"

    assert isinstance(convert, Tool) and convert.description == "Convert a distance to miles."
    assert convert.parameters["properties"] == {"amount": {"type": "number"}, "unit": {"default": "km", "type": "string"}}
    assert convert.parameters["required"] == ["amount"]
    assert convert(**convert.validate('{"amount": "10"}')).content == "6.2 mi"  # pydantic converts "10"
    with pytest.raises(ToolArgumentsError, match="amount"):
        convert.validate({"unit": "km"})
    assert "convert" in available() and get_tools("calculator,convert")[1] is convert


def test_tool_from_a_pydantic_model():
    class Query(BaseModel):
        city: str = Field(description="A city name")
        days: int = Field(1, ge=1, le=7)

    @tool(name="forecast", args_model=Query)
    def forecast(city, days=1):
        """Weather forecast for a city."""
        return {"city": city, "days": days}

    assert forecast.parameters["properties"]["city"]["description"] == "A city name"
    assert forecast.openai_schema()["function"]["name"] == "forecast"
    with pytest.raises(ToolArgumentsError, match="days"):
        forecast.validate({"city": "Oslo", "days": 30})
    assert forecast(**forecast.validate({"city": "Oslo"})).content == '{"city": "Oslo", "days": 1}'


def test_unknown_tool_and_missing_docstring_are_usage_errors():
    with pytest.raises(UsageError, match="No tool 'calc'. Known: .*calculator"):
        get_tools("calc")

    def nodoc(x: int):
        return x

    with pytest.raises(UsageError, match="docstring"):
        tool(nodoc)


def test_register_tools_hook_adds_a_plugin_tool():
    class Plugin:
        @hookimpl
        def register_tools(self, register):
            def shout(text: str) -> str:
                """Upper-case a text."""
                return text.upper()

            register(shout)

    plugins.register(Plugin(), "shout-plugin")
    try:
        (shout,) = get_tools("shout")
        assert shout(text="hi").content == "HI"
        assert {"calculator", "sql", "search", "shout"} <= set(available())
    finally:
        plugins.unregister("shout-plugin")
    assert "shout" not in available()


def test_the_documented_register_tools_example_runs():
    docs = (ROOT / "docs" / "plugin_hooks.md").read_text()
    section = re.search(r"^## register_tools\n(.*?)(?=^## |\Z)", docs, re.S | re.M).group(1)
    namespace: dict = {}
    exec(compile(re.search(r"```python\n(.*?)```", section, re.S).group(1), "docs:register_tools", "exec"), namespace)
    plugins.register(type("DocPlugin", (), {"register_tools": staticmethod(namespace["register_tools"])})(), "doc-tools")
    try:
        (wc,) = get_tools("word_count")
        assert wc(**wc.validate({"text": "one two three"})).content == "3"
    finally:
        plugins.unregister("doc-tools")


# ─── search over a real Chroma collection ────────────────────────────────────


@pytest.mark.slow
def test_search_tool_returns_passages_with_sources(tmp_path, monkeypatch):
    from llm_magics import Index

    monkeypatch.setenv("LLM_MAGICS_HOME", str(tmp_path))
    index = Index(collection="agent-docs", path=str(tmp_path / "chroma"))
    index.add([str(ROOT / "llm_magics" / "demo" / "data")], recursive=True)
    (search,) = get_tools(["search"], index=index)
    result = search(query="Who gives the laser safety training?")
    assert result.sources and all(h.metadata.get("source") for h in result.sources)
    assert "[1]" in result.content and "(source: " in result.content
    assert any("Okafor" in h.text for h in result.sources)


def test_a_third_party_tool_comes_through_the_entry_point_group(tmp_path, monkeypatch):
    """A distribution with an ``llm_magics`` entry point (a dist-info folder on sys.path) adds a tool."""
    import importlib
    import sys
    import textwrap

    (tmp_path / "lmtest_tools.py").write_text(textwrap.dedent('''
        from llm_magics import hookimpl
        from llm_magics.agents import Tool

        reverse = Tool("reverse", "Reverse a text.", {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
                       lambda text: text[::-1])

        @hookimpl
        def register_tools(register):
            register(reverse)
    '''))
    info = tmp_path / "lmtest_tools-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmtest-tools\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[llm_magics]\nlmtest_tools = lmtest_tools\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    plugins.reset()
    try:
        (reverse,) = get_tools("reverse")
        assert reverse(**reverse.validate({"text": "abc"})).content == "cba"
        assert plugins.info["lmtest_tools"].source == "entry point lmtest-tools 1.0"
    finally:
        sys.modules.pop("lmtest_tools", None)
        monkeypatch.undo()
        plugins.reset()
