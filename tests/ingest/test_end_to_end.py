"""The whole path with the real default embedder (all-MiniLM-L6-v2 on our runtime) and Chroma."""

from __future__ import annotations

import nbformat
import pytest


@pytest.fixture
def library(tmp_path, pdf_factory):
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "herons.html").write_text(
        "<html><head><title>Herons</title><script>var ads = 1;</script></head><body>"
        "<h1>Herons</h1><p>Herons are long-legged wading birds. They stand still in shallow water "
        "and catch fish by spearing them with their sharp bills.</p></body></html>"
    )
    pdf_factory(
        folder / "kitchen.pdf",
        ["Chapter 1: Toasters", "Chapter 2: Kettles\nAn electric kettle heats water to boiling\nin a few minutes and switches itself off."],
        title="Kitchen appliances",
    )
    (folder / "space.md").write_text("# Comets\n\nA comet is an icy body that releases gas when it passes close to the Sun, forming a tail.\n")
    (folder / "prices.csv").write_text("item,price\nviolin,300 euros\ntrumpet,250 euros\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Volcanoes\nMagma rises through the crust and erupts as lava.")]
    nbformat.write(nb, str(folder / "geology.ipynb"))
    return folder


def test_ingest_and_search_with_minilm(ip, library, minilm, capsys):
    ip.run_cell("%config LLMMagics.progress = False").raise_error()
    ip.run_cell("idx = %ingest library --collection e2e").raise_error()
    assert "5 file(s) read" in capsys.readouterr().out
    idx = ip.user_ns["idx"]
    stats = idx.stats()
    assert stats["dimension"] == 384 and stats["store"] == "chroma" and stats["sources"] == 5

    def top(question):
        return idx.search(question, k=1)[0]

    assert top("How do herons catch fish?").metadata["source"] == "library/herons.html"
    kettle = top("How long does it take to boil water?")
    assert kettle.metadata["source"] == "library/kitchen.pdf" and kettle.metadata["page"] == 2
    assert top("Why do comets have tails?").metadata["source"] == "library/space.md"
    assert top("What does a violin cost?").metadata["row"] == 1
    lava = top("Where does lava come from?")
    assert lava.metadata["cell"] == 0 and lava.metadata["cell_type"] == "markdown"
    assert 0.3 < top("How do herons catch fish?").score <= 1.0
    # again: nothing to add, nothing embedded
    ip.run_cell("%ingest library --collection e2e").raise_error()
    assert "0 added" in capsys.readouterr().out and idx.store.count() == stats["chunks"]


def test_long_documents_are_never_truncated_by_the_embedder(tmp_path, minilm):
    """With the token splitter, every chunk fits MiniLM's window, so no text is silently lost."""
    from llm_magics.ingest.index import Index

    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(f"Paragraph {i}: " + "the quick brown fox jumps over the lazy dog " * 40 for i in range(6)))
    idx = Index(collection="long-doc", store="memory", embedder=minilm)
    idx.add(str(path), splitter="token")
    records = idx.store.get()
    assert len(records) > 6
    assert all(len(minilm.token_spans(r["text"])) <= minilm.max_tokens - 2 for r in records)
    idx.drop()
