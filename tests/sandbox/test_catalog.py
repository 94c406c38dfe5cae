"""Clusters and products over HTTP: shapes, every documented filter, regional prices, stock
signals and determinism of the seeded catalog.
"""

from __future__ import annotations

from sandbox_helpers import BASIC_INSTANCE, Api, assert_error

from novita_notebook.sandbox import Sandbox

EXPECTED_CLUSTERS = {
    "AS-SGP-02", "CN-HK-01", "AS-IN-01", "US-CA-06", "US-WEST-01", "EU-DE-01", "EU-WEST-01",
    "OC-AU-01",
}  # fmt: skip


def test_clusters_have_every_documented_field(api):
    data = api.get("/clusters").json()["data"]
    assert {c["name"] for c in data} == EXPECTED_CLUSTERS
    by_name = {c["name"]: c for c in data}
    assert by_name["AS-SGP-02"]["id"] == "as-sgp-2"
    assert by_name["CN-HK-01"]["id"] == "cn-hongkong-1"
    for cluster in data:
        assert set(cluster) == {
            "id", "name", "availableGpuType", "supportNetworkStorage", "supportInstanceNetwork"
        }  # fmt: skip
        assert isinstance(cluster["supportNetworkStorage"], bool)
        assert cluster["availableGpuType"], cluster
    assert "RTX 4090" in by_name["AS-SGP-02"]["availableGpuType"]


def test_unfiltered_products_list_each_id_once_with_every_region(api):
    data = api.get("/products").json()["data"]
    ids = [p["id"] for p in data]
    assert len(ids) == len(set(ids)) >= 10
    for product in data:
        assert product["regions"] and len(set(product["regions"])) == len(product["regions"])
        assert all(r.endswith(")") and " (" in r for r in product["regions"])
        assert product["price"].isdigit()
        assert product["spotPrice"] is None or product["spotPrice"].isdigit()
        assert product["inventoryState"] in {"none", "low", "normal", "high"}
        assert "onDemand" in product["billingMethods"]  # the default billingMethod filter
        for key in ("cpuPerGpu", "memoryPerGpu", "diskPerGpu", "minRootFS", "maxRootFS"):
            assert isinstance(product[key], int)
    by_id = {p["id"]: p for p in data}
    # The live examples: one GPU under several ids, one price per id, regions listed together.
    assert by_id["4090.16c62g"]["price"] == "35000"
    assert by_id["4090.16c62g"]["regions"] == ["AS-SGP-02 (Singapore)", "CN-HK-01 (Hong Kong)"]
    assert by_id["26"]["name"] == "RTX 4090 24GB" and by_id["26"]["price"] == "67000"
    assert len(by_id["26"]["regions"]) == 1 and by_id["26"]["spotPrice"] is None
    rtx4090 = [p for p in data if p["name"] == "RTX 4090 24GB"]
    assert len(rtx4090) >= 3 and len({p["price"] for p in rtx4090}) == len(rtx4090)
    regions = {r for p in rtx4090 for r in p["regions"]}
    assert len(regions) == 8, "the 4090 is sold in every cluster under one id or another"


def test_a_region_can_run_out_while_the_product_stays_available(sandbox, api):
    sandbox.set_stock(0, cluster_id="as-sgp-2", product_id="4090.16c62g")
    anywhere = next(p for p in api.get("/products").json()["data"] if p["id"] == "4090.16c62g")
    assert anywhere["availableDeploy"] is True and "AS-SGP-02 (Singapore)" in anywhere["regions"]
    there = api.get("/products", clusterId="as-sgp-2").json()["data"]
    row = next(p for p in there if p["id"] == "4090.16c62g")
    assert row["regions"] == ["AS-SGP-02 (Singapore)"]
    assert row["availableDeploy"] is False and row["inventoryState"] == "none"
    body = {**BASIC_INSTANCE, "clusterId": "as-sgp-2"}
    assert_error(api.post("/gpu/instance/create", body), 400, "INSUFFICIENT_RESOURCE", "as-sgp-2")
    sandbox.set_stock(0, product_id="4090.16c62g")
    gone = next(p for p in api.get("/products").json()["data"] if p["id"] == "4090.16c62g")
    assert gone["availableDeploy"] is False and gone["inventoryState"] == "none"


def test_billing_method_filters_and_defaults_to_on_demand(api):
    default = {p["id"] for p in api.get("/products").json()["data"]}
    on_demand = {p["id"] for p in api.get("/products", billingMethod="onDemand").json()["data"]}
    spot = api.get("/products", billingMethod="spot").json()["data"]
    assert default == on_demand
    assert "A100-80GB.spot" in {p["id"] for p in spot} and "A100-80GB.spot" not in default
    assert all(p["spotPrice"].isdigit() and "spot" in p["billingMethods"] for p in spot)
    assert "26" not in {p["id"] for p in spot}


def test_products_include_the_expected_gpu_range(api):
    names = {p["name"] for p in api.get("/products").json()["data"]}
    for expected in (
        "RTX 4090 24GB",
        "RTX 3090 24GB",
        "L40S 48GB",
        "A100 SXM 80GB",
        "H100 SXM 80GB",
    ):
        assert expected in names
    assert any("H200" in n for n in names) and any("6000 Ada" in n for n in names)


def test_some_offers_are_sold_out(api):
    data = api.get("/products").json()["data"]
    none = [p for p in data if p["inventoryState"] == "none"]
    assert none, "the seeded catalog should have unavailable offers"
    assert all(p["availableDeploy"] is False for p in none)


def test_product_filters(api):
    sgp = api.get("/products", clusterId="as-sgp-2").json()["data"]
    assert sgp and all(p["regions"] == ["AS-SGP-02 (Singapore)"] for p in sgp)
    fuzzy = api.get("/products", productName="4090").json()["data"]
    assert fuzzy and all("4090" in p["name"] for p in fuzzy)
    lower = api.get("/products", productName="rtx 40").json()["data"]
    assert {p["id"] for p in lower} >= {"4090.16c62g"}
    big_cpu = api.get("/products", minCpuPerGpu=16).json()["data"]
    assert big_cpu and all(p["cpuPerGpu"] >= 16 for p in big_cpu)
    big_mem = api.get("/products", minMemoryPerGpu=200).json()["data"]
    assert big_mem and all(p["memoryPerGpu"] >= 200 for p in big_mem)
    big_disk = api.get("/products", minRootFSSize=5000).json()["data"]
    assert big_disk and all(p["maxRootFS"] >= 5000 for p in big_disk)
    spot = api.get("/products", billingMethod="spot").json()["data"]
    assert spot and all("spot" in p["billingMethods"] and p["spotPrice"] for p in spot)
    assert all(p["regions"] == ["AS-SGP-02 (Singapore)"] for p in sgp)
    assert not any(p["id"] == "H200.16c240g" for p in spot)
    monthly = api.get("/products", billingMethod="monthly").json()["data"]
    assert monthly and all(p["monthlyPrice"] for p in monthly)
    assert api.get("/products", clusterId="nowhere-1").json()["data"] == []


def test_gpu_num_filter_reflects_whether_that_many_fit(sandbox, api):
    sandbox.set_stock(3, cluster_id="as-sgp-2", product_id="4090.16c62g")
    one = api.get("/products", clusterId="as-sgp-2", productName="4090", gpuNum=1).json()["data"]
    four = api.get("/products", clusterId="as-sgp-2", productName="4090", gpuNum=4).json()["data"]
    pick = lambda rows: next(p for p in rows if p["id"] == "4090.16c62g")  # noqa: E731
    assert pick(one)["availableDeploy"] is True
    assert pick(four)["availableDeploy"] is False
    assert pick(four)["inventoryState"] == "low"


def test_product_filter_errors(api):
    assert_error(api.get("/products", gpuNum=9), 400, "VALIDATOR_PARAM", "gpuNum")
    assert_error(api.get("/products", gpuNum="two"), 400, "VALIDATOR_PARAM", "gpuNum")
    assert_error(
        api.get("/products", billingMethod="yearly"), 400, "VALIDATOR_PARAM", "billingMethod"
    )
    assert_error(api.get("/products", minCpuPerGpu=-1), 400, "VALIDATOR_PARAM", "minCpuPerGpu")


def test_catalog_is_deterministic_for_a_seed_and_varies_across_seeds():
    def snapshot(seed: int) -> list:
        with Sandbox(seed=seed) as sb:
            rows = Api(sb).get("/products").json()["data"]
        with Sandbox(seed=seed) as sb:
            regional = Api(sb).get("/products", clusterId="us-west-1").json()["data"]
        return [(p["id"], p["price"], p["inventoryState"]) for p in rows + regional]

    assert snapshot(3) == snapshot(3)
    assert snapshot(3) != snapshot(4)
