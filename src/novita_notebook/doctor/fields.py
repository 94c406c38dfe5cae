"""Field paths of JSON answers (``data[].regions``, ``statusError.state``) and the check of a
live answer against the field names the contract fixtures know (``known_fields.KNOWN_FIELDS``).
"""

from __future__ import annotations

from typing import Any

from .known_fields import KNOWN_FIELDS


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


def unknown_fields(endpoint: str, answer: Any) -> list[str]:
    """Fields of ``answer`` the fixtures do not know for ``endpoint``: the outermost ones
    only (a new object is one finding, not one per key inside it). [] for unknown endpoints."""
    known = KNOWN_FIELDS.get(endpoint)
    if known is None:
        return []
    new = sorted(field_paths(answer) - set(known))
    outermost: list[str] = []
    for path in new:
        if not any(path.startswith(top + ".") or path.startswith(top + "[]") for top in outermost):
            outermost.append(path)
    return outermost
