"""Small helpers shared by the provisioning tests: request counting and sandbox ground truth.
They read the sandbox over its control endpoints or its request log, never the client's view.
"""

from __future__ import annotations

import time
from typing import Any

PRODUCTS_PATH = "/gpu-instance/openapi/v1/products"
CREATE_PATH = "/gpu-instance/openapi/v1/gpu/instance/create"
GONE = {"toRemove", "removing", "removed"}


def calls(sandbox: Any, path: str, method: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in sandbox.requests()
        if r["path"] == path and (method is None or r["method"] == method)
    ]


def live_instances(client: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Ground truth from the API (faults cleared by the caller): live instances, exact name."""
    items = client.api.list_instances(name=name) if name else client.api.list_instances()
    return [
        raw
        for raw in items
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
