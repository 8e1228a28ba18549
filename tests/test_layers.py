"""The package's layers, read from its source: no import circle, each layer imports only downward, and only
engine/ opens a runtime. A module moved to the wrong folder, or an import added upward, fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "digitsum_edge"
# What each folder may not import (every import counts, those inside functions too).
FORBIDDEN = {
    "engine": ("vision", "apps", "serve", "web", "bench", "export", "train", "synth"),
    "vision": ("engine", "apps", "serve", "web", "bench", "export", "train", "synth"),
    "apps": ("serve", "web", "bench", "export", "train"),
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle() -> None:
    assert cycles(graph()) == []


def test_a_circle_is_found() -> None:
    """The check itself: a circle through three modules, and one through two, are reported."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_downward(layer: str) -> None:
    edges = graph()
    assert any(name.startswith(f"digitsum_edge.{layer}.") for name in edges), f"no {layer}/ folder"
    upward = {name: sorted(d for d in deps if d.split(".")[1] in FORBIDDEN[layer])
              for name, deps in edges.items() if name.startswith(f"digitsum_edge.{layer}")}
    assert {name: deps for name, deps in upward.items() if deps} == {}


def test_only_the_engine_opens_a_runtime() -> None:
    opened = sorted(f"{path.relative_to(PACKAGE)}: {call}" for path in PACKAGE.rglob("*.py")
                    if path.relative_to(PACKAGE).parts[0] != "engine"
                    for call in ("InferenceSession(", "Interpreter(", "Interpreter.from_bytes(")
                    if call in path.read_text())
    assert opened == []
    engine = "".join(p.read_text() for p in (PACKAGE / "engine").glob("*.py"))
    assert "InferenceSession(" in engine and "Interpreter" in engine  # the check looks where runtimes are opened
