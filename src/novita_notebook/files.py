"""Small files the package keeps (ledger, phase history): written by atomic replace, so a
reader sees the old file or the new one, never half of one. Imports only the standard library.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

__all__ = ["atomic_write_text", "move_aside"]


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
