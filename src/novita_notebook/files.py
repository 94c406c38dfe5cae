"""Small files the package keeps (ledger, guard store, phase history): written by atomic replace,
so a reader sees the old file or the new one, never half of one; read so that bytes that are
not UTF-8 or a file cut short lose only the records they touch. Imports only the standard library.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_text",
    "move_aside",
    "read_text_marked",
    "has_bad_bytes",
    "recover_objects",
    "read_json_lines",
]

#: What ``surrogateescape`` turns a byte that is not UTF-8 into: a lone low surrogate.
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then replace ``path``."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def move_aside(path: Path) -> Path:
    """Rename an unreadable ``path`` to ``<name>.corrupt-<time>[-n]`` beside it (kept for a
    person to look at) and return the new path."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    counter = 1
    while aside.exists():
        aside = aside.with_name(f"{aside.name}-{counter}")
        counter += 1
    os.replace(path, aside)
    return aside


def read_text_marked(data: bytes) -> str:
    """The file's text with every byte that is not UTF-8 kept as a lone surrogate (never an
    exception): ``has_bad_bytes`` finds them in whatever part of the text is used."""
    return data.decode("utf-8", errors="surrogateescape")


def has_bad_bytes(value: Any) -> bool:
    """Does a decoded value (text, or lists and dicts of it) hold bytes that were not UTF-8?"""
    if isinstance(value, str):
        return _BAD_BYTE.search(value) is not None
    if isinstance(value, dict):
        return any(has_bad_bytes(k) or has_bad_bytes(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_bad_bytes(v) for v in value)
    return False


def recover_objects(text: str) -> Iterator[tuple[int, int, dict[str, Any] | None]]:
    """Every JSON object that can still be read in a damaged document, outermost first:
    ``(start, end, object)``; a stretch that is not an object comes as ``(start, end, None)``
    (what is lost). Scanning resumes after each object read, so nested objects of a record
    already read are not reported again, while those of a record cut short are."""
    decoder = json.JSONDecoder()
    position = text.find("{")
    lost_from: int | None = None
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            lost_from = position if lost_from is None else lost_from
            position = text.find("{", position + 1)
            continue
        if lost_from is not None:
            yield lost_from, position, None
            lost_from = None
        yield position, end, value if isinstance(value, dict) else None
        position = text.find("{", end)
    if lost_from is not None:
        yield lost_from, len(text), None


def read_json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Each line of a JSON-lines file: ``(text, object or None)``; a line that is not a JSON
    object, or holds bytes that are not UTF-8, comes with None. A missing file has no line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in read_text_marked(data).splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            yield line, None
            continue
        ok = isinstance(value, dict) and not has_bad_bytes(value)
        yield line, value if ok else None
