"""Field paths of JSON answers (``data[].regions``, ``statusError.state``) and the check of a
live answer against the field names the contract fixtures know (``known_fields.KNOWN_FIELDS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .known_fields import KNOWN_FIELDS
from .probe import API_PREFIX

ANY_BELOW = ".*"  # a known path ending so: anything below it is known (free-form objects)


def field_paths(value: Any, prefix: str = "") -> set[str]:
    """Every field path in ``value``: object keys joined by ``.``, list items as ``[]``.
    Keys starting with ``_`` (the fixtures' ``_source`` notes) are not fields."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("_"):
                continue
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= field_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= field_paths(item, f"{prefix}[]")
    return paths


def _open_paths(value: Any, prefix: str = "") -> set[str]:
    """``path.*`` markers for the empty lists of a fixture: their items are unconstrained."""
    marks: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not key.startswith("_"):
                marks |= _open_paths(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        if not value:
            marks.add(f"{prefix}[]{ANY_BELOW}")
        for item in value:
            marks |= _open_paths(item, f"{prefix}[]")
    return marks


def known_from_fixtures(fixtures: Iterable[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """``KNOWN_FIELDS`` as the contract fixtures define it: per ``"GET /path"``, the field
    paths of every 200 answer, plus ``.*`` under free-form objects and empty example lists."""
    known: dict[str, set[str]] = {}
    for fixture in fixtures:
        request = fixture.get("request") or {}
        if fixture.get("status", 200) != 200 or request.get("method", "GET") != "GET":
            continue
        path = str(request.get("path", "")).split("?")[0].removeprefix(API_PREFIX)
        response = fixture.get("response")
        fields = known.setdefault(f"GET {path}", set())
        fields |= field_paths(response) | _open_paths(response)
        fields |= {f"{free}{ANY_BELOW}" for free in fixture.get("freeform", ())}
    return {endpoint: frozenset(fields) for endpoint, fields in known.items()}


def unknown_fields(endpoint: str, answer: Any) -> list[str]:
    """Fields of ``answer`` the fixtures do not know for ``endpoint``: the outermost ones
    only (a new object is one finding, not one per key inside it). [] for unknown endpoints.
    Linear in the answer's size: each path is tested against its few ancestors."""
    known = KNOWN_FIELDS.get(endpoint)
    if known is None:
        return []
    open_below = {p[: -len(ANY_BELOW)] for p in known if p.endswith(ANY_BELOW)}
    outermost: list[str] = []
    reported: set[str] = set()
    for path in sorted(field_paths(answer) - known):  # an ancestor sorts before its children
        if any(top in reported or top in open_below for top in _ancestors(path)):
            continue
        outermost.append(path)
        reported.add(path)
    return outermost


def _ancestors(path: str) -> list[str]:
    """``data[].a.b`` → ``data``, ``data[]``, ``data[].a``: every enclosing field path."""
    found = []
    for i, char in enumerate(path):
        if char == "." or path.startswith("[]", i):
            found.append(path[:i])
    return found
