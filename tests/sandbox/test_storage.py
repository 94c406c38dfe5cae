"""Network storage over HTTP: list/create (bare string id)/update/delete, the documented
errors, and mounting volumes on instances only in their own cluster.
"""

from __future__ import annotations

import pytest
from sandbox_helpers import BASIC_INSTANCE, Api, assert_error


def make(api: Api, cluster: str = "eu-de-1", name: str = "data", size: int = 50) -> str:
    response = api.post(
        "/networkstorage/create", {"clusterId": cluster, "storageName": name, "storageSize": size}
    )
    assert response.status_code == 200, response.text
    storage_id = response.json()
    assert isinstance(storage_id, str) and len(storage_id) == 36  # a bare JSON string (UUID)
    return storage_id


def test_create_list_update_delete(api):
    assert api.get("/networkstorages/list").json() == {"data": [], "total": 0}
    first = make(api, name="datasets", size=100)
    second = make(api, cluster="as-sgp-2", name="checkpoints", size=10)
    listed = api.get("/networkstorages/list", pageNo=0, pageSize=10).json()
    assert listed["total"] == 2
    row = next(s for s in listed["data"] if s["storageId"] == first)
    assert row == {
        "storageId": first,
        "storageName": "datasets",
        "storageSize": 100,
        "clusterId": "eu-de-1",
        "clusterName": "EU-DE-01",
        "price": row["price"],
    }
    assert row["price"].isdigit() and int(row["price"]) > 0
    assert api.get("/networkstorages/list", storageName="CHECK").json()["total"] == 1
    assert api.get("/networkstorages/list", storageId=second).json()["data"][0]["storageId"] == (
        second
    )
    page0 = api.get("/networkstorages/list", pageNo=0, pageSize=1).json()["data"]
    page1 = api.get("/networkstorages/list", pageNo=1, pageSize=1).json()["data"]
    assert page0 != page1 and len(page0) == len(page1) == 1

    body = {"storageId": first, "storageName": "datasets-2", "storageSize": 200}
    assert api.post("/networkstorage/update", body).json() == {}
    updated = api.get("/networkstorages/list", storageId=first).json()["data"][0]
    assert updated["storageName"] == "datasets-2" and updated["storageSize"] == 200
    assert int(updated["price"]) > int(row["price"])
    # The docs' update example types storageSize as a string: accepted.
    assert api.post("/networkstorage/update", {"storageId": first, "storageSize": "300"}).ok
    assert_error(
        api.post("/networkstorage/update", {"storageId": first, "storageSize": 100}),
        400,
        "VALIDATOR_PARAM",
        "only grow",
    )
    assert api.post("/networkstorage/delete", {"storageId": first}).json() == {}
    assert_error(
        api.post("/networkstorage/delete", {"storageId": first}), 400, "NETWORK_STORAGE_NOT_FOUND"
    )
    assert_error(
        api.post("/networkstorage/update", {"storageId": first, "storageSize": 400}),
        400,
        "NETWORK_STORAGE_NOT_FOUND",
    )
    assert api.get("/networkstorages/list").json()["total"] == 1


@pytest.mark.parametrize(
    ("body", "status", "reason", "word"),
    [
        ({"clusterId": "as-in-1", "storageName": "x", "storageSize": 10}, 400,
         "CUR_CLUSTER_NETWORK_STORAGE_NOT_SUPPORT", "as-in-1"),
        ({"clusterId": "mars-1", "storageName": "x", "storageSize": 10}, 400,
         "RESOURCE_NOT_FOUND", "clusterId"),
        ({"clusterId": "eu-de-1", "storageName": "x", "storageSize": 9}, 400,
         "VALIDATOR_PARAM", "storageSize"),
        ({"clusterId": "eu-de-1", "storageName": "x", "storageSize": 20000}, 400,
         "NETWORK_STORAGE_TOO_LARGE", "storageSize"),
        ({"clusterId": "eu-de-1", "storageName": "", "storageSize": 10}, 400,
         "VALIDATOR_PARAM", "storageName"),
        ({"clusterId": "eu-de-1", "storageName": "x"}, 400, "VALIDATOR_PARAM", "storageSize"),
        ({"clusterId": "eu-de-1", "storageName": "x", "storageSize": True}, 400,
         "VALIDATOR_PARAM", "storageSize"),
    ],
)  # fmt: skip
def test_create_errors(api, body, status, reason, word):
    assert_error(api.post("/networkstorage/create", body), status, reason, word)


def test_not_every_cluster_supports_network_storage_but_eu_de_01_does(api):
    clusters = {c["name"]: c for c in api.get("/clusters").json()["data"]}
    assert clusters["EU-DE-01"]["supportNetworkStorage"] is True
    assert not all(c["supportNetworkStorage"] for c in clusters.values())


def test_instances_mount_volumes_only_in_their_cluster(sandbox, api):
    volume = make(api, cluster="eu-de-1", name="dataset", size=40)
    mount = [{"Id": volume, "mountPoint": "/data"}]
    # No clusterId: the volume decides the cluster.
    instance_id = api.create(productId="4090.16c96g.v2", networkStorages=mount)
    item = api.instance(instance_id)
    assert item["clusterId"] == "eu-de-1"
    assert item["volumeMounts"] == [
        {"type": "network", "size": 40, "id": volume, "mountPath": "/data"}
    ]
    listed = api.get("/gpu/instances").json()["instances"][0]
    assert listed["volumeMounts"][0]["size"] == "40"  # the list types size as a string
    default_mount = api.instance(
        api.create(productId="4090.16c96g.v2", networkStorages=[{"Id": volume}])
    )
    assert default_mount["volumeMounts"][0]["mountPath"] == "/network"
    elsewhere = {**BASIC_INSTANCE, "clusterId": "as-sgp-2", "networkStorages": mount}
    assert_error(
        api.post("/gpu/instance/create", elsewhere), 400, "NETWORK_STORAGE_UNAVAILABLE", "eu-de-1"
    )
    sandbox.set_stock(0, cluster_id="eu-de-1", product_id="4090.16c96g.v2")
    assert_error(
        api.post(
            "/gpu/instance/create",
            {**BASIC_INSTANCE, "productId": "4090.16c96g.v2", "networkStorages": mount},
        ),
        400,
        "INSUFFICIENT_RESOURCE",
        "eu-de-1",
    )
    assert_error(
        api.post("/networkstorage/delete", {"storageId": volume}), 400, "NETWORK_STORAGE_IN_USE"
    )
    for instance in api.get("/gpu/instances").json()["instances"]:
        api.post("/gpu/instance/delete", {"instanceId": instance["id"]})
    assert api.post("/networkstorage/delete", {"storageId": volume}).json() == {}


def test_storage_listing_follows_the_page_base(sandbox, api):
    for i in range(3):
        make(api, name=f"v{i}")
    sandbox.configure(page_base=1)
    page0 = api.get("/networkstorages/list", pageNo=0, pageSize=2).json()["data"]
    page1 = api.get("/networkstorages/list", pageNo=1, pageSize=2).json()["data"]
    page2 = api.get("/networkstorages/list", pageNo=2, pageSize=2).json()["data"]
    assert page0 == page1 and len(page2) == 1
