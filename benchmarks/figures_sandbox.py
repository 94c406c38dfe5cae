"""Figures of the sandbox itself: simple GETs per second over keep-alive, and 5,000 held
instances paged into a DataFrame by the client.
"""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from novita_notebook import Novita

from .harness import Figure
from .remote_sandbox import RemoteSandbox, serving_sandbox

RPS_TARGET = 1000.0
FRAME_BUDGET_SECONDS = 2.0


def _connection(sandbox: RemoteSandbox) -> tuple[http.client.HTTPConnection, str, dict]:
    parts = urlsplit(sandbox.api_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {sandbox.api_key}", "Content-Type": "application/json"}
    return connection, parts.path, headers


def requests_per_second(quick: bool) -> list[Figure]:
    """GET /clusters on one keep-alive connection, the sandbox in its own process."""
    count = 300 if quick else 6000
    with serving_sandbox(quick) as sandbox:
        connection, prefix, headers = _connection(sandbox)
        try:
            for _ in range(50):  # warm-up: connection, imports, first JSON encodes
                connection.request("GET", f"{prefix}/clusters", headers=headers)
                connection.getresponse().read()
            started = time.perf_counter()
            for _ in range(count):
                connection.request("GET", f"{prefix}/clusters", headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"sandbox answered {response.status} to GET /clusters")
            elapsed = time.perf_counter() - started
        finally:
            connection.close()
    rate = count / elapsed
    return [
        Figure(
            f"sandbox requests per second vs the {RPS_TARGET:,.0f} target "
            "(GET /clusters, one keep-alive connection)",
            rate,
            "req/s",
            RPS_TARGET,
            target=f">= {RPS_TARGET:,.0f} req/s",
            met=rate >= RPS_TARGET,
        )
    ]


def _fill(sandbox: RemoteSandbox, count: int) -> None:
    """Create ``count`` instances through the API (stock raised first) on one connection."""
    sandbox.control("POST", "stock", {"stock": 1_000_000})
    connection, prefix, headers = _connection(sandbox)
    try:
        for index in range(count):
            body = json.dumps(
                {
                    "name": f"bulk-{index}",
                    "productId": "3090.12c46g",
                    "gpuNum": 1,
                    "rootfsSize": 50,
                    "imageUrl": "ubuntu:22.04",
                    "kind": "gpu",
                }
            )
            connection.request("POST", f"{prefix}/gpu/instance/create", body, headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(f"create {index} failed: {response.status} {payload[:200]!r}")
    finally:
        connection.close()


def many_instances_frame(quick: bool) -> list[Figure]:
    """``client.instances()`` (every page, parsed, priced) into a DataFrame of N instances."""
    count = 500 if quick else 5000
    with serving_sandbox(quick, speed=1.0) as sandbox:
        _fill(sandbox, count)
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            client.products()  # prices come from the cached listing; fill it outside the timing
            started = time.perf_counter()
            frame = client.instances()
            elapsed = time.perf_counter() - started
        finally:
            client.close()
    if len(frame) != count:
        raise RuntimeError(f"the DataFrame has {len(frame)} rows, the sandbox holds {count}")
    return [
        Figure(
            f"{count:,} instances paged into a DataFrame vs the {FRAME_BUDGET_SECONDS:g}-s budget",
            elapsed,
            "s",
            FRAME_BUDGET_SECONDS,
            target=f"< {FRAME_BUDGET_SECONDS:g} s",
            met=elapsed < FRAME_BUDGET_SECONDS,
            notes={"rows per second": f"{count / elapsed:,.0f}"},
        )
    ]
