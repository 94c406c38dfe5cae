"""Text typed in notebooks turned into ``Novita.create`` arguments: the ``%%novita create`` cell
(one ``key: value`` per line) and the create form's fields. The keys and every value's rule
come from the option families (options/create.py and options/guard.py): a value typed here is
read exactly as the same value given to a flag, to Python or to ``%config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..options import Family, Option
from ..validation import BILLING_METHODS
from .parser import CREATE_FLAGS

__all__ = [
    "BILLING_METHODS",
    "CELL_KEYS",
    "cell_values",
    "values_of",
    "parse_cell_spec",
    "parse_text_options",
    "normalise_create_kwargs",
    "field_problem",
]

_BY_NAME: dict[str, Option] = {option.name: option for option in CREATE_FLAGS}
#: create's options and the guard rules, as one family (what a cell and the form take).
_CREATE_AND_RULES = Family("create+guard", "create() with its guard rules", CREATE_FLAGS)
#: Cell keys → option name (every option of create with a cell key, and its aliases).
CELL_KEYS: dict[str, str] = {
    spelling: option.name for option in CREATE_FLAGS if option.cell for spelling in option.spellings
}


def cell_values(body: str) -> dict[str, tuple[int, str]]:
    """``key: value`` lines of a cell → {option name: (line number, raw value)}; every line's
    mistake (no colon, YAML list, unknown or repeated key) names the line."""
    seen: dict[str, tuple[int, str]] = {}
    for number, raw_line in enumerate(body.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("- ") or line == "-":
            raise ValidationError(
                f"line {number} {line!r}: YAML lists are not supported; give a list on one "
                "line, comma-separated (regions: AS-SGP-02, CN-HK-01)",
                field="cell",
            )
        if ":" not in line:
            raise ValidationError(
                f"line {number} {line!r} must look like 'key: value'", field="cell"
            )
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower().replace("-", "_")
        if key not in CELL_KEYS:
            raise ValidationError(
                f"unknown key {key!r} on line {number}; known keys: {', '.join(CELL_KEYS)}",
                field=key,
            )
        target = CELL_KEYS[key]
        if target in seen:
            first = seen[target][0]
            raise ValidationError(
                f"{key!r} is given twice, on line {first} and line {number}; keep one",
                field=target,
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        seen[target] = (number, value)
    return seen


def values_of(lines: Mapping[str, tuple[int, Any]]) -> dict[str, Any]:
    """{option: (line number, value)} → {option: value}."""
    return {key: value for key, (_number, value) in lines.items()}


def parse_text_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """Create options given as text (a cell, the form) or already typed by a flag, each by
    its option's rule; one ValidationError lists every problem."""
    text = {k: v for k, v in values.items() if k in _CREATE_AND_RULES and isinstance(v, str)}
    out = {k: v for k, v in values.items() if k not in text}
    out.update(_CREATE_AND_RULES.parse(text, text=True))
    return {k: v for k, v in out.items() if v is not None}


def normalise_create_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A create spec as text → checked keyword arguments; a name and a gpu (or template) are
    required."""
    out = parse_text_options(spec)
    if "name" not in out:
        raise ValidationError("a create spec needs a name (name: my-box)", field="name")
    if "gpu" not in out and "template" not in out:
        raise ValidationError(
            "a create spec needs a gpu (gpu: RTX 4090) or a template", field="gpu"
        )
    return out


def parse_cell_spec(body: str) -> dict[str, Any]:
    """The ``%%novita`` body, one ``key: value`` per line (``#`` comments and blank lines
    ignored) → keyword arguments for ``Novita.create`` with values parsed and checked."""
    return normalise_create_kwargs(values_of(cell_values(body)))


def field_problem(name: str, text: Any) -> str | None:
    """Why ``text`` cannot be create's option ``name`` (its rule's words), or None."""
    option = _BY_NAME[name]
    try:
        option.parse_text(text)
    except ValidationError as error:
        return error.problems[0][1] if error.problems else error.message
    return None
