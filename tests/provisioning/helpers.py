"""Small helpers shared by the provisioning tests: request counting and sandbox ground truth.
They read the sandbox over its control endpoints or its request log, never the client's view.
"""

from __future__ import annotations

import time
from typing import Any

import requests

PRODUCTS_PATH = "/gpu-instance/openapi/v1/products"
CREATE_PATH = "/gpu-instance/openapi/v1/gpu/instance/create"
GONE = {"toRemove", "removing", "removed"}


def calls(sandbox: Any, path: str, method: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in sandbox.requests()
        if r["path"] == path and (method is None or r["method"] == method)
    ]


def live_instances(sandbox: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Ground truth straight from the sandbox's API (its own HTTP, not the client under test,
    whose breaker or caches could still be reacting to faults): live instances, exact name."""
    items: dict[str, dict[str, Any]] = {}
    for page in range(0, 50):  # 0 first; dedupe by id in case the server is 1-based
        response = requests.get(
            f"{sandbox.api_url}/gpu/instances",
            params={"pageNum": page, "pageSize": 100},
            headers={"Authorization": f"Bearer {sandbox.api_key}"},
            timeout=10,
        )
        response.raise_for_status()
        data = response.json()
        batch = data.get("instances") or []
        items.update({raw["id"]: raw for raw in batch})
        if not batch or len(items) >= int(data.get("total") or 0):
            break
    return [
        raw
        for raw in items.values()
        if raw.get("status") not in GONE and (name is None or raw.get("name") == name)
    ]


def settle(client: Any, instance_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll the API until the instance is running or failed (statusError set)."""
    deadline = time.monotonic() + timeout
    raw: dict[str, Any] = {}
    while time.monotonic() < deadline:
        raw = client.api.get_instance(instance_id)
        error = raw.get("statusError") or {}
        if raw.get("status") == "running" or error.get("message") or error.get("state"):
            return raw
        time.sleep(0.05)
    raise AssertionError(f"instance {instance_id} did not settle: {raw.get('status')}")
