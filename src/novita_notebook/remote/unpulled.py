"""Files on an instance that exist nowhere else yet: what runs wrote (and pushes put there,
which may have been changed since) after the last pull. Kept in ``remote-files.json`` in the
ledger directory, per API URL and instance; a pull of a folder clears what lies under it.

``warning(...)`` is what the guard and the lifecycle calls say before a stop or a delete: the
folders, who wrote them, and the pull call that brings them back.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jsonfile import JsonFile, scope_of

__all__ = ["Written", "note_written", "note_pulled", "unpulled", "warning", "forget"]

FILES_FILE = "remote-files.json"


@dataclass(frozen=True)
class Written:
    """A folder or file on the instance written by ``by`` ("run r-12", "push") at ``at``."""

    path: str
    by: str
    at: float


def _normal(path: str) -> str:
    """One spelling per remote path: ``~/a/`` and ``a`` are the same place."""
    if path == "~" or path.startswith("~/"):
        path = path[2:]
    path = posixpath.normpath(path or ".")
    return "." if path in ("", ".") else path


def _under(path: str, folder: str) -> bool:
    if folder == ".":
        return not path.startswith("/")
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def note_written(
    api_url: str, instance_id: str, path: str, by: str, directory: Path | None = None
) -> None:
    """Note that ``by`` wrote ``path`` on the instance (a run's output folder, a push)."""
    path = _normal(path)

    def change(entries: dict[str, Any]) -> None:
        written = entries.setdefault(instance_id, {})
        written[path] = {"by": by, "at": time.time()}

    JsonFile(FILES_FILE, directory).update(scope_of(api_url), change)


def note_pulled(api_url: str, instance_id: str, path: str, directory: Path | None = None) -> None:
    """A pull brought ``path`` back: what lies under it is safe here."""
    store = JsonFile(FILES_FILE, directory)
    if not store.path.exists():
        return
    folder = _normal(path)

    def change(entries: dict[str, Any]) -> None:
        written = entries.get(instance_id)
        if isinstance(written, dict):
            for key in [k for k in written if _under(k, folder)]:
                del written[key]
            if not written:
                del entries[instance_id]

    store.update(scope_of(api_url), change)


def unpulled(api_url: str, instance_id: str, directory: Path | None = None) -> list[Written]:
    """What was written on the instance since it was last pulled, oldest first."""
    store = JsonFile(FILES_FILE, directory)
    written = store.read(scope_of(api_url)).get(instance_id) if store.path.exists() else None
    if not isinstance(written, dict):
        return []
    found = [
        Written(path, str(entry.get("by") or "?"), float(entry.get("at") or 0))
        for path, entry in written.items()
        if isinstance(entry, dict)
    ]
    return sorted(found, key=lambda w: w.at)


def forget(api_url: str, instance_id: str, directory: Path | None = None) -> None:
    """The instance is deleted: nothing of it is left to pull."""
    store = JsonFile(FILES_FILE, directory)
    if store.path.exists():
        store.update(scope_of(api_url), lambda entries: entries.pop(instance_id, None))


def warning(
    api_url: str,
    instance_id: str,
    name: str | None = None,
    action: str = "stop",
    directory: Path | None = None,
) -> str | None:
    """The sentence to show before ``action`` ("stop", "delete"): which files were written
    there since the last pull and the call that brings them back; None when there are none."""
    found = unpulled(api_url, instance_id, directory)
    if not found:
        return None
    who = name or instance_id
    listed = ", ".join(f"{w.path} ({w.by})" for w in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    calls = "; ".join(f"novita.pull({who!r}, {w.path!r})" for w in found[:3])
    fate = (
        "a delete removes them for good"
        if action == "delete"
        else "a stop keeps the disk only for a while, and a spot reclaim or a delete loses it"
    )
    return (
        f"{who} has files written since the last pull: {listed}{more}; {fate}. "
        f"Bring them back first: {calls}"
    )
