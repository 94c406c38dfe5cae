"""Helpers shared by the client tests: creating instances straight through the API layer
(independent of the provisioning mixin) and reading the sandbox request log.
"""

from __future__ import annotations

import time
from typing import Any

API_PATH = "/gpu-instance/openapi/v1"

#: A private template body as the docs give it (add a ``name``).
PRIVATE_TEMPLATE = {
    "type": "instance",
    "channel": "private",
    "image": "python:3.11",
    "rootfsSize": 20,
    "ports": [{"type": "http", "ports": [8888]}],
    "envs": [],
}


def create_raw(
    client: Any,
    name: str,
    *,
    product_id: str | None = None,
    cluster_id: str | None = None,
    gpu_num: int = 1,
    billing: str = "onDemand",
) -> str:
    """Create one instance on an available product via NovitaAPI and return its id."""
    if product_id is None or cluster_id is None:
        clusters = {c.name: c.id for c in client.cached_clusters()}
        product = next(
            p for p in client.cached_products() if p.available and p.regions[0] in clusters
        )
        product_id, cluster_id = product.id, clusters[product.regions[0]]
    body = {
        "name": name,
        "productId": product_id,
        "clusterId": cluster_id,
        "gpuNum": gpu_num,
        "rootfsSize": 20,
        "imageUrl": "nvidia/cuda:12.4.1-base-ubuntu22.04",
        "kind": "gpu",
        "billingMode": billing,
    }
    return client.api.create_instance(body)


def wait_status(client: Any, instance_id: str, status: str, timeout: float = 20.0) -> dict:
    """Poll the raw instance until it reaches ``status`` (the sandbox runs fast in tests)."""
    deadline = time.monotonic() + timeout
    while True:
        raw = client.api.get_instance(instance_id)
        if raw.get("status") == status:
            return raw
        if time.monotonic() > deadline:
            raise AssertionError(f"{instance_id} stuck in {raw.get('status')} (wanted {status})")
        time.sleep(0.05)


def api_requests(
    sandbox: Any,
    suffix: str | None = None,
    method: str | None = None,
    *,
    at_least: int = 0,
) -> list[dict]:
    """Logged requests of the Novita namespace, optionally only those whose path ends in suffix.

    The sandbox fills in a request's status only after it has answered, so a client may hold
    an answer that is not logged yet: the log is read until it holds ``at_least`` Novita
    requests and has not changed (entries or statuses) for 0.1 s (at most 3 s).
    """
    deadline = time.monotonic() + 3.0
    log = sandbox.requests()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.025)
        again = sandbox.requests()
        if [r["status"] for r in again] != [r["status"] for r in log]:
            log, stable_since = again, time.monotonic()
            continue
        enough = sum(1 for r in log if r["path"].startswith(API_PATH)) >= at_least
        if enough and time.monotonic() - stable_since >= 0.1:
            break
    entries = [r for r in log if r["path"].startswith(API_PATH)]
    if suffix is not None:
        entries = [r for r in entries if r["path"] == API_PATH + suffix]
    if method is not None:
        entries = [r for r in entries if r["method"] == method]
    return entries
