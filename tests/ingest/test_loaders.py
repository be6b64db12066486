"""Every built-in loader on real files, and how a loader is chosen."""

from __future__ import annotations

import json
import sqlite3

import pytest

from llm_magics import registry
from llm_magics.errors import UsageError
from llm_magics.ingest.loaders import SkipSource, choose


def load(path, loader=None, **options):
    cls, _ = choose(str(path), loader)
    return list(cls(**options).load(str(path)))


def test_builtin_loaders_are_registered_through_the_hook():
    names = set(registry.names("loader"))
    assert {"text", "markdown", "html", "pdf", "csv", "json", "ipynb", "code", "sql"} <= names
    assert registry.entries("loader")["sql"].plugin == "llm_magics.ingest.loaders.builtin"


# -- text and encodings --------------------------------------------------------

SAMPLE = "Café naïve résumé — “quoted” façade\nSecond line: 10 € or £8.\n"


@pytest.mark.parametrize(
    "encoding, prefix",
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16", b""), ("utf-16-le", b""), ("cp1252", b"")],
)
def test_text_encodings_are_detected(tmp_path, encoding, prefix):
    path = tmp_path / "notes.txt"
    path.write_bytes(prefix + SAMPLE.encode(encoding))
    (doc,) = load(path)
    assert doc.text == SAMPLE
    assert doc.metadata["source"] == str(path)
    assert doc.metadata["title"] == "notes"
    assert doc.metadata["mtime"] == pytest.approx(path.stat().st_mtime)


def test_latin1_text(tmp_path):
    text = "Olá, à bientôt! Garçon, ça va? Über straße. " * 3
    path = tmp_path / "latin.txt"
    path.write_bytes(text.encode("latin-1"))
    assert load(path)[0].text == text


def test_markdown_keeps_headers_and_takes_the_title(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("---\nauthor: me\n---\n# Install guide\n\nRun `pip install`.\n\n## From source\n\nClone it.\n")
    (doc,) = load(path)
    assert doc.metadata["title"] == "Install guide"
    assert doc.text.startswith("# Install guide")
    assert "author" not in doc.text


def test_code_files_carry_their_language(tmp_path):
    path = tmp_path / "tool.py"
    path.write_text("def main():\n    return 42\n")
    (doc,) = load(path)
    assert choose(str(path))[0].name == "code"
    assert doc.metadata["language"] == "python"
    assert "return 42" in doc.text


# -- html ----------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>The  Page Title</title>
<style>body { color: red; } .secret {}</style>
<script>var tracking = "do not index me";</script></head>
<body>
<nav hidden>Hidden menu</nav>
<h1>Main heading</h1>
<p>First <b>visible</b> paragraph about   herons.</p>
<div style="display: none">invisible div</div>
<noscript>Enable JavaScript</noscript>
<ul><li>one</li><li>two</li></ul>
<pre>  keep   spacing\n  here</pre>
<p>Caf&eacute; &amp; bar</p>
<script type="module">console.log("nope")</script>
</body></html>"""


def html_doc(tmp_path, html: str, **options):
    path = tmp_path / "page.html"
    path.write_text(html)
    (doc,) = load(path, **options)
    return doc


def test_html_is_visible_text_only_with_title(tmp_path):
    doc = html_doc(tmp_path, HTML)
    text = doc.text
    assert doc.metadata["title"] == "The Page Title"
    assert "# Main heading" in text
    assert "First visible paragraph about herons." in text
    assert "Café & bar" in text
    assert "  keep   spacing" in text
    for hidden in ("color: red", "tracking", "Hidden menu", "invisible div", "Enable JavaScript", "console.log"):
        assert hidden not in text


NAV_PAGE = """<html><body>
<div class="menu"><a href="/"><img src="logo.gif" alt="SiteName"></a>
<ul><li><a href="/index.html">Home</a></li><li><a href="/docs.html">Documentation</a></li></ul></div>
<p class="crumbs"><a href="/">Docs</a> &raquo; <a href="/api/">API</a></p>
<h2><a href="#open">Opening a file</a></h2>
<p>Call <a href="open.html">open_file()</a> with one of the following flags:</p>
<ul><li><a href="flags.html">FLAG_READ_ONLY</a></li><li><a href="flags.html">os.O_RDWR</a></li></ul>
<ul><li>Mode <a href="m.html">w</a> truncates.</li></ul>
<p><a href="next.html">Next topic</a></p>
</body></html>"""


def test_html_drops_lines_that_are_only_links(tmp_path):
    text = html_doc(tmp_path, NAV_PAGE).text
    for nav in ("SiteName", "Home", "Documentation", "Docs", "API", "Next topic"):  # menus, breadcrumbs, next/previous
        assert nav not in text.split(), nav
    assert "## Opening a file" in text  # a heading stays, linked or not
    assert "Call open_file() with one of the following flags:" in text  # links inside a sentence stay
    assert "FLAG_READ_ONLY" in text and "os.O_RDWR" in text  # a list of identifiers is content
    assert "Mode w truncates." in text
    # a link left open ends with its paragraph: the page after it is not taken for navigation
    assert html_doc(tmp_path, "<p>See <a href=g>the guide</p><p>Herons wade.</p><ul><li>Cranes fly.</li></ul>").text == (
        "See the guide\n\nHerons wade.\n\n- Cranes fly.")
    kept = html_doc(tmp_path, NAV_PAGE, drop_links=False)
    assert "Home" in kept.text and "Next topic" in kept.text


SPHINX_PAGE = """<html><head><title>Options - Click Documentation (8.1.x)</title></head><body>
<div class="related"><h3>Navigation</h3><ul><li><a href="index.html">Click Documentation (8.1.x)</a> &raquo;</li></ul></div>
<h1>Options<a class="headerlink" href="#options" title="Permalink">&para;</a></h1>
<p>Options are optional.<a href="#f1" class="fn-backref">&#8617;</a></p>
<dl class="py function"><dt id="click.echo">click.echo(message=None, nl=True)<a class="headerlink" href="#click.echo">&para;</a></dt>
<dd><p>Print a message.</p></dd></dl>
<div class="highlight"><pre><span class="c1"># How to make an option required</span>
@click.option('--n', required=True)
  # indented comment
#!/bin/sh
</pre></div>
<h2>Counting<a class="headerlink" href="#counting">&para;</a></h2><p>Use count=True.</p>
<div class="sidebar"><h3>Contents</h3><ul><li><a href="#options">Options</a></li></ul>
<h3>Navigation</h3><ul><li><a href="api.html">API</a></li></ul></div></body></html>"""


def test_html_from_sphinx_keeps_text_structure_not_markup(tmp_path):
    from llm_magics.ingest.splitters import get_splitter

    doc = html_doc(tmp_path, SPHINX_PAGE)
    assert doc.text == (
        "# Options\n\nOptions are optional.\n\nclick.echo(message=None, nl=True):\n\nPrint a message.\n\n"
        "    # How to make an option required\n@click.option('--n', required=True)\n    # indented comment\n#!/bin/sh\n\n"
        "## Counting\n\nUse count=True.")  # no ¶ or ↩, no sidebar headers, no version breadcrumb; a term introduces its definition
    chunks = list(get_splitter("markdown", chunk_size=400, chunk_overlap=0).split_document(doc))
    assert {c.metadata.get("section") for c in chunks} == {"Options", "Options > Counting"}  # a code comment is no header
    kept = html_doc(tmp_path, SPHINX_PAGE, markdown_headings=False).text  # headers as plain lines: all stay
    assert "Navigation" in kept and "Contents" in kept
    kicker = "<h2>SQLite C Interface</h2><h2>Set A Busy Timeout</h2><p>Sleeps.</p>"  # no text of its own, none dropped: it stays
    assert html_doc(tmp_path, kicker).text == "## SQLite C Interface\n\n## Set A Busy Timeout\n\nSleeps."
    glossary = "<dl><dt>origin</dt><dd>The default upstream repository.</dd><dt>HEAD.</dt><dd>Ends well.</dd><dt>a</dt><dt>b</dt><dd>Both.</dd></dl>"
    items = "<ol start=3><li><p>three</p></li><li>four</li></ol><ul><li><a href=x>Home</a></li><li>five</li></ul>"
    assert html_doc(tmp_path, items).text == "3. three\n\n4. four\n\n- five"  # each item on its marker's line
    assert html_doc(tmp_path, glossary).text.split("\n\n") == ["origin:", "The default upstream repository.", "HEAD.", "Ends well.", "a", "b:", "Both."]
    linked = '<dl><dt>Return type</dt><dd><p><a href="https://example.org/str">str</a></p></dd><dt>f()</dt><dd>Does.</dd></dl>'
    assert html_doc(tmp_path, linked).text == "Return type\n\nf():\n\nDoes."  # no colon before a definition that left no text


def test_html_without_visible_text_is_skipped(tmp_path):
    path = tmp_path / "empty.html"
    path.write_text("<html><head><script>x()</script></head><body>  </body></html>")
    with pytest.raises(SkipSource, match="no visible text"):
        load(path)


# -- pdf -----------------------------------------------------------------------


def test_pdf_one_document_per_page(tmp_path, pdf_factory):
    path = pdf_factory(tmp_path / "paper.pdf", ["Introduction to herons", "Methods: we counted birds", "Results (many)"], title="Bird Paper")
    docs = load(path)
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert "counted birds" in docs[1].text
    assert "Results (many)" in docs[2].text
    assert {d.metadata["title"] for d in docs} == {"Bird Paper"}


def test_encrypted_pdf_needs_its_password(tmp_path, pdf_factory, pdf_encrypt):
    plain = pdf_factory(tmp_path / "plain.pdf", ["Top secret herons"])
    locked = pdf_encrypt(plain, str(tmp_path / "locked.pdf"), "pw")
    with pytest.raises(SkipSource, match="encrypted"):
        load(locked)
    assert "secret herons" in load(locked, password="pw")[0].text


def test_corrupt_and_textless_pdfs_are_skipped(tmp_path, pdf_factory):
    good = open(pdf_factory(tmp_path / "g.pdf", ["some text here"]), "rb").read()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(good[: len(good) // 3])
    with pytest.raises(SkipSource):
        load(broken)
    blank = pdf_factory(tmp_path / "blank.pdf", [""])
    with pytest.raises(SkipSource, match="no extractable text"):
        load(blank)


# -- tables --------------------------------------------------------------------


def test_csv_rows_and_row_groups(tmp_path):
    path = tmp_path / "fruit.csv"
    path.write_text("name,colour,price\napple,red,1\nkiwi,green,2\nplum,purple,3\n")
    docs = load(path)
    assert [d.metadata["row"] for d in docs] == [1, 2, 3]
    assert docs[1].text == "name: kiwi\ncolour: green\nprice: 2"
    grouped = load(path, rows_per_document=2, columns=["name"], metadata_columns=["price"])
    assert [g.text for g in grouped] == ["name: apple\n\nname: kiwi", "name: plum"]
    assert grouped[0].metadata["row_end"] == 2 and grouped[0].metadata["price"] == "1"
    with pytest.raises(UsageError, match="no column"):
        load(path, columns=["weight"])


def test_tsv(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\nx, y\tz\n")
    (doc,) = load(path)
    assert doc.text == "a: x, y\nb: z"


def test_json_records_and_text_field(tmp_path):
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"data": {"items": [{"body": "first text", "id": 1}, {"body": "second text", "id": 2}]}}))
    docs = load(path, records="data.items", text_field="body", metadata_columns=["id"])
    assert [d.text for d in docs] == ["first text", "second text"]
    assert [d.metadata["id"] for d in docs] == [1, 2]
    whole = load(path, records="data.items")
    assert whole[0].text == "body: first text\nid: 1"


def test_jsonl_tolerates_a_bad_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"msg": "one"}\n\n{"msg": "two"}\nnot json\n{"msg": "three"}\n')
    assert [d.text for d in load(path, text_field="msg")] == ["one", "two", "three"]


def test_invalid_json_is_skipped(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"a": [1, 2')
    with pytest.raises(SkipSource, match="invalid JSON"):
        load(path)


# -- notebooks -----------------------------------------------------------------


def test_notebook_cells_with_type_and_index(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Heron analysis\nWe study herons."),
        nbformat.v4.new_code_cell("count = 3\nprint(count)", outputs=[nbformat.v4.new_output("stream", text="3\n")]),
        nbformat.v4.new_raw_cell("raw stuff"),
        nbformat.v4.new_code_cell(""),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = tmp_path / "analysis.ipynb"
    nbformat.write(nb, str(path))
    docs = load(path)
    assert [(d.metadata["cell"], d.metadata["cell_type"]) for d in docs] == [(0, "markdown"), (1, "code")]
    assert docs[0].metadata["title"] == "Heron analysis"
    assert docs[1].metadata["language"] == "python"
    with_out = load(path, include_outputs=True, cell_types=["code", "raw"])
    assert [d.metadata["cell"] for d in with_out] == [1, 2]
    assert with_out[0].text.endswith("# Output:\n3\n")


# -- sql -----------------------------------------------------------------------


@pytest.fixture
def shop_db(tmp_path):
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE products (id INTEGER, name TEXT, description TEXT)")
    con.executemany("INSERT INTO products VALUES (?, ?, ?)", [(1, "Kettle", "Boils water fast"), (2, "Toaster", "Browns bread"), (3, "Lamp", None)])
    con.execute("CREATE TABLE notes (body TEXT)")
    con.execute("INSERT INTO notes VALUES ('remember the milk')")
    con.commit()
    con.close()
    return path


def test_sql_query_rows(shop_db):
    url = f"sqlite:///{shop_db}"
    docs = load(url, query="SELECT name, description FROM products ORDER BY id")
    assert choose(url)[0].name == "sql"
    assert [d.text for d in docs] == ["name: Kettle\ndescription: Boils water fast", "name: Toaster\ndescription: Browns bread", "name: Lamp"]
    assert docs[0].metadata["source"] == url and docs[0].metadata["row"] == 1
    grouped = load(url, query="SELECT name FROM products", rows_per_document=2)
    assert len(grouped) == 2 and grouped[0].metadata["row_end"] == 2


def test_sql_all_tables_and_errors(shop_db, tmp_path):
    url = f"sqlite:///{shop_db}"
    docs = load(url)
    assert {d.metadata["table"] for d in docs} == {"products", "notes"}
    with pytest.raises(SkipSource, match="SQL error"):
        load(url, query="SELECT nope FROM products")
    with pytest.raises(SkipSource, match="no such database"):
        load(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()  # read-only: a typo never creates a file
    with pytest.raises(UsageError, match="No table"):
        load(url, table="orders")


def test_passwords_never_reach_metadata():
    from llm_magics.ingest.loaders.sql import redacted

    assert redacted("postgresql://bob:hunter2@db/shop") == "postgresql://bob:***@db/shop"


# -- choosing a loader ---------------------------------------------------------


def test_choice_by_extension_scheme_and_name(tmp_path):
    page = tmp_path / "page.htm"
    page.write_text("<p>hello</p>")
    assert choose(str(page))[0].name == "html"
    assert choose(str(page), "text")[0].name == "text"
    odd = tmp_path / "README"
    odd.write_text("plain words")
    assert choose(str(odd))[0].name == "text"
    with pytest.raises(UsageError, match="No loader 'nope'"):
        choose(str(odd), "nope")
    with pytest.raises(UsageError, match="No loader reads ftp://"):
        choose("ftp://example.org/x")


def test_content_sniffing_catches_mislabeled_files(tmp_path, pdf_factory):
    disguised = tmp_path / "notes.txt"
    disguised.write_bytes(open(pdf_factory(tmp_path / "real.pdf", ["pdf inside"]), "rb").read())
    cls, note = choose(str(disguised))
    assert cls.name == "pdf" and "mislabeled" in note
    fake_pdf = tmp_path / "report.pdf"
    fake_pdf.write_text("Just some text, not a PDF at all.")
    cls, note = choose(str(fake_pdf))
    assert cls.name == "text" and "mislabeled" in note
    html_txt = tmp_path / "page.txt"
    html_txt.write_text("<!DOCTYPE html><html><body><p>hi</p></body></html>")
    assert choose(str(html_txt))[0].name == "html"
    png = tmp_path / "table.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(SkipSource, match="PNG"):
        choose(str(png))


def test_text_loader_refuses_binary_and_giant_lines(tmp_path):
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"hello\x00world" * 10)
    with pytest.raises(SkipSource, match="binary|NUL"):
        choose(str(nul))
    giant = tmp_path / "minified.txt"
    giant.write_text("x" * 2_000_001)
    with pytest.raises(SkipSource, match="giant single line"):
        load(giant)
    assert load(giant, max_line_chars=3_000_000)[0].text.startswith("xxx")
