"""Figures of provisioning: products calls for an 8-region fallback vs fetching per region,
and create_many's speedup over sequential creates under 100 ms of API latency.
"""

from __future__ import annotations

import time

from novita_notebook import Novita
from novita_notebook.sandbox import Sandbox

from .harness import Figure

IMAGE = "ubuntu:22.04"
PRODUCTS_PATH = "/gpu-instance/openapi/v1/products"
#: Every sandbox region, the only one with RTX 4090 stock left last.
FALLBACK_ORDER = (
    "as-sgp-2",
    "cn-hongkong-1",
    "as-in-1",
    "us-ca-nas-6",
    "us-west-1",
    "eu-de-1",
    "eu-west-1",
    "oc-au-1",
)


def _products_calls(sandbox: Sandbox) -> int:
    time.sleep(0.05)  # the sandbox stamps the last request just after answering it
    return sum(1 for r in sandbox.requests() if r["method"] == "GET" and r["path"] == PRODUCTS_PATH)


def fallback_calls(quick: bool) -> list[Figure]:
    """GET /products calls to find stock in the 8th region tried: the client vs per-region."""
    del quick  # one create is already the smallest run
    with Sandbox(speed=1.0, seed=0) as sandbox:
        sandbox.set_stock(0, product_id="4090.16c62g")
        sandbox.set_stock(0, product_id="4090.16c96g.v2")
        sandbox.set_stock(4, cluster_id=FALLBACK_ORDER[-1], product_id="4090.16c62g")
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            client.cached_clusters()  # the region list is not what is being counted
            sandbox.clear_requests()
            inst = client.create("fallback-1", gpu="RTX 4090", image=IMAGE, regions=FALLBACK_ORDER)
            client_calls = _products_calls(sandbox)
            tried = len(inst.fallback_report.regions_tried)
            chosen = inst.region

            # the predecessor's way: one filtered listing per region until one has stock
            sandbox.clear_requests()
            for cluster_id in FALLBACK_ORDER:
                offers = client.api.products(cluster_id=cluster_id, product_name="RTX 4090")
                if any(p.available for p in offers):
                    break
            per_region_calls = _products_calls(sandbox)
        finally:
            client.close()
    return [
        Figure(
            "products calls for an 8-region fallback vs per-region fetching",
            client_calls,
            "calls",
            per_region_calls,
            target="1 call",
            met=client_calls == 1 and tried == len(FALLBACK_ORDER),
            notes={"regions tried": f"{tried}, chosen {chosen}"},
        )
    ]


def batch_speedup(quick: bool) -> list[Figure]:
    """create_many(N, concurrency=8) vs concurrency=1, every API call delayed 100 ms."""
    count, concurrency, latency_ms = (8, 4, 20) if quick else (32, 8, 100)
    timings: dict[int, float] = {}
    with Sandbox(speed=1.0, seed=0) as sandbox:
        sandbox.set_stock(1000)
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, max_concurrency=concurrency)
        try:
            client.cached_clusters()
            sandbox.set_faults(latencyMs=latency_ms)
            for workers in (concurrency, 1):
                started = time.perf_counter()
                frame = client.create_many(
                    count,
                    name_prefix=f"batch-c{workers}",
                    gpu="RTX 3090",
                    image=IMAGE,
                    concurrency=workers,
                )
                timings[workers] = time.perf_counter() - started
                failed = frame[frame["error"].notna()]
                if len(failed):
                    raise RuntimeError(f"{len(failed)} creates failed: {failed['error'].tolist()}")
        finally:
            sandbox.clear_faults()
            client.close()
    parallel, sequential = timings[concurrency], timings[1]
    return [
        Figure(
            f"batch create of {count} instances at concurrency {concurrency} vs sequential "
            f"({latency_ms} ms API latency; ratio = speedup)",
            parallel,
            "s",
            sequential,
            ratio_of="baseline/value",
            target=">= 5x faster",
            met=sequential / parallel >= 5,
        )
    ]
