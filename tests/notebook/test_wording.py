"""In a %novita line, what the library says speaks the magic's language: every hint written in
the package, shown by the magics, names flags and %novita commands, not Python calls (except
actions only Python has: templates, registry credentials and remote runs)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from novita_notebook.notebook.wording import in_magic_terms

ROOT = Path(__file__).resolve().parents[2] / "src" / "novita_notebook"
#: What only Python does (no magic yet): templates, registry credentials and work over SSH.
PYTHON_ONLY = (
    "create_template",
    "create_registry_auth",
    "forget_host_key",
    ".run(",
    ".runs(",
    ".attach(",
    ".kernel(",
    "install=",
)
PYTHON_CALL = re.compile(r"\b(?:client|novita|Novita)\.\w+\(|\b[a-z_]+=")


def _text(node: ast.AST) -> str | None:
    """The text of a string or f-string (its placeholders as ``X``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) or "X" for v in node.values)
    if isinstance(node, ast.BinOp):
        return (_text(node.left) or "") + (_text(node.right) or "")
    return None


def _hints() -> list[str]:
    found = []
    for path in ROOT.rglob("*.py"):
        if "sandbox" in path.relative_to(ROOT).parts or "notebook" in path.parts[-2:-1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "hint"
                or isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "default_hint" for t in node.targets)
            ):
                text = _text(node.value)
            else:
                continue
            if text:
                found.append(text)
    return found


HINTS = _hints()


def test_the_hints_are_found():
    assert len(HINTS) > 15


@pytest.mark.parametrize("hint", HINTS)
def test_a_hint_in_magic_terms_names_no_python_call(hint):
    shown = in_magic_terms(hint, fields=False)
    left = [m.group(0) for m in PYTHON_CALL.finditer(shown)]
    left = [call for call in left if not any(name in call for name in PYTHON_ONLY)]
    assert left == [], shown


def test_a_field_becomes_its_flag_on_a_line():
    assert in_magic_terms("max_price: must be a positive number") == (
        "--max-price: must be a positive number"
    )
    assert in_magic_terms("2 invalid arguments:\n  - gpu_num: x\n  - stop_after: y") == (
        "2 invalid arguments:\n  - --gpu-num: x\n  - --stop-after: y"
    )
    assert in_magic_terms("max_price: x", fields=False) == "max_price: x"
