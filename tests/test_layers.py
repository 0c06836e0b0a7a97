"""The import graph: layers point one way and no module imports itself through others.

    pixelplayer  <-  engines  <-  export
                          ^
                          +----  realtime:  streaming, io  <-  pipeline  <-  app

Every import counts, module-level or inside a function, absolute or relative.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pixelplayer", "engines", "export", "realtime")
# What each layer may import (besides itself): everything below it, never beside or above.
ALLOWED = {
    "pixelplayer": set(),
    "engines": {"pixelplayer"},
    "export": {"pixelplayer", "engines"},
    "realtime.streaming": {"pixelplayer", "engines"},
    "realtime.io": {"pixelplayer", "engines"},
    "realtime.pipeline": {"pixelplayer", "engines", "realtime.streaming", "realtime.io"},
    "realtime.app": {"pixelplayer", "engines", "realtime.streaming", "realtime.io",
                     "realtime.pipeline"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """Project modules that `name` imports (resolved to existing module names)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _layer(module: str) -> str:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return module.split(".")[0]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {m for m in _imports(name, path) if m in mods} for name, path in mods.items()}


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up or sideways between layers."""
    bad = []
    for name, deps in graph.items():
        mine = _layer(name)
        for dep in deps:
            theirs = _layer(dep)
            if theirs != mine and theirs not in ALLOWED.get(mine, set()) and dep != "realtime":
                bad.append(f"{name} ({mine}) imports {dep} ({theirs})")
    return sorted(bad)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A chain of modules that imports its own start, or None. A package importing its own
    submodules (and they it, for a shared name) is not counted."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def related(a: str, b: str) -> bool:
        return a == b or a.startswith(b + ".") or b.startswith(a + ".")

    def visit(node: str):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if related(node, dep):
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_every_module_sits_in_a_layer():
    for name in _modules():
        assert _layer(name) in ALLOWED or name == "realtime", name


def test_imports_point_down_the_layers():
    assert violations(_graph()) == []


def test_no_import_cycles():
    assert find_cycle(_graph()) is None


def test_the_checks_catch_what_they_forbid():
    assert violations({"engines.x": {"export.cli"}, "realtime.io.a": {"realtime.pipeline.worker"},
                       "realtime.app.b": {"realtime.io.camera"}}) == [
        "engines.x (engines) imports export.cli (export)",
        "realtime.io.a (realtime.io) imports realtime.pipeline.worker (realtime.pipeline)"]
    assert find_cycle({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}}) == ["a.x", "a.y", "a.z", "a.x"]
    assert find_cycle({"a": {"a.x"}, "a.x": {"a"}}) is None  # a package and its own module
    # Function-level and relative imports are seen too.
    assert "realtime.app.inputs" in _imports("realtime.app.session", ROOT / "realtime/app/session.py")
    assert "engines.artifacts" in _imports("engines", ROOT / "engines/__init__.py")
