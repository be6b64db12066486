"""The built-in loaders, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from ...hookspecs import hookimpl
from .html import HTMLLoader
from .notebook import NotebookLoader
from .pdf import PDFLoader
from .sql import SQLLoader
from .tables import CSVLoader, JSONLoader
from .text import CodeLoader, MarkdownLoader, TextLoader

#: loader class -> aliases accepted by --loader
BUILTIN_LOADERS = {
    TextLoader: ("txt",),
    MarkdownLoader: ("md",),
    CodeLoader: ("source", "python"),
    HTMLLoader: ("htm",),
    PDFLoader: (),
    CSVLoader: ("tsv",),
    JSONLoader: ("jsonl",),
    NotebookLoader: ("notebook",),
    SQLLoader: ("sqlite",),
}


@hookimpl
def register_loaders(register):
    for cls, aliases in BUILTIN_LOADERS.items():
        register(cls, aliases=aliases)
