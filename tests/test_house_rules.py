"""House rules read from the source with ``ast``: a module over 600 lines says why at its top,
and no function takes its client (or the magics' session) typed as ``Any`` (a protocol says
what it uses, so a reader and an IDE can follow the calls)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "novita_notebook"
MODULES = sorted(p for p in ROOT.rglob("*.py") if "sandbox" not in p.relative_to(ROOT).parts)
LONG = 600
TYPED_ROLES = ("client", "magics")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why_at_its_top(path):
    text = path.read_text(encoding="utf-8")
    if text.count("\n") <= LONG:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert "on purpose" in docstring.lower() or "longer than" in docstring.lower(), (
        f"{path.name} has {text.count(chr(10))} lines and its docstring does not say why"
    )


def _any_typed_roles(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        for argument in arguments:
            annotation = argument.annotation
            typed_any = isinstance(annotation, ast.Name) and annotation.id == "Any"
            if argument.arg in TYPED_ROLES and typed_any:
                found.append(f"{path.name}:{node.lineno} {node.name}({argument.arg}: Any)")
    return found


def test_no_client_is_typed_any():
    offenders = [hit for path in MODULES for hit in _any_typed_roles(path)]
    assert offenders == []


def test_the_readers_see_what_they_check(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("from typing import Any\n\ndef f(client: Any) -> None: ...\n")
    assert _any_typed_roles(sample) == ["m.py:3 f(client: Any)"]
