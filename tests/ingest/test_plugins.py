"""Third-party loaders and splitters plug in through the same hooks the built-ins use."""

from __future__ import annotations

import re

import pytest

from llm_magics import Document, hookimpl, plugins, registry
from llm_magics.ingest.index import Index
from llm_magics.ingest.loaders import Loader, choose, read_bytes
from llm_magics.ingest.splitters import Splitter


class RecipeLoader(Loader):
    """A made-up format: 'title: ...' then one step per line."""

    name = "recipe"
    extensions = (".recipe",)
    magic = (b"RECIPE\n",)

    def load(self, source):
        lines = read_bytes(source).decode().splitlines()[1:]
        title = lines[0].removeprefix("title: ")
        for n, step in enumerate(lines[1:], start=1):
            yield Document(step, {"source": source, "title": title, "step": n})


class SentenceSplitter(Splitter):
    """One chunk per sentence."""

    name = "sentence"

    def spans(self, text, metadata):
        return [m.span() for m in re.finditer(r"[^.!?]+[.!?]?", text)]


class Plugin:
    @hookimpl
    def register_loaders(self, register):
        register(RecipeLoader)

    @hookimpl
    def register_splitters(self, register):
        register(SentenceSplitter, aliases=("sentences",))


@pytest.fixture
def recipe_plugin(hash_embedder):
    name = plugins.register(Plugin(), "recipe-plugin")
    yield
    plugins.unregister(name)


def test_a_plugin_loader_and_splitter_drive_an_ingest(recipe_plugin, tmp_path):
    path = tmp_path / "soup.recipe"
    path.write_text("RECIPE\ntitle: Tomato soup\nChop the tomatoes. Fry the onions!\nSimmer for twenty minutes.\n")
    assert registry.entries("loader")["recipe"].plugin == "recipe-plugin"
    assert choose(str(path))[0] is RecipeLoader
    disguised = tmp_path / "soup.txt"  # the magic bytes win over a wrong extension
    disguised.write_bytes(path.read_bytes())
    assert choose(str(disguised))[0] is RecipeLoader

    index = Index(collection="recipes", store="memory")
    report = index.add(str(path), splitter="sentences")
    assert report.chunks_added == 3
    hit = index.search("fry onions", k=1, expand=0)[0]
    assert hit.text == "Fry the onions!" and hit.metadata["step"] == 1 and hit.metadata["title"] == "Tomato soup"
    assert hit.metadata["start_index"] == len("Chop the tomatoes. ")
    # small-to-big widens within the loader's document (step 1), never into step 2
    wide = index.search("fry onions", k=1, expand=1)[0]
    assert wide.text == "Chop the tomatoes.\nFry the onions!" and wide.metadata["step"] == 1
    index.drop()


def test_unregistering_removes_them(recipe_plugin):
    assert "sentence" in registry.names("splitter")
    plugins.unregister("recipe-plugin")
    assert "sentence" not in registry.names("splitter") and "recipe" not in registry.names("loader")
