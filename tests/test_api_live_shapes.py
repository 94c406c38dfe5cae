"""The shapes the live API sends and our sandbox can switch to: both not-found answers of
GET /gpu/instance, ``node`` as array or object, ``pending``, spot fields, loose spotPrice."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from novita_notebook.errors import NotFoundError
from novita_notebook.models import STATUS_ORDER, Instance, Product, phase_of
from tests.api_helpers import create_raw, wait_status

SPOT_PRODUCT, SPOT_CLUSTER = "4090.16c62g", "as-sgp-2"


@pytest.mark.parametrize("status", [404, 400])
def test_unknown_instance_is_not_found_under_both_switches(client, sandbox, status):
    sandbox.configure(not_found_status=status)
    with pytest.raises(NotFoundError) as info:
        client.api.get_instance("no-such-instance")
    assert info.value.status == status and info.value.reason == "RESOURCE_NOT_FOUND"
    with pytest.raises(NotFoundError, match="no instance has the id or name"):
        client.instance("no-such-instance")  # resolve: by id, then by name
    with pytest.raises(NotFoundError):
        client.delete("no-such-instance")  # nothing ever knew it


@pytest.mark.parametrize("status", [404, 400])
def test_a_deleted_instance_ends_not_found(client, sandbox, status):
    sandbox.configure(not_found_status=status)
    new_id = create_raw(client, "gone-soon", product_id=SPOT_PRODUCT, cluster_id=SPOT_CLUSTER)
    client.api.delete_instance(new_id)
    with pytest.raises(NotFoundError):
        # "removed" stays visible 30 sandbox seconds (0.1 s at the tests' speed), then 404/400
        for _ in range(200):
            client.api.get_instance(new_id)
            time.sleep(0.02)


def test_node_is_read_as_array_or_object(client):
    new_id = create_raw(client, "noded", product_id=SPOT_PRODUCT, cluster_id=SPOT_CLUSTER)
    raw = client.api.get_instance(new_id)
    assert isinstance(raw["node"], list)  # the sandbox sends the docs' array
    size = Instance.from_api(raw).max_rootfs_size
    assert isinstance(size, int) and size > 0
    as_object = {**raw, "node": raw["node"][0]}
    assert Instance.from_api(as_object).max_rootfs_size == size
    assert Instance.from_api({**raw, "node": None}).max_rootfs_size is None
    assert Instance.from_api({**raw, "node": []}).max_rootfs_size is None


def test_pending_is_a_known_queued_status(client, sandbox):
    assert STATUS_ORDER[0] == "pending" and phase_of("pending") == "provisioning"
    sandbox.configure(pending_rate=1, phase_jitter=0)
    new_id = create_raw(client, "queued", product_id=SPOT_PRODUCT, cluster_id=SPOT_CLUSTER)
    first = client.instance(new_id)
    assert first.status in ("pending", "toCreate", "creating")
    seen = {first.status}
    while "running" not in seen:
        seen.add(client.instance(new_id).status)
    assert first.phase == "provisioning"
    assert client.wait(new_id, "running", timeout=20).status == "running"


def test_spot_fields_and_unix_second_timestamps(client, sandbox):
    new_id = create_raw(
        client, "spotty", product_id=SPOT_PRODUCT, cluster_id=SPOT_CLUSTER, billing="spot"
    )
    raw = wait_status(client, new_id, "running")
    inst = client.instance(new_id)
    assert inst.spot_status == "running" and inst.spot_reclaim_time is None  # "0": no notice
    assert isinstance(raw["createdAt"], str) and raw["createdAt"].isdigit()
    assert inst.created_at == datetime.fromtimestamp(int(raw["createdAt"]), tz=UTC)
    assert inst.started_at is not None and inst.stopped_at is None  # lastStoppedAt "0"
    sandbox.spot_reclaim(new_id, notice_seconds=3600)
    notified = client.instance(new_id)
    reclaim = client.api.get_instance(new_id)["spotReclaimTime"]
    assert notified.spot_status == "notified"
    assert notified.spot_reclaim_time == datetime.fromtimestamp(int(reclaim), tz=UTC)
    assert notified.spot_reclaim_time > datetime.now(UTC)


@pytest.mark.parametrize(
    ("value", "usd"),
    [("17500", 0.175), (17500, 0.175), (17500.0, 0.175), (None, None), ("", None), ("n/a", None)],
)
def test_spot_price_in_every_shape(value, usd):
    base = {"id": "p", "name": "RTX 4090 24GB", "price": "35000", "regions": ["X (Y)"]}
    product = Product.from_api({**base, "spotPrice": value})
    assert product.spot_price == (pytest.approx(usd) if usd is not None else None)
    assert Product.from_api(base).spot_price is None  # absent


def test_products_with_and_without_spot_from_the_sandbox(client):
    products = client.api.products(billing_method="spot")
    assert products and all(p.spot_price and p.spot_price > 0 for p in products)
    no_spot = [p for p in client.api.products() if "spot" not in p.billing_methods]
    assert no_spot and all(p.spot_price is None for p in no_spot)
