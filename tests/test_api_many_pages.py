"""Every listing path sees all instances under both page bases: the sandbox holds 250
instances (three pages of 100), served 0-based or 1-based (0 and 1 both the first page)."""

from __future__ import annotations

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.models import GONE_STATUSES

API = "/gpu-instance/openapi/v1"

#: Several pages at the client's default page size (100), and a short last page.
MANY = 250
PRODUCT_ID = "4090.16c62g"
CLUSTER_ID = "as-sgp-2"
IMAGE = "nvidia/cuda:12.4.1-base-ubuntu22.04"


def create_many(client, count: int, prefix: str = "pg") -> list[str]:
    body = {
        "productId": PRODUCT_ID,
        "clusterId": CLUSTER_ID,
        "gpuNum": 1,
        "rootfsSize": 20,
        "imageUrl": IMAGE,
        "kind": "gpu",
    }
    return [client.api.create_instance({**body, "name": f"{prefix}-{i}"}) for i in range(count)]


@pytest.fixture(scope="module", params=[0, 1], ids=["0-based", "1-based"])
def crowded(request):
    """(sandbox, ids): a sandbox serving ``pageNum`` with the given base, holding MANY
    instances. Shared by a module's tests (read-only use)."""
    from novita_notebook import Novita
    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=1000.0, seed=7, page_base=request.param) as server:
        server.set_stock(MANY + 50, cluster_id=CLUSTER_ID, product_id=PRODUCT_ID)
        with Novita(api_key=server.api_key, api_url=server.url) as maker:
            ids = create_many(maker, MANY)
        yield server, ids


@pytest.fixture
def crowded_client(crowded):
    from novita_notebook import Novita

    server, _ = crowded
    novita = Novita(api_key=server.api_key, api_url=server.url)
    yield novita
    novita.close()


def listing_queries(server) -> list[str]:
    return [r["query"] for r in server.requests() if r["path"] == f"{API}/gpu/instances"]


def test_instances_sees_every_instance(crowded, crowded_client):
    server, ids = crowded
    server.clear_requests()
    frame = crowded_client.instances()
    assert len(frame) == MANY and set(frame["id"]) == set(ids) and frame["id"].is_unique
    queries = listing_queries(server)
    assert queries[0].startswith("pageNum=0&")
    # 0-based: pages 0, 1, 2 reach the total. 1-based: page 1 repeats page 0, then 2 and 3.
    base = server.config["pageBase"]
    assert len(queries) == 3 + base


def test_raw_listing_with_small_pages(crowded, crowded_client):
    server, ids = crowded
    raws = crowded_client.api.list_instances(page_size=7)
    assert [r["id"] for r in raws] == list(reversed(ids))  # newest first, none twice


def test_mine_sees_every_instance(crowded, crowded_client):
    _, ids = crowded
    for raw in crowded_client.api.list_instances():
        crowded_client.ledger.record(crowded_client.to_instance(raw))
    mine = crowded_client.mine()
    assert len(mine) == MANY and set(mine["id"]) == set(ids)
    assert "gone" not in set(mine["status"])
    assert not set(mine["status"]) & GONE_STATUSES


def test_budget_counts_every_instance(crowded, crowded_client):
    one = crowded_client.instance(crowded[1][0]).price_per_hour
    assert one and one > 0
    assert crowded_client.current_spend_per_hour() == pytest.approx(MANY * one)


def test_watcher_sees_every_instance_and_removes_none(crowded, crowded_client):
    _, ids = crowded
    with crowded_client.watch(interval=0.05) as watcher:
        watcher.wait_for(lambda w: w.ticks >= 3, timeout=20)
        latest = watcher.latest
        events = watcher.event_list
    assert set(latest) == set(ids)
    assert not [e for e in events if e.new_status in GONE_STATUSES or e.new_status == "gone"]
    first_sightings = [e for e in events if e.old_status is None]
    assert len(first_sightings) == MANY


def test_name_uniqueness_looks_past_the_first_page(crowded, crowded_client):
    server, _ = crowded
    claims = crowded_client.provisioner.claims
    # "pg-1" is a fuzzy match for pg-1, pg-10.., pg-100..199 (111 instances, two pages of
    # 100); the exact pg-1 is the oldest, so it sits on the last page.
    server.clear_requests()
    assert [r["name"] for r in claims.live_named("pg-1")] == ["pg-1"]
    assert len(listing_queries(server)) >= 2
    with pytest.raises(ValidationError, match="already exists"):
        claims.claim("pg-1", unique=False)
    assert claims.claim("pg-1000", unique=False) == "pg-1000"
