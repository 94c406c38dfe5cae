"""What the guard tests share: polling a condition until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    """The predicate's first truthy value within ``timeout`` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def process_alive(pid: int | None) -> bool:
    """Is ``pid`` a running process (not gone, not a zombie waiting to be reaped)?"""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def tick_past_deadline(client: Any, api_key: str, instance_id: str) -> None:
    """One tick of a guard (as the guard process runs it) a second after the instance's
    stop deadline."""
    from datetime import timedelta

    from novita_notebook.guard.backend import HttpGuardBackend
    from novita_notebook.guard.enforcer import Enforcer

    store = client.guards.store
    backend = HttpGuardBackend(client.config.api_url, lambda: api_key)
    try:
        deadline = store.get(instance_id).rules.stop_after
        Enforcer(backend, store, actor="test").tick(deadline + timedelta(seconds=1))
    finally:
        backend.close()
