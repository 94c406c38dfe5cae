"""What ``wait()`` and ``watch()`` take, declared once: their keywords and the flags of
``%novita wait`` and ``%novita watch``. A fixed pace set for the whole client is the client
setting ``poll_interval`` (options/client.py).
"""

from __future__ import annotations

from typing import Any

from ..validation import WAIT_TARGETS, invalid
from . import kinds
from .schema import Family, Kind, Option

__all__ = ["WAITING"]


def _poll(value: Any, field: str) -> Any:
    """A Backoff schedule (kept as it is) or a fixed pace in the duration grammar."""
    if hasattr(value, "next_delay") and hasattr(value, "fresh"):
        return value
    try:
        return kinds.DURATION.parse(value, field)
    except Exception:  # noqa: BLE001 - one rule naming both forms
        raise invalid(
            field, f"must be a Backoff or a duration like 2 or '5s' (a fixed pace), got {value!r}"
        ) from None


WAITING = Family(
    "waiting",
    "wait() and watch(): their keywords and the %novita wait / %novita watch flags",
    (
        Option(
            "until",
            kinds.choice(WAIT_TARGETS),
            "what to wait for: running, reachable (running and answering), exited or removed",
            default="running",
            flag="--until",
        ),
        Option(
            "timeout",
            kinds.DURATION,
            "how long to wait before giving up (None: no limit)",
            default=600.0,
            flag="--timeout",
        ),
        Option(
            "progress",
            kinds.PROGRESS,
            "None (live in notebooks, silent elsewhere), 'text', 'silent' or a callable",
        ),
        Option(
            "poll",
            Kind("poll", _poll, kinds.DURATION.from_text, metavar="DURATION", example="5s"),
            "the wait's pace: a Backoff or a fixed duration (default: learned and adaptive)",
        ),
        Option(
            "interval",
            kinds.DURATION,
            "seconds between a watcher's list calls (default: poll_interval, else 5 s)",
            flag="--interval",
        ),
        Option(
            "page_size",
            kinds.size(1, 100, example="100"),
            "instances per page of a watcher's list call",
            default=100,
        ),
        Option(
            "stop_when_terminal",
            kinds.SWITCH,
            "stop watching once every watched instance is exited or gone",
            default=False,
        ),
        Option(
            "keep",
            kinds.SWITCH,
            "keep the session's other live panels running too",
            default=False,
            flag="--keep",
            python=False,
        ),
    ),
)
