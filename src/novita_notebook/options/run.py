"""What ``Novita.run(instance, code, ...)`` takes, declared once: running code on an instance
over SSH, detached or not, with values sent before and fetched after. The flags of the first line
of ``%%novita run`` are generated from here like every other family's (the cell below is code,
so there are no cell keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..validation import invalid
from . import kinds
from .schema import Family, Kind, Option

__all__ = ["RUN", "parse_names"]


def parse_names(value: Any, field: str) -> list[str]:
    """Python variable names: one, a comma-separated text or a list."""
    items = [part for part in value.split(",")] if isinstance(value, str) else value
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise invalid(field, f"must be variable names like 'df, model', got {value!r}")
    names = []
    for item in items:
        if not isinstance(item, str) or not item.strip().isidentifier():
            raise invalid(field, f"must be Python variable names, got {item!r}")
        names.append(item.strip())
    if not names:
        raise invalid(field, "must name at least one variable")
    return names


def _put(value: Any, field: str) -> dict[str, Any] | list[str]:
    """``{name: value}`` to send, or names the caller resolves in its own namespace."""
    if isinstance(value, Mapping):
        parse_names(list(value), field)
        return dict(value)
    return parse_names(value, field)


def _names_text(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return value


RUN = Family(
    "run",
    "run(): running code on an instance (Novita.run keywords and the magic's flags)",
    (
        Option(
            "detach",
            kinds.SWITCH,
            "return at once; the run goes on after the kernel or the connection ends",
            default=False,
            flag="--detach",
        ),
        Option(
            "put",
            Kind("names", _put, _names_text, metavar="NAME[,NAME]", example="df, model"),
            "values to send first: {name: value}, or names of your variables",
            flag="--put",
            repeat=True,
        ),
        Option(
            "get",
            Kind("names", parse_names, _names_text, metavar="NAME[,NAME]", example="result"),
            "variables to fetch back when the run ends",
            flag="--get",
            repeat=True,
        ),
        Option(
            "python",
            kinds.text("must be an interpreter name or path like 'python3'", example="python3"),
            "the interpreter on the instance (default python3)",
            flag="--python",
        ),
        Option(
            "shell",
            kinds.SWITCH,
            "run the code as a shell script (images without Python; no put or get)",
            default=False,
            flag="--shell",
        ),
        Option(
            "timeout",
            kinds.DURATION,
            "stop the run after this long (None: no limit)",
            flag="--timeout",
        ),
        Option(
            "env",
            kinds.ENVS,
            "environment variables for the run: A=1, B=2 (a dict in Python)",
            flag="--env",
            repeat=True,
        ),
        Option(
            "max_output",
            kinds.size(0, 1_000_000_000, example="1000000"),
            "characters of output shown here (the whole log stays on the instance)",
            default=1_000_000,
        ),
    ),
)
