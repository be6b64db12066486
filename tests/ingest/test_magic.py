"""``%ingest`` through a real IPython shell with ``%load_ext llm_magics``."""

from __future__ import annotations

import sqlite3

import pytest
from IPython.core.error import UsageError as IPythonUsageError

from llm_magics.ingest.index import Index


@pytest.fixture
def shell(ip, hash_embedder):
    ip.run_cell('%config LLMMagics.embedder = "test-hash"').raise_error()
    ip.run_cell("%config LLMMagics.progress = False").raise_error()
    return ip


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "herons.md").write_text("# Herons\n\nHerons wade in shallow water and spear fish.")
    (folder / "kettles.txt").write_text("A kettle boils water for tea.")
    (folder / "sub" / "comets.html").write_text("<html><title>Comets</title><body><p>Comets have icy tails.</p></body></html>")
    (folder / "broken.txt").write_bytes(b"\x00\x01\x02binary")
    return folder


def error_of(result):
    return result.error_in_exec or result.error_before_exec


def test_ingest_returns_and_binds_the_index_and_shows_a_summary(shell, docs, capsys):
    result = shell.run_cell("idx = %ingest docs --recursive --collection notes -o bound")
    result.raise_error()
    out = capsys.readouterr().out
    assert "3 file(s) read" in out and "1 skipped" in out and "broken.txt: binary" in out
    idx = shell.user_ns["idx"]
    assert isinstance(idx, Index) and shell.user_ns["bound"] is idx
    assert idx.collection == "notes" and idx.store.name == "chroma"
    assert idx.search("icy comet tails", k=1)[0].metadata["source"] == "docs/sub/comets.html"

    shell.run_cell("%ingest docs --recursive --collection notes").raise_error()
    assert "0 added" in capsys.readouterr().out  # re-running adds nothing


def test_options_glob_splitter_and_stats(shell, docs, capsys):
    shell.run_cell("%ingest docs -r --glob '*.md' --splitter markdown --chunk-size 40 --chunk-overlap 5 --store memory -c md-only -o i").raise_error()
    idx = shell.user_ns["i"]
    assert idx.sources() == ["docs/herons.md"]
    hit = idx.search("herons", k=1, expand=0)[0]  # the chunk itself, not its small-to-big window
    assert hit.metadata["section"] == "Herons" and len(hit.text) <= 40
    capsys.readouterr()
    shell.run_cell("%ingest --stats --store memory -c md-only").raise_error()
    out = capsys.readouterr().out
    assert "sources=1" in out and "docs/herons.md" in out
    shell.run_cell("%ingest --delete docs/herons.md --store memory -c md-only").raise_error()
    assert "Removed docs/herons.md" in capsys.readouterr().out
    assert idx.sources() == []


def test_sql_with_query(shell, tmp_path):
    con = sqlite3.connect(tmp_path / "shop.db")
    con.execute("CREATE TABLE products (name TEXT, description TEXT)")
    con.execute("INSERT INTO products VALUES ('Kettle', 'boils water'), ('Lamp', 'gives light')")
    con.commit()
    con.close()
    shell.run_cell('%ingest sqlite:///shop.db --query "SELECT name, description FROM products" --store memory -c shop -o shop').raise_error()
    hit = shell.user_ns["shop"].search("light", k=1)[0]
    assert hit.text == "name: Lamp\ndescription: gives light" and hit.metadata["row"] == 2


def test_loader_option_pairs(shell, tmp_path):
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    shell.run_cell("%ingest rows.csv --option rows_per_document=2 --option columns='[\"a\"]' --store memory -c rows -o r").raise_error()
    hits = shell.user_ns["r"].search("a", k=5)
    assert sorted(h.text for h in hits) == ["a: 1\n\na: 3", "a: 5"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("%ingest", "Name what to ingest"),
        ("%ingest x.txt --splitter nope", "No splitter 'nope'"),
        ("%ingest x.txt --store nope", "No vector store 'nope'"),
        ("%ingest x.txt --option broken", "KEY=VALUE"),
        ("%ingest x.txt --option colour=red", "No loader takes option"),
        ("%ingest x.txt --collection 'bad name!'", "Bad collection name"),
        ("%ingest x.txt --chunk-size 10 --chunk-overlap 10", "chunk_overlap"),
        ("%ingest --delete never.txt --store memory -c empty-one", "No source"),
    ],
)
def test_user_mistakes_are_one_line_usage_errors(shell, tmp_path, line, message):
    (tmp_path / "x.txt").write_text("some text")
    error = error_of(shell.run_cell(line))
    assert isinstance(error, IPythonUsageError)
    assert message in str(error)


def test_embedder_mismatch_through_the_magic(shell, docs):
    shell.run_cell("%ingest docs/kettles.txt -c mixed").raise_error()
    error = error_of(shell.run_cell("%ingest docs/herons.md -c mixed --embedder test-hash-other"))
    assert isinstance(error, IPythonUsageError) and "was built with embedder 'test-hash'" in str(error)


def test_help_lists_the_options(shell):
    from llm_magics.magics.ingest import IngestMagics

    doc = shell.find_line_magic("ingest").__doc__
    for option in ("--collection", "--loader", "--splitter", "--chunk-size", "--chunk-overlap", "--glob", "--recursive", "--store", "--embedder", "--delete", "--stats", "-o"):
        assert option in doc
    assert IngestMagics.__name__ in type(shell.find_line_magic("ingest").__self__).__name__
