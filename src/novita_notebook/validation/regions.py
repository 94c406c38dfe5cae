"""The grammar for regions and the one region resolver: a region is named by its name
(``AS-SGP-02``) or its cluster id (``as-sgp-2``), case-insensitive; ``regions`` lists several in
order (a list, ``"A, B"`` text, or a ``{name: priority}`` dict).

``match_region`` is the only place a typed region is looked up among the API's clusters; the
catalog, the offer ordering and volumes all ask it, so every surface refuses an unknown region
in the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from .durations import invalid

__all__ = [
    "REGION_RULE",
    "parse_region",
    "check_regions",
    "region_keys",
    "match_region",
    "NamedRegion",
]

REGION_RULE = "must be a region name like 'AS-SGP-02' or a cluster id"


class NamedRegion(Protocol):
    """What the resolver needs of a cluster: its id and its name."""

    id: str
    name: str


R = TypeVar("R", bound=NamedRegion)


def parse_region(value: Any, field: str = "region") -> str | None:
    """One region by name or id (stripped); None means "not given". Whether the API knows it
    is match_region's question."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, f"{REGION_RULE}, got {value!r}")
    return value.strip()


def _problems(value: Any) -> tuple[list[str], list[str]]:
    """(keys in order, rules broken) of a ``regions`` value."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    rules: list[str] = []
    if isinstance(value, Mapping):
        for key, priority in value.items():
            if isinstance(priority, bool) or not isinstance(priority, int | float):
                rules.append(f"priority of {key!r} must be a number, got {priority!r}")
        if rules:
            return [], rules
        keys = [key for key, _ in sorted(value.items(), key=lambda item: item[1])]
    elif isinstance(value, list | tuple):
        keys = list(value)
    else:
        return [], [f"must be a list of region names or a {{name: priority}} dict, got {value!r}"]
    if not keys:
        rules.append("must name at least one region")
    for key in keys:
        if not isinstance(key, str) or not key.strip():
            rules.append(f"entry {key!r} must be a region name like 'AS-SGP-02'")
    return [k.strip() for k in keys if isinstance(k, str)], rules


def check_regions(value: Any, problems: Any) -> None:
    """Record every broken rule of a ``regions`` value in ``problems`` (None: not given)."""
    if value is None:
        return
    for rule in _problems(value)[1]:
        problems.add("regions", rule)


def region_keys(value: Any, field: str = "regions") -> list[str] | None:
    """A ``regions`` value as the names or ids to try, in order (a dict by priority); None
    when not given; a ValidationError with the first broken rule otherwise."""
    if value is None:
        return None
    keys, rules = _problems(value)
    if rules:
        raise invalid(field, rules[0])
    return keys


def match_region(clusters: Iterable[R], key: Any, field: str = "region") -> R:
    """The cluster whose name or id is ``key`` (case-insensitive), else a ValidationError
    listing the regions the API knows."""
    known: Sequence[R] = list(clusters)
    text = parse_region(key, field)
    wanted = (text or "").upper()
    for cluster in known:
        if wanted in (str(cluster.id).upper(), str(cluster.name).upper()):
            return cluster
    names = ", ".join(f"{c.name} ({c.id})" for c in sorted(known, key=lambda c: str(c.name)))
    raise invalid(field, f"unknown region {key!r}; known regions: {names or 'none listed'}")
