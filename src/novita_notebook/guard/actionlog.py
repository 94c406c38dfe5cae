"""The guard's action log (``guard-actions.jsonl``): one JSON line per warning, action, loss
and failure, with its time, reason, actor and result; lines that cannot be read are skipped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..files import atomic_write_text, read_json_lines
from .records import scope_url

__all__ = ["ActionLog", "LOG_FILE", "LOG_MAX_BYTES"]

LOG_FILE = "guard-actions.jsonl"
#: The action log is trimmed to its newer half when it grows past this size.
LOG_MAX_BYTES = 2_000_000


class ActionLog:
    """The action log of one API URL (None: every URL) at ``path``. Writers hold the guard
    store's lock (GuardStore.log_action), so appends and trims never interleave."""

    def __init__(self, path: Path, api_url: str | None) -> None:
        self.path = path
        self.api_url = api_url

    def entry(
        self, instance_id: str, action: str, reason: str, actor: str, result: str, **extra: Any
    ) -> dict[str, Any]:
        return {
            "time": datetime.now(UTC).isoformat(),
            "instance_id": instance_id,
            "api_url": self.api_url,
            "action": action,
            "reason": reason,
            "actor": actor,
            "result": result,
            **{k: v for k, v in extra.items() if isinstance(v, str | int | float | bool | None)},
        }

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Append entries (the caller holds the lock); trimmed past LOG_MAX_BYTES."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
        with open(self.path, "a", encoding="utf-8", errors="replace") as file:
            file.write(text)
        if self.path.stat().st_size > LOG_MAX_BYTES:
            lines = [line for line, entry in read_json_lines(self.path) if entry is not None]
            atomic_write_text(self.path, "".join(line + "\n" for line in lines[len(lines) // 2 :]))

    def read(self, instance_id: str | None = None, limit: int | None = None) -> list[dict]:
        """Entries of this API URL, oldest first (unreadable lines are skipped)."""
        out = []
        for _, entry in read_json_lines(self.path):
            if entry is None:
                continue
            if self.api_url is not None and scope_url(entry.get("api_url")) != self.api_url:
                continue
            if instance_id is None or entry.get("instance_id") == instance_id:
                out.append(entry)
        return out[-limit:] if limit else out
