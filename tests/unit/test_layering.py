"""The import graph runs one way (DESIGN.md): no module imports, even inside a function, one
that imports it back, and only the app factory reaches into ``admin/``.

Imports inside functions count: they are how a cycle is usually hidden, and they still tie the
two modules together."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("idp", "admin", "connectors")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(name: str) -> str | None:
    """The project module a dotted name lives in (the longest known prefix)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                # ``from pkg import sub`` depends on pkg.sub when that is a module, else on pkg.
                candidate = f"{source}.{alias.name}"
                targets.add(candidate if candidate in MODULES else source)
    owners = {_owner(target) for target in targets}
    owners.discard(None)
    owners.discard(module)
    return owners  # type: ignore[return-value]


GRAPH = {module: imports_of(module) for module in MODULES}


def _cycles() -> list[tuple[list[str], list[str]]]:
    """Strongly connected components of more than one module (Tarjan), each shown as one
    concrete cycle through its members."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return [(_one_cycle(component), component) for component in components]


def _one_cycle(component: list[str]) -> list[str]:
    """A shortest path from the component's first member back to itself."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(GRAPH[node] & members):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    return component


def test_the_walker_sees_function_level_and_relative_imports():
    assert "idp.models" in GRAPH["idp.accounts"]
    assert all(MODULES), MODULES


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "import cycles (one cycle per tangle, then every module in it):\n" + (
        "\n".join(f"{' -> '.join(cycle)}\n    [{', '.join(sorted(set(members)))}]"
                  for cycle, members in cycles))


def test_only_the_app_factory_imports_admin():
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if not module.startswith("admin") and module != "idp"
        for target in targets
        if target == "admin" or target.startswith("admin."))
    assert not offenders, "\n".join(offenders)
