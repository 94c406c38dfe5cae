"""What keeps an instance busy whatever its GPU says: a remote kernel running a cell, a run
that has not ended. Marks live in ``remote-activity.json`` in the ledger directory, so the
guard process sees what every kernel of this user is doing; the idle rule asks ``busy()``
before it stops anything.

A mark may name the local process that holds it (``pid``): when that process is gone the
mark is stale and ignored, so a crashed notebook cannot keep an instance awake forever. A
mark without a pid (a detached run) lasts until it is cleared or ``max_age`` passes.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jsonfile import JsonFile, scope_of

__all__ = ["Busy", "mark_busy", "mark_idle", "busy", "busy_reason", "what_keeps_busy"]

ACTIVITY_FILE = "remote-activity.json"
#: A mark without a live holder to check is trusted this long at most.
DEFAULT_MAX_AGE = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Busy:
    """One thing keeping an instance busy: ``what`` says it in words, ``since`` is unix time."""

    key: str
    what: str
    since: float

    def __str__(self) -> str:
        return f"{self.what} (since {time.strftime('%H:%M:%S', time.localtime(self.since))})"


def _file(directory: Path | None) -> JsonFile:
    return JsonFile(ACTIVITY_FILE, directory)


def mark_busy(
    api_url: str,
    instance_id: str,
    key: str,
    what: str,
    *,
    pid: int | None = None,
    max_age: float = DEFAULT_MAX_AGE,
    directory: Path | None = None,
) -> None:
    """Note that ``key`` (``"kernel <id>"``, ``"run <id>"``) keeps the instance busy."""
    entry = {"what": what, "since": time.time(), "pid": pid, "host": socket.gethostname(),
             "max_age": max_age}  # fmt: skip

    def change(entries: dict[str, Any]) -> None:
        marks = entries.setdefault(instance_id, {})
        marks[key] = entry

    _file(directory).update(scope_of(api_url), change)


def mark_idle(api_url: str, instance_id: str, key: str, directory: Path | None = None) -> None:
    """``key`` no longer keeps the instance busy."""
    store = _file(directory)
    if not store.path.exists():
        return

    def change(entries: dict[str, Any]) -> None:
        marks = entries.get(instance_id)
        if isinstance(marks, dict):
            marks.pop(key, None)
            if not marks:
                del entries[instance_id]

    store.update(scope_of(api_url), change)


def _live(mark: Any, now: float) -> bool:
    if not isinstance(mark, dict) or not isinstance(mark.get("since"), int | float):
        return False
    if now - mark["since"] > float(mark.get("max_age") or DEFAULT_MAX_AGE):
        return False
    pid = mark.get("pid")
    if isinstance(pid, int) and mark.get("host") == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process with that pid: it is alive
    return True


def busy(api_url: str, instance_id: str, directory: Path | None = None) -> list[Busy]:
    """What keeps the instance busy now (stale marks left out), oldest first."""
    store = _file(directory)
    marks = store.read(scope_of(api_url)).get(instance_id) if store.path.exists() else None
    if not isinstance(marks, dict):
        return []
    now = time.time()
    found = [
        Busy(key, str(mark.get("what") or key), float(mark["since"]))
        for key, mark in marks.items()
        if _live(mark, now)
    ]
    return sorted(found, key=lambda b: b.since)


def busy_reason(api_url: str, instance_id: str, directory: Path | None = None) -> str | None:
    """One line saying why the instance is busy, or None (what the idle rule notes)."""
    found = busy(api_url, instance_id, directory)
    return "; ".join(str(b) for b in found) or None


def what_keeps_busy(api_url: str, instance_id: str) -> str | None:
    """Everything that keeps the instance busy whatever its GPU says, in one line: kernels
    running a cell and runs that may still be running (the guard's idle rule and its warning
    before a stop or delete both say it); None when nothing does."""
    from .store import busy_instances

    runs = busy_instances(api_url).get(instance_id)
    reasons = [busy_reason(api_url, instance_id)]
    reasons.append(f"active runs: {', '.join(runs)}" if runs else None)
    return "; ".join(r for r in reasons if r) or None
