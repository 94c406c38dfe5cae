"""Contract fixtures and the type schema derived from them: load a fixture, derive field → type
(nested), and compare a real response against it in both directions (missing, unknown, type).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"

# Type names of the schema. "digits" is a string of decimal digits (prices, timestamps, sizes
# in list views); "string" is any other string. A fixture "number" accepts int and float.
_SCALARS = {bool: "bool", int: "int", float: "number", type(None): "null"}


def load(name: str) -> dict[str, Any]:
    """One fixture file: {_source, request, status, response, nullable?, optional?, freeform?}."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def scalar_type(value: Any) -> str:
    if isinstance(value, str):
        return "digits" if value.isdigit() else "string"
    return _SCALARS.get(type(value), type(value).__name__)


def derive(value: Any) -> Any:
    """The schema of a JSON value: a type name, {"object": {...}} or {"array": item schema}.
    Items of an array merge (fields of every item); an empty array has item schema None."""
    if isinstance(value, dict):
        return {"object": {key: derive(item) for key, item in value.items()}}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _merge(merged, derive(item))
        return {"array": merged}
    return scalar_type(value)


def _merge(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:  # an empty array's item schema adds nothing
        return a
    if isinstance(a, dict) and isinstance(b, dict) and "object" in a and "object" in b:
        fields = dict(a["object"])
        for key, sub in b["object"].items():
            fields[key] = _merge(fields.get(key), sub)
        return {"object": fields}
    if isinstance(a, dict) and isinstance(b, dict) and "array" in a and "array" in b:
        return {"array": _merge(a["array"], b["array"])}
    return a if a == b else sorted({str(a), str(b)})  # a union of scalar types


def _accepts(expected: Any, actual: str, nullable: bool) -> bool:
    allowed = set(expected) if isinstance(expected, list) else {expected}
    if nullable:
        allowed.add("null")
    if "string" in allowed:
        allowed.add("digits")  # a general string may happen to be all digits
    if "number" in allowed:
        allowed.add("int")
    return actual in allowed


def compare(
    fixture_schema: Any,
    value: Any,
    *,
    nullable: set[str] = frozenset(),  # type: ignore[assignment]
    optional: set[str] = frozenset(),  # type: ignore[assignment]
    freeform: set[str] = frozenset(),  # type: ignore[assignment]
    path: str = "",
) -> list[str]:
    """Differences between a response and the fixture's schema, both directions. Paths look
    like ``data[].regions`` ("" is the top level)."""
    problems: list[str] = []
    where = path or "<top>"
    if value is None and path in nullable:
        return problems
    if isinstance(fixture_schema, dict) and "object" in fixture_schema:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {scalar_type(value)}"]
        if path in freeform:
            return problems
        expected = fixture_schema["object"]
        for key, sub in expected.items():
            child = f"{path}.{key}" if path else key
            if key not in value:
                if child not in optional:
                    problems.append(f"{child}: missing")
                continue
            problems += compare(
                sub, value[key], nullable=nullable, optional=optional, freeform=freeform, path=child
            )
        for key in value:
            if key not in expected:
                problems.append(f"{path + '.' if path else ''}{key}: unknown field")
        return problems
    if isinstance(fixture_schema, dict) and "array" in fixture_schema:
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {scalar_type(value)}"]
        if fixture_schema["array"] is None:
            return problems  # the fixture's example list is empty: items unconstrained
        for item in value:
            problems += compare(
                fixture_schema["array"],
                item,
                nullable=nullable,
                optional=optional,
                freeform=freeform,
                path=f"{path}[]",
            )
            if problems:
                break  # one bad item is enough to report
        return problems
    actual = scalar_type(value)
    if not _accepts(fixture_schema, actual, path in nullable):
        problems.append(f"{where}: expected {fixture_schema}, got {actual} ({value!r:.40})")
    return problems


def check(fixture: dict[str, Any], response_body: Any) -> list[str]:
    """Compare a response body with a loaded fixture (its response, nullable, optional)."""
    return compare(
        derive(fixture["response"]),
        response_body,
        nullable=set(fixture.get("nullable", ())),
        optional=set(fixture.get("optional", ())),
        freeform=set(fixture.get("freeform", ())),
    )
