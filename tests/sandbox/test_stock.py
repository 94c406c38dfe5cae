"""Capacity: create consumes stock, delete frees it, exhaustion answers INSUFFICIENT_RESOURCE,
listings follow, and parallel creates never oversell.
"""

from __future__ import annotations

import threading

from sandbox_helpers import Api, assert_error

SGP_4090 = {"clusterId": "as-sgp-2", "productId": "4090.16c62g"}


def offer(api: Api) -> dict:
    rows = api.get("/products", clusterId="as-sgp-2").json()["data"]
    return next(p for p in rows if p["id"] == "4090.16c62g")


def test_create_consumes_and_delete_frees_stock(sandbox, api):
    sandbox.set_stock(5, cluster_id="as-sgp-2", product_id="4090.16c62g")
    assert offer(api)["inventoryState"] == "normal"
    first = api.create(gpuNum=4, **SGP_4090)
    assert offer(api)["inventoryState"] == "low" and offer(api)["availableDeploy"]
    response = api.post("/gpu/instance/create", {**_body(), "gpuNum": 2, **SGP_4090})
    assert_error(response, 400, "INSUFFICIENT_RESOURCE", "4090")
    api.create(gpuNum=1, **SGP_4090)
    assert offer(api)["inventoryState"] == "none" and offer(api)["availableDeploy"] is False
    assert api.post("/gpu/instance/delete", {"instanceId": first}).ok
    assert offer(api)["inventoryState"] == "low"
    api.create(gpuNum=4, **SGP_4090)


def _body() -> dict:
    from sandbox_helpers import BASIC_INSTANCE

    return dict(BASIC_INSTANCE)


def test_without_cluster_any_cluster_with_stock_is_used(sandbox, api):
    sandbox.set_stock(0, product_id="4090.16c62g")
    assert_error(
        api.post("/gpu/instance/create", {**_body(), "productId": "4090.16c62g"}),
        400,
        "INSUFFICIENT_RESOURCE",
        "any cluster",
    )
    sandbox.set_stock(1, cluster_id="cn-hongkong-1", product_id="4090.16c62g")
    instance_id = api.create(productId="4090.16c62g")
    assert api.instance(instance_id)["clusterId"] == "cn-hongkong-1"


def test_stock_control_endpoint_and_validation(sandbox, api):
    control = f"{sandbox.url}/_sandbox/stock"
    response = api.session.post(control, json={"stock": 0, "clusterId": "eu-de-1"})
    assert response.status_code == 200 and response.json()["updated"] >= 3
    rows = api.get("/products", clusterId="eu-de-1").json()["data"]
    assert rows and all(p["inventoryState"] == "none" for p in rows)
    assert_error(api.session.post(control, json={"stock": -1}), 400, "VALIDATOR_PARAM", "stock")
    assert_error(api.session.post(control, json={}), 400, "VALIDATOR_PARAM", "stock")
    assert_error(
        api.session.post(control, json={"stock": 1, "clusterId": "x"}), 400, "RESOURCE_NOT_FOUND"
    )
    assert_error(
        api.session.post(control, json={"stock": 1, "gpu": 1}), 400, "VALIDATOR_PARAM", "gpu"
    )


def test_set_stock_rejects_bad_arguments(sandbox):
    import pytest

    with pytest.raises(ValueError, match="stock"):
        sandbox.set_stock(-2)
    with pytest.raises(ValueError, match="productId"):
        sandbox.set_stock(1, product_id="nope")


def test_reset_restores_the_seeded_state(sandbox, api):
    before = api.get("/products").json()["data"]
    api.create()
    sandbox.set_stock(0)
    sandbox.set_faults(latencyMs=1)
    sandbox.reset()
    assert api.get("/gpu/instances").json()["total"] == 0
    assert api.get("/products").json()["data"] == before
    assert api.session.post(f"{sandbox.url}/_sandbox/reset").json() == {}


def test_parallel_creates_never_oversell(sandbox):
    sandbox.set_stock(10, cluster_id="as-sgp-2", product_id="4090.16c62g")
    outcomes: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        api = Api(sandbox)
        for _ in range(5):
            response = api.post("/gpu/instance/create", {**_body(), "gpuNum": 1, **SGP_4090})
            with lock:
                outcomes.append(response.status_code)
            assert response.status_code in (200, 400)
            if response.status_code == 400:
                assert response.json()["reason"] == "INSUFFICIENT_RESOURCE"
        api.session.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(200) == 10 and outcomes.count(400) == 30
    check = Api(sandbox)
    assert check.get("/gpu/instances", pageSize=100).json()["total"] == 10
    assert offer(check)["inventoryState"] == "none"
