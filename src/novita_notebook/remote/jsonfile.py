"""A small JSON file in the ledger directory, shared by kernels and processes: read under a file
lock, changed by atomic replace (pinned host keys, the runs). A corrupt file is moved aside.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..config import API_PREFIX
from ..files import atomic_write_text, move_aside
from ..ledger import ledger_dir

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 30.0
T = TypeVar("T")


def scope_of(api_url: str) -> str:
    """One key per API, however its URL is written (with or without the v1 prefix)."""
    url = api_url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


class JsonFile:
    """``{"version": 1, "scopes": {api_url: {key: value}}}`` in the ledger directory."""

    def __init__(self, name: str, directory: Path | None = None) -> None:
        self.name = name
        self._directory = directory

    @property
    def path(self) -> Path:
        return (self._directory or ledger_dir()) / self.name

    def _lock(self) -> Any:
        import filelock

        return filelock.FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)

    def _read(self) -> dict[str, Any]:
        path = self.path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": 1, "scopes": {}}
        except (OSError, ValueError):
            aside = move_aside(path)
            log.warning("%s was unreadable; kept as %s and started afresh", path.name, aside.name)
            return {"version": 1, "scopes": {}}
        if not isinstance(data, dict) or not isinstance(data.get("scopes"), dict):
            return {"version": 1, "scopes": {}}
        return data

    def read(self, scope: str) -> dict[str, Any]:
        """A copy of one scope's entries."""
        if not self.path.exists():
            return {}
        with self._lock():
            entries = self._read()["scopes"].get(scope)
        return dict(entries) if isinstance(entries, dict) else {}

    def update(self, scope: str, change: Callable[[dict[str, Any]], T]) -> T:
        """Apply ``change`` to one scope's entries (a dict it may mutate) under the lock and
        write the result back; returns what ``change`` returned."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock():
            data = self._read()
            entries = data["scopes"].setdefault(scope, {})
            result = change(entries)
            if not entries:
                del data["scopes"][scope]
            atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))
        return result
