"""The API layer against the sandbox over HTTP: every endpoint, pagination and parsing."""

from __future__ import annotations

import pytest

from novita_notebook.errors import NotFoundError, ValidationError
from novita_notebook.models import Cluster, Product, RegistryAuth, Template
from tests.api_helpers import PRIVATE_TEMPLATE, api_requests, create_raw


def test_clusters(client):
    clusters = client.api.clusters()
    assert clusters and all(isinstance(c, Cluster) for c in clusters)
    assert all(c.id and c.name and c.available_gpu_types for c in clusters)


def test_products_split_the_live_entries_one_row_per_region(client, sandbox):
    # The live shape (reference section 0): each product id once, `regions` lists every region
    # offering it, one price per id; the same GPU is sold under other ids at other prices.
    # api.products() gives one row per (id, region), each carrying the id's one price.
    raw = client.api.transport.request("GET", "/products")["data"]
    assert len({item["id"] for item in raw}) == len(raw)
    assert any(len(item["regions"]) > 1 for item in raw)
    products = client.api.products()
    assert products and all(isinstance(p, Product) for p in products)
    assert all(len(p.regions) == 1 for p in products)
    pairs = [(p.id, p.regions[0]) for p in products]
    assert len(pairs) == len(set(pairs))
    assert len(products) == sum(len(item["regions"]) for item in raw)
    prices_by_id: dict[str, set[float | None]] = {}
    prices_by_gpu: dict[str, set[float | None]] = {}
    for product in products:
        prices_by_id.setdefault(product.id, set()).add(product.price)
        prices_by_gpu.setdefault(product.name, set()).add(product.price)
    assert all(len(prices) == 1 for prices in prices_by_id.values())
    assert any(len(prices) > 1 for prices in prices_by_gpu.values())
    assert all(isinstance(p.price, float) for p in products if p.price is not None)


def test_products_filters_are_sent(client, sandbox):
    cluster = client.api.clusters()[0]
    products = client.api.products(cluster_id=cluster.id, billing_method="spot", gpu_num=2)
    assert all(cluster.name in p.regions for p in products)
    query = api_requests(sandbox, "/products")[-1]["query"]
    assert f"clusterId={cluster.id}" in query and "billingMethod=spot" in query
    assert "gpuNum=2" in query


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"billing_method": "weekly"}, "billing_method"),
        ({"gpu_num": 9}, "gpu_num"),
        ({"gpu_num": "2"}, "gpu_num"),
        ({"min_rootfs_size": -1}, "min_rootfs_size"),
    ],
)
def test_products_bad_arguments_before_any_call(client, sandbox, kwargs, field):
    before = client.api.requests_made
    with pytest.raises(ValidationError) as info:
        client.api.products(**kwargs)
    assert info.value.field == field
    assert client.api.requests_made == before


def test_instances_page_through_everything(client, sandbox):
    ids = {create_raw(client, f"page-{i}") for i in range(7)}
    sandbox.clear_requests()
    raws = client.api.list_instances(page_size=3)
    assert {r["id"] for r in raws} >= ids and len(raws) == len({r["id"] for r in raws})
    pages = api_requests(sandbox, "/gpu/instances")
    assert len(pages) == 3  # 3 + 3 + 1: the reported total ends the listing
    assert "pageNum=0" in pages[0]["query"] and "pageSize=3" in pages[0]["query"]
    assert "pageNum=2" in pages[2]["query"]
    items, total = client.api.list_instances_page(1, 3)  # the second page (0-based)
    assert len(items) == 3 and total == 7


def test_list_stops_when_total_is_reached(client, sandbox):
    for i in range(4):
        create_raw(client, f"tot-{i}")
    sandbox.clear_requests()
    assert len(client.api.list_instances(page_size=2)) == 4
    # a full last page: the reported total ends the loop without an extra empty page
    assert len(api_requests(sandbox, "/gpu/instances")) == 2


def test_list_filters_and_unknown_filter(client):
    create_raw(client, "alpha-one")
    create_raw(client, "beta-two")
    names = {r["name"] for r in client.api.list_instances(name="alpha")}
    assert names == {"alpha-one"}
    with pytest.raises(ValidationError, match="unknown filter"):
        client.api.list_instances_page(1, 10, colour="red")


def test_get_instance_and_not_found(client):
    new_id = create_raw(client, "getter")
    raw = client.api.get_instance(new_id)
    assert raw["id"] == new_id and raw["name"] == "getter"
    with pytest.raises(NotFoundError) as info:
        client.api.get_instance("no-such-instance")
    assert info.value.status == 404 and info.value.path.endswith("/gpu/instance")
    assert "?" not in info.value.path


def test_templates_and_template(client):
    templates = client.api.templates()
    assert templates and all(isinstance(t, Template) and t.id for t in templates)
    one = client.api.template(templates[0].id)
    assert one.id == templates[0].id and one.image == templates[0].image
    with pytest.raises(NotFoundError):
        client.api.template("tpl-does-not-exist")
    with pytest.raises(ValidationError, match="channel"):
        client.api.templates(channel="secret")


def test_template_create_update_delete(client, sandbox):
    body = {**PRIVATE_TEMPLATE, "name": "mine"}
    new_id = client.api.create_template(body)
    assert client.api.template(new_id).name == "mine"
    assert client.api.update_template({**body, "Id": new_id, "name": "mine-2"}) == new_id
    assert client.api.template(new_id).name == "mine-2"
    private = client.api.templates(channel="private")
    assert [t.id for t in private] == [new_id]
    assert client.api.delete_template(new_id) == new_id
    with pytest.raises(NotFoundError):
        client.api.template(new_id)


def test_registry_auths(client, sandbox):
    client.api.save_registry_auth("reg", "bob", "hunter2-secret")
    auths = client.api.registry_auths()
    assert [(a.name, a.username) for a in auths] == [("reg", "bob")]
    assert isinstance(auths[0], RegistryAuth) and "hunter2-secret" not in repr(auths[0])
    client.api.delete_registry_auth(auths[0].id)
    assert client.api.registry_auths() == []
    # the password never reaches the sandbox's log either
    assert all("hunter2-secret" not in r["body"] for r in sandbox.requests())


def test_create_returns_id_and_lifecycle_calls(client):
    new_id = create_raw(client, "life")
    assert isinstance(new_id, str) and new_id
    client.api.delete_instance(new_id)
    with pytest.raises(ValidationError, match="instance_id"):
        client.api.stop_instance("")


def test_edit_instance_validation(client):
    with pytest.raises(ValidationError, match="ports.type"):
        client.api.edit_instance("x", ports=[{"port": 80, "type": "udp"}])
    with pytest.raises(ValidationError, match="expand_root_disk"):
        client.api.edit_instance("x", expand_root_disk=-1)
