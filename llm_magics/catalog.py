"""Tables of what the registry holds and where each entry came from (``%llm plugins`` ...)."""

from __future__ import annotations

from dataclasses import dataclass

from . import plugins, registry
from .errors import UsageError

KIND_OF = {
    "loaders": "loader",
    "splitters": "splitter",
    "embedders": "embedder",
    "stores": "vector_store",
    "backends": "backend",
    "chain-types": "chain_type",
    "parsers": "output_parser",
    "callbacks": "callback",
}


@dataclass
class Listing:
    """Rows for display: a plain-text table in a terminal, an HTML table in a notebook."""

    title: str
    columns: list[str]
    rows: list[list[str]]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __str__(self) -> str:
        widths = [max(len(str(c)) for c in col) for col in zip(self.columns, *self.rows)] if self.rows else [len(c) for c in self.columns]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        return "\n".join([self.title, line(self.columns), *(line(r) for r in self.rows)])

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        from html import escape

        head = "".join(f"<th>{escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in self.rows)
        return f"<b>{escape(self.title)}</b><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def listing(command: str) -> Listing:
    if command == "plugins":
        plugins.load_plugins()
        for kind in registry.KINDS:  # calling the hooks records plugins that raise inside them
            registry.entries(kind)
        rows = [[i.name, i.source, ", ".join(i.hooks), i.error or "ok"] for i in plugins.info.values()]
        return Listing("Plugins", ["plugin", "from", "hooks", "status"], rows)
    if command == "models":
        from . import models
        from .models.install import describe

        rows = [[m.name, m.role, ", ".join(m.aliases), m.plugin, *describe(m)] for m in models.known()]
        return Listing("Models", ["model", "role", "aliases", "plugin", "status", "size", "licence", "provenance / path"], rows)
    if command == "settings":
        from . import config

        def shown(obj, key):
            return "***" if "key" in key and getattr(obj, key) else repr(getattr(obj, key))

        s = config.settings()
        rows = [[k, shown(s, k)] for k in sorted(s.class_own_traits(config=True))]
        for entry in registry.unique("settings"):  # each plugin's own section, by its class name
            section = config.section(entry.obj)
            rows += [[f"{entry.name}.{k}", shown(section, k)] for k in sorted(entry.obj.class_own_traits(config=True))]
        return Listing("Settings (%config LLMMagics.NAME = VALUE; a plugin's: %config SECTION.NAME = VALUE)", ["setting", "value"], rows)
    if command in KIND_OF:
        rows = [[e.name, ", ".join(e.aliases), e.plugin, e.description] for e in registry.unique(KIND_OF[command])]
        return Listing(command.capitalize().replace("-", " "), ["name", "aliases", "plugin", "description"], rows)
    known = ", ".join(["plugins", "models", "settings", "size", *KIND_OF])
    raise UsageError(f"No %llm command {command!r}. Known: {known}.")
