"""Figures of provisioning: time and calls to decide an 8-region fallback vs the seed's
sequential per-region listings, and create_many's speedup over sequential creates.
"""

from __future__ import annotations

import time

from novita_notebook import Novita
from novita_notebook.sandbox import Sandbox

from .harness import Figure

IMAGE = "ubuntu:22.04"
PRODUCTS_PATH = "/gpu-instance/openapi/v1/products"
CREATE_PATH = "/gpu-instance/openapi/v1/gpu/instance/create"
RTX_4090_IDS = ("4090.16c62g", "4090.16c96g.v2", "4090.12c48g", "26")
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


def _products_calls(sandbox: Sandbox) -> list[dict]:
    time.sleep(0.05)  # the sandbox stamps the last request just after answering it
    return [r for r in sandbox.requests() if r["method"] == "GET" and r["path"] == PRODUCTS_PATH]


def _only_last_region_has_4090s(sandbox: Sandbox) -> None:
    for product_id in RTX_4090_IDS:
        sandbox.set_stock(0, product_id=product_id)
    sandbox.set_stock(4, cluster_id=FALLBACK_ORDER[-1], product_id="4090.12c48g")


def _post_arrival(sandbox: Sandbox) -> float:
    time.sleep(0.05)
    return min(r["time"] for r in sandbox.requests() if r["path"] == CREATE_PATH)


def _seed_create(client: Novita, name: str) -> None:
    """The seed's way: one clusterId listing per region, in order, until one has stock; the
    name check; then the create."""
    for cluster in (c for key in FALLBACK_ORDER for c in client.cached_clusters() if c.id == key):
        offers = client.api.products(cluster_id=cluster.id, product_name="RTX 4090")
        ready = [p for p in offers if p.available]
        if ready:
            break
    else:
        raise RuntimeError("no region has an RTX 4090")
    client.api.list_instances(name=name)
    body = {
        "name": name,
        "productId": ready[0].id,
        "gpuNum": 1,
        "rootfsSize": 60,
        "clusterId": cluster.id,
        "imageUrl": IMAGE,
        "kind": "gpu",
        "billingMode": "onDemand",
    }
    client.api.create_instance(body)


def fallback_calls(quick: bool) -> list[Figure]:
    """Time and calls from create() to its POST when only the 8th region tried has RTX 4090
    stock, every API call delayed by the sandbox (100 ms): this client (prefer="region",
    the 8 regions in order) vs the seed's sequential per-region listings. Both check the name
    first; clusters are cached on both sides, nothing else is."""
    latency_ms = 20 if quick else 100
    with Sandbox(speed=1.0, seed=0) as sandbox:
        _only_last_region_has_4090s(sandbox)
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            client.cached_clusters()
            sandbox.set_faults(latencyMs=latency_ms)
            sandbox.clear_requests()
            started = time.time()
            instance = client.create(
                "fallback-1",
                gpu="RTX 4090",
                image=IMAGE,
                regions=list(FALLBACK_ORDER),
                prefer="region",
            )
            ours = _post_arrival(sandbox) - started
            our_calls = len(_products_calls(sandbox))
            judged = len(instance.fallback_report.attempts)

            client.clear_cache()
            client.cached_clusters()
            sandbox.clear_requests()
            started = time.time()
            _seed_create(client, "fallback-2")
            seed = _post_arrival(sandbox) - started
            seed_calls = len(_products_calls(sandbox))
        finally:
            sandbox.clear_faults()
            client.close()
    if instance.cluster_id != FALLBACK_ORDER[-1]:
        raise RuntimeError(f"chose {instance.cluster_id}, not {FALLBACK_ORDER[-1]}")
    round_trip = latency_ms / 1000.0
    return [
        Figure(
            f"round trips from create() to its POST for an 8-region fallback ({latency_ms} ms "
            "API latency; wall time / latency)",
            ours / round_trip,
            "round trips",
            seed / round_trip,
            ratio_of="baseline/value",
            target="<= 2.5 round trips",
            met=ours / round_trip <= 2.5,
            notes={
                "wall time": f"{ours * 1000:.0f} ms vs {seed * 1000:.0f} ms sequential",
                "regions in the report": str(judged),
            },
        ),
        Figure(
            "products calls before that POST (1 unfiltered + 8 region listings at once) vs "
            "sequential per-region listings (both also check the name once)",
            our_calls,
            "products calls",
            seed_calls,
            target="the 8 candidate regions' listings plus 1",
            met=our_calls == len(FALLBACK_ORDER) + 1,
        ),
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
