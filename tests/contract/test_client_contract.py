"""The client parses every contract fixture: each fixture's bytes are served (a requests
adapter mounted on the client's own session) to the API method that asks for them, and the
parsed models carry the fixture's values. Also: the client asks the way the fixture asks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from novita_notebook import Novita
from novita_notebook.errors import (
    APIError,
    AuthenticationError,
    CapacityError,
    NotFoundError,
    ValidationError,
)
from novita_notebook.guard.enforcer import read_gpu_utilisation
from novita_notebook.models import Instance, region_code

FIXTURES = Path(__file__).parent / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class Replay(requests.adapters.BaseAdapter):
    """Answers every request with one fixture's status and body; keeps what was sent."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        super().__init__()
        self.fixture = fixture
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = self.fixture["status"]
        response.reason = "OK" if response.status_code < 400 else "Error"
        response._content = json.dumps(self.fixture["response"]).encode()
        response.headers["Content-Type"] = "application/json"
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def replay():
    """``replay(name) -> (client, adapter)``: a client whose every call answers ``name``."""
    made: list[Novita] = []

    def make(name: str) -> tuple[Novita, Replay]:
        client = Novita(api_key="sk_contract_key", api_url="http://127.0.0.1:9", max_retries=0)
        made.append(client)
        adapter = Replay(load(name))
        client.transport._session.mount("http://", adapter)  # only serves the bytes
        return client, adapter

    yield make
    for client in made:
        client.close()


def price(value: Any) -> float | None:
    return None if value in (None, "") else int(value) / 100_000


# -- one check per fixture: call the API method, compare the parsed values -------------------


def check_clusters(client: Novita, data: Any) -> None:
    clusters = client.api.clusters()
    assert [(c.id, c.name, c.support_network_storage) for c in clusters] == [
        (d["id"], d["name"], d["supportNetworkStorage"]) for d in data["data"]
    ]
    assert clusters[0].available_gpu_types == tuple(data["data"][0]["availableGpuType"])


def check_products(client: Novita, data: Any, **query: Any) -> None:
    products = client.api.products(**query)
    assert {p.id for p in products} == {d["id"] for d in data["data"]}
    for item in data["data"]:
        mine = [p for p in products if p.id == item["id"]]
        regions = {r for p in mine for r in p.regions}
        assert regions == {region_code(r) for r in item["regions"]}
        assert {p.price for p in mine} == {price(item["price"])}
        assert {p.spot_price for p in mine} == {price(item.get("spotPrice"))}
        assert all(p.max_rootfs == item["maxRootFS"] for p in mine)
        assert all(p.billing_methods == tuple(item["billingMethods"]) for p in mine)


def check_instance(client: Novita, data: Any) -> None:
    inst = Instance.from_api(client.api.get_instance(data["id"]))
    assert (inst.id, inst.name, inst.status, inst.cluster_id) == (
        data["id"],
        data["name"],
        data["status"],
        data["clusterId"],
    )
    assert inst.gpu_num == int(data["gpuNum"]) and inst.memory_gb == int(data["memory"])
    assert inst.max_rootfs_size == data["node"][0]["maxRootfsSize"]
    assert inst.created_at == datetime.fromtimestamp(int(data["createdAt"]), tz=UTC)
    assert inst.stopped_at is None and inst.spot_reclaim_time is None  # "0"
    assert inst.spot_status is None and not inst.failed  # "" and an empty statusError
    assert (inst.ssh_host, inst.ssh_port) == ("proxy.example", 30123)
    assert inst.http_endpoints == [data["portMappings"][0]["endpoint"]]
    assert inst.ssh_password == data["connectComponentSSH"]["password"]
    assert data["connectComponentSSH"]["password"] not in repr(inst)


def check_instances(client: Novita, data: Any) -> None:
    raws = client.api.list_instances()
    parsed = [Instance.from_api(raw) for raw in raws]
    assert [(i.id, i.status, i.rootfs_size) for i in parsed] == [
        (d["id"], d["status"], d["rootfsSize"]) for d in data["instances"]
    ]


def check_create(client: Novita, data: Any) -> None:
    assert client.api.create_instance(load("create_instance")["request"]["body"]) == data["id"]


def check_error(error: type[Exception], call: Callable[[Novita], Any], reason: str):
    def check(client: Novita, data: Any) -> None:
        with pytest.raises(error) as info:
            call(client)
        assert info.value.reason == reason == data["reason"]
        assert info.value.status == data["code"]

    return check


def check_template(client: Novita, data: Any) -> None:
    item = data["template"]
    template = client.api.template(item["Id"])
    assert (template.id, template.name, template.channel, template.rootfs_size) == (
        item["Id"],
        item["name"],
        item["channel"],
        item["rootfsSize"],
    )
    assert template.flat_ports == [(p, g["type"]) for g in item["ports"] for p in g["ports"]]
    assert template.created_at == datetime.fromtimestamp(int(item["createdAt"]), tz=UTC)


def check_templates(client: Novita, data: Any) -> None:
    found = client.api.templates(channel="private")
    assert [(t.id, t.name) for t in found] == [(d["Id"], d["name"]) for d in data["template"]]


def check_template_create(client: Novita, data: Any) -> None:
    body = load("template_create")["request"]["body"]["template"]
    assert client.api.create_template(body) == data["templateId"]


def check_auths(client: Novita, data: Any) -> None:
    auths = client.api.registry_auths()
    assert [(a.id, a.name, a.username) for a in auths] == [
        (d["id"], d["name"], d["username"]) for d in data["data"]
    ]


def check_storages(client: Novita, data: Any) -> None:
    volumes = client.api.list_network_storages()
    assert [(v["storageId"], v["storageSize"]) for v in volumes] == [
        (d["storageId"], d["storageSize"]) for d in data["data"]
    ]


def check_storage_create(client: Novita, data: Any) -> None:
    assert client.api.create_network_storage("eu-de-1", "contract-vol", 10) == data


def check_mutation(client: Novita, data: Any) -> None:
    assert client.api.stop_instance("7f3a9c2e5b1d4e60") is None


def check_metrics(client: Novita, data: Any) -> None:
    # The metrics call lives in the guard's backend; its parser reads the GPU average.
    samples = read_gpu_utilisation(data)
    expected = data["gpuUtilization"]["avg"]
    assert [(int(t.timestamp()), v) for t, v in samples] == [
        (int(p["timestamp"]), p["value"]) for p in expected
    ]


CHECKS: dict[str, Callable[[Novita, Any], None]] = {
    "clusters": check_clusters,
    "create_instance": check_create,
    "error_insufficient": check_error(
        CapacityError,
        lambda c: c.api.create_instance(load("error_insufficient")["request"]["body"]),
        "INSUFFICIENT_RESOURCE",
    ),
    "error_not_found": check_error(
        NotFoundError, lambda c: c.api.get_instance("missing-instance"), "RESOURCE_NOT_FOUND"
    ),
    "error_validation": check_error(
        ValidationError, lambda c: c.api.create_instance({"kind": "gpu"}), "VALIDATOR_PARAM"
    ),
    # A documented 500 is a refusal, never "not found": the delete did not happen.
    "error_wallet_not_found": check_error(
        APIError, lambda c: c.api.delete_instance("7f3a9c2e5b1d4e60"), "WALLET_NOT_FOUND"
    ),
    "error_bad_key": check_error(
        AuthenticationError, lambda c: c.api.clusters(), "INVALID_USER_TOKEN"
    ),
    "instance": check_instance,
    "instances": check_instances,
    "metrics": check_metrics,
    "mutation_empty": check_mutation,
    "networkstorage_create": check_storage_create,
    "networkstorages": check_storages,
    "products": check_products,
    "products_by_cluster": lambda c, d: check_products(c, d, cluster_id="as-sgp-2"),
    "repository_auths": check_auths,
    "template": check_template,
    "template_create": check_template_create,
    "templates": check_templates,
}


def test_every_fixture_has_a_client_check():
    assert sorted(CHECKS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_client_parses_fixture(replay, name):
    fixture = load(name)
    client, adapter = replay(name)
    CHECKS[name](client, fixture["response"])
    if name == "metrics":
        return  # parsed directly, not asked through the NovitaAPI
    asked = fixture["request"]
    sent = adapter.sent[0]
    assert sent.method == asked["method"]
    assert urlsplit(sent.url).path == asked["path"]
    # the client names the query parameters the fixture's request names
    assert set(asked.get("query", {})) <= set(parse_qs(urlsplit(sent.url).query))
