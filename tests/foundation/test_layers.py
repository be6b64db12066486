"""Layers point down: no import cycles between modules, ``runtime/`` imports nothing above it,
and a module over 400 lines says at its top why it is one room.

Plain ``ast`` over the package source: every ``import`` counts, including those inside
functions (a lazy import is still a dependency); those under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import llm_magics

PACKAGE = Path(llm_magics.__file__).parent
MAX_LINES = 400
#: A long module keeps its length when its docstring's first lines say why, with this phrase.
LONG_MARK = "over 400 lines"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Import statements, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
        for target in targets:
            while target and target not in known:  # import a.b.c of a module a.b: the module a.b
                target = target.rpartition(".")[0]
            if target and target != module:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def _is_parent_package(a: str, b: str) -> bool:
    return b.startswith(a + ".")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), ignoring the edge from a
    package to its own submodules (``__init__`` re-exporting what its modules define)."""
    edges = {m: {t for t in ts if not _is_parent_package(m, t)} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (break them by moving the shared part down a layer):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_runtime_imports_nothing_above_it():
    graph = import_graph()
    above = {
        f"{m} imports {t}"
        for m, ts in graph.items()
        if m.startswith("llm_magics.runtime")
        for t in ts
        if not t.startswith("llm_magics.runtime")
    }
    assert not above, "llm_magics.runtime must not import the rest of the package:\n" + "\n".join(sorted(above))


def test_the_graph_sees_lazy_and_relative_imports():
    # the checker itself: a lazy relative import inside a function is an edge
    graph = import_graph()
    assert "llm_magics.registry" in graph["llm_magics.ingest.loaders"]  # `from ... import registry` in a function
    assert "llm_magics.qa.chain_types.prompts" in graph["llm_magics.qa.pipeline"]  # `from .chain_types import prompts`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_long_modules_say_why():
    unexplained = []
    for module, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        if n > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if LONG_MARK not in doc.lower():
                unexplained.append(f"{path.relative_to(PACKAGE.parent)}: {n} lines")
    assert not unexplained, (
        f"modules over {MAX_LINES} lines without a reason in their docstring (say why, with the words "
        f"'{LONG_MARK}', or split the module):\n" + "\n".join(unexplained)
    )
