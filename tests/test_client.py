"""Single instances and lifecycle by id or exact name, ambiguity, the error mapping of API
answers, and the client's own plumbing (context manager, sandbox classmethod, ledger).
"""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.errors import (
    AuthenticationError,
    CapacityError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)
from novita_notebook.models import Instance
from tests.api_helpers import api_requests, create_raw, wait_status


def test_instance_by_id_and_name_is_bound_and_priced(client):
    new_id = create_raw(client, "solo")
    by_id = client.instance(new_id)
    by_name = client.instance("solo")
    assert isinstance(by_id, Instance) and by_id.id == by_name.id == new_id
    assert by_id._client is client and by_id.price_per_hour and by_id.price_per_hour > 0
    assert by_name.refresh().id == new_id


def test_name_is_matched_exactly(client):
    create_raw(client, "exact-name-long")
    with pytest.raises(NotFoundError, match="no instance has the id or name 'exact-name'"):
        client.instance("exact-name")


def test_ambiguous_name_lists_ids(client, sandbox):
    a = create_raw(client, "twin")
    b = create_raw(client, "twin")
    with pytest.raises(ValidationError) as info:
        client.stop("twin")
    assert info.value.field == "id_or_name"
    assert a in str(info.value) and b in str(info.value)
    assert api_requests(sandbox, "/gpu/instance/stop") == []  # found before any action


def test_stop_start_restart_delete_by_name(client, sandbox):
    new_id = create_raw(client, "cycle")
    wait_status(client, new_id, "running")
    stopped = client.stop("cycle")
    assert stopped.id == new_id and stopped.status in ("toStop", "stopping", "exited")
    wait_status(client, new_id, "exited")
    started = client.start("cycle")
    assert started.status in ("toStart", "starting", "running")
    wait_status(client, new_id, "running")
    restarted = client.restart(new_id)
    assert restarted.status in ("toRestart", "restarting", "running")
    wait_status(client, new_id, "running")
    client.delete("cycle")
    assert api_requests(sandbox, "/gpu/instance/delete", "POST")
    # being removed, it has left the live set: the name no longer resolves
    with pytest.raises(NotFoundError):
        client.instance("cycle")


def test_api_start_running_instance_is_invalid_state(client):
    # The API refuses it (Novita.start itself sees "running" and does nothing).
    new_id = create_raw(client, "busy")
    wait_status(client, new_id, "running")
    with pytest.raises(InvalidStateError) as info:
        client.api.start_instance(new_id)
    assert info.value.status == 400 and info.value.path.endswith("/gpu/instance/start")
    assert info.value.hint


def test_edit_ports_and_disk(client):
    new_id = create_raw(client, "editable")
    wait_status(client, new_id, "running")
    edited = client.edit("editable", ports=["8080/http", (9000, "tcp")], expand_root_disk_gb=10)
    assert {(p.port, p.type) for p in edited.port_mappings} >= {(8080, "http"), (9000, "tcp")}


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({}, "ports"),
        ({"ports": [70000]}, "ports"),
        ({"ports": [2222]}, "ports"),
        ({"ports": ["80/udp"]}, "ports"),
        ({"expand_root_disk_gb": 0}, "expand_root_disk_gb"),
    ],
)
def test_edit_validation_before_network(client, kwargs, field):
    with pytest.raises(ValidationError) as info:
        client.edit("anything", **kwargs)
    assert info.value.field == field
    assert client.requests_made == 0


@pytest.mark.parametrize("bad", [None, "", "   ", 42])
def test_lifecycle_rejects_bad_references(client, bad):
    with pytest.raises(ValidationError) as info:
        client.stop(bad)
    assert info.value.field == "id_or_name"
    assert client.requests_made == 0


def test_wrong_key_is_authentication_error(sandbox):
    with (
        Novita(api_key="sk_wrong_key_123456", api_url=sandbox.url) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.api.clusters()
    error = info.value
    assert error.status == 401 and error.method == "GET" and error.path.endswith("/clusters")
    assert "sk_wrong_key_123456" not in str(error) and "NOVITA_API_KEY" in str(error)


def test_capacity_error_when_sold_out(client, sandbox):
    product = next(p for p in client.cached_products() if p.available)
    cluster = next(c for c in client.cached_clusters() if c.name == product.regions[0])
    sandbox.set_stock(0, cluster_id=cluster.id, product_id=product.id)
    with pytest.raises(CapacityError) as info:
        create_raw(client, "nope", product_id=product.id, cluster_id=cluster.id)
    assert info.value.reason == "INSUFFICIENT_RESOURCE"


def test_server_validation_error_maps(client):
    with pytest.raises(ValidationError) as info:
        client.api.create_instance({"name": "x", "productId": "p"})
    assert info.value.status == 400 and info.value.reason == "VALIDATOR_PARAM"
    assert info.value.field  # taken from the API's "field: rule" message
    assert info.value.field in info.value.message


def test_context_manager_and_close_idempotent(sandbox):
    with Novita(api_key=sandbox.api_key, api_url=sandbox.url) as client:
        assert client.api.clusters()
    client.close()


def test_sandbox_classmethod_owns_and_stops_its_server():
    client = Novita.sandbox(speed=300, seed=3, cache_ttl=60)
    try:
        server = client.sandbox_server
        assert server.running and client.config.api_url.startswith(server.url)
        assert "(sandbox)" in repr(client)
        assert len(client.products()) > 0
    finally:
        client.close()
    assert not server.running
    with pytest.raises(ValidationError, match="api_url"):
        Novita.sandbox(api_url="http://127.0.0.1:1")
    for kwargs, field in (({"speed": 0}, "speed"), ({"seed": "x"}, "seed")):
        with pytest.raises(ValidationError) as info:
            Novita.sandbox(**kwargs)
        assert info.value.field == field


def test_attributes_the_mixins_rely_on(client):
    assert client.max_concurrency == 8
    assert client.rate_limiter is None
    assert client.config.api_url.endswith("/gpu-instance/openapi/v1")
    ledger = client.ledger
    assert ledger is client.ledger  # built once
    with Novita(
        api_key=client.api.transport._key, api_url=client.config.api_url, rate_limit_per_second=5
    ) as other:
        assert other.rate_limiter is other.api.transport.rate_limiter


def test_spot_instance_is_priced_at_the_spot_price(client):
    product = next(p for p in client.cached_products() if p.available and p.spot_price)
    cluster = next(c for c in client.cached_clusters() if c.name == product.regions[0])
    new_id = create_raw(
        client, "spotty", product_id=product.id, cluster_id=cluster.id, billing="spot"
    )
    assert client.instance(new_id).price_per_hour == pytest.approx(product.spot_price)


def test_unreachable_catalog_leaves_price_empty_not_the_instance(client, monkeypatch):
    from novita_notebook.errors import NetworkError

    new_id = create_raw(client, "no-price")
    client.clear_cache()

    def broken(**_):
        raise NetworkError("catalog down")

    monkeypatch.setattr(client.api, "products", broken)  # an edge the sandbox cannot isolate
    inst = client.instance(new_id)
    assert inst.id == new_id and inst.price_per_hour is None
