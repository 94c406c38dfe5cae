"""What ``Novita.push`` and ``Novita.pull`` take besides the paths, declared once: the
``.gitignore`` lines to leave out, whether the default ignore list applies, and whether unchanged
files are compared by content. The ``%novita push``/``pull`` flags are generated from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..validation import invalid
from . import kinds
from .schema import Family, Kind, Option

__all__ = ["FILES"]


def _patterns(value: Any, field: str) -> list[str]:
    """``.gitignore`` lines: one text (a pattern a line) or a list of texts."""
    if isinstance(value, str):
        lines = value.splitlines()
    elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        lines = list(value)
    else:
        raise invalid(
            field, f"must be .gitignore patterns (text or a list of texts), got {value!r}"
        )
    for line in lines:
        if not isinstance(line, str) or "\0" in line:
            raise invalid(
                field, f"must be .gitignore patterns (text or a list of texts), got {line!r}"
            )
    return [line for line in lines if line.strip()]


def _pattern_text(value: Any) -> Any:
    """A flag gives one pattern (commas and spaces are part of it)."""
    return [value] if isinstance(value, str) else value


FILES = Family(
    "files",
    "push() and pull(): files and folders to and from an instance over SFTP",
    (
        Option(
            "ignore",
            Kind("patterns", _patterns, _pattern_text, metavar="PATTERN", example="*.ckpt"),
            "paths to leave out, in .gitignore syntax (added to the default list)",
            flag="--ignore",
            repeat=True,
        ),
        Option(
            "default_ignore",
            kinds.SWITCH,
            "leave out .git, virtual environments and caches (False: send everything)",
            default=True,
        ),
        Option(
            "no_default_ignore",
            kinds.SWITCH,
            "send .git, virtual environments and caches too (default_ignore=False in Python)",
            default=False,
            flag="--no-default-ignore",
            python=False,
        ),
        Option(
            "checksum",
            kinds.SWITCH,
            "compare file contents, not size and time, to find unchanged files",
            default=False,
            flag="--checksum",
        ),
    ),
)
