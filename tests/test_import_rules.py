"""The house rules for imports, read from the source with ``ast`` (nothing is imported):
only notebook/ touches IPython or ipywidgets, the sandbox and the client share no code, the
leaves import nothing above them, and the client side has no import cycle.

An import counts wherever it is written (module level or inside a function: a lazy import
still runs). Imports under ``if TYPE_CHECKING:`` never run, so they do not count for cycles,
but they do count for the leaf rule (a leaf should not even name what sits above it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "novita_notebook"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE
LEAVES = {"errors", "money", "models", "parsing", "columns", "config", "validation", "vocabulary"}
NOTEBOOK_ONLY = ("IPython", "ipywidgets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute dotted name of a (possibly relative) ``from ... import``."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str) -> list[tuple[str, bool]]:
    """(imported absolute module, only under TYPE_CHECKING) for every import in ``module``."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                # ``from . import html`` imports a module; ``from .models import X`` a name.
                found.append((submodule if submodule in MODULES else target, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


def _top(module: str) -> str:
    """``novita_notebook.sandbox.app`` → ``sandbox``; ``novita_notebook.models`` → ``models``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _ours(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def test_only_notebook_imports_ipython_or_ipywidgets():
    offenders = [
        f"{module} imports {target}"
        for module in MODULES
        if _top(module) != "notebook"
        for target, typing_only in imports_of(module)
        if not typing_only and target.split(".")[0] in NOTEBOOK_ONLY
    ]
    assert offenders == []


def test_sandbox_and_client_share_no_code():
    offenders = []
    for module in MODULES:
        in_sandbox = _top(module) == "sandbox"
        for target, _typing_only in imports_of(module):
            if not _ours(target) or target == PACKAGE:
                continue
            if in_sandbox != (_top(target) == "sandbox"):
                offenders.append(f"{module} imports {target}")
    # The package root and the CLI may start the sandbox (lazily): they are the entry points.
    allowed = {f"{PACKAGE}.client", f"{PACKAGE}.cli", f"{PACKAGE}.demo", PACKAGE}
    offenders = [o for o in offenders if o.split(" imports ")[0] not in allowed]
    assert offenders == []


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_nothing_above_them(leaf):
    module = f"{PACKAGE}.{leaf}"
    above = [
        target
        for target, _typing_only in imports_of(module)
        if _ours(target) and target != PACKAGE and _top(target) not in LEAVES
    ]
    assert above == [], f"{leaf} imports {above}"


def _client_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        if _top(module) == "sandbox":
            continue
        graph[module] = {
            target
            for target, typing_only in imports_of(module)
            if not typing_only and target in MODULES and target != module and target != PACKAGE
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return found


def test_client_side_has_no_import_cycle():
    assert _cycles(_client_graph()) == []


def test_the_rules_see_what_they_check():
    """The reader resolves relative imports: a test that reads nothing cannot fail."""
    client = dict(imports_of(f"{PACKAGE}.client"))
    assert f"{PACKAGE}.catalog" in client and f"{PACKAGE}.provisioning" in client
    assert (f"{PACKAGE}.html", False) in imports_of(f"{PACKAGE}.provisioning.report")
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
