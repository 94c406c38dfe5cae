"""Test helpers: the sandbox's own view of instances (not the client's)."""

from __future__ import annotations

import time
from typing import Any

import requests


def sandbox_instances(sandbox: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Every instance the sandbox lists (all pages), optionally with this exact name."""
    found: list[dict[str, Any]] = []
    page = 0
    while True:
        answer = requests.get(
            sandbox.api_url + "/gpu/instances",
            params={"pageSize": 100, "pageNum": page},
            headers={"Authorization": f"Bearer {sandbox.api_key}"},
            timeout=10,
        ).json()
        batch = answer.get("instances") or []
        found.extend(batch)
        if len(batch) < 100:
            break
        page += 1
    return [raw for raw in found if name is None or raw.get("name") == name]


def live_named(sandbox: Any, name: str) -> list[dict[str, Any]]:
    gone = {"removed", "toRemove", "removing"}
    return [raw for raw in sandbox_instances(sandbox, name) if raw.get("status") not in gone]


def novita_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if not r["path"].startswith("/_sandbox")]


def wait_until(check: Any, timeout: float = 20.0, every: float = 0.1) -> Any:
    """Poll ``check()`` until it returns something truthy; that value, or AssertionError."""
    ends = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > ends:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
