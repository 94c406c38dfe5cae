"""Instance metrics under /openapi/v1 (shape, drivable utilisation, default pattern, no data
when not running) and the spot lifecycle: notices (forced and random), reclaim, migrate.
"""

from __future__ import annotations

import time

import pytest
import requests
from sandbox_helpers import Api, assert_error

from novita_notebook.sandbox import Sandbox

SPOT_SGP = {"billingMode": "spot", "clusterId": "as-sgp-2"}


def metrics(api: Api, instance_id: str, **params) -> requests.Response:
    url = api.sandbox.url + "/openapi/v1/metrics/gpu/instance"
    return api.session.get(url, params={"instanceId": instance_id, **params}, timeout=10)


def test_metrics_shape_and_driven_utilisation(sandbox, api):
    instance_id = api.create(gpuNum=2)
    api.wait_for(instance_id, "running")
    now = int(time.time())
    body = metrics(api, instance_id, startTime=now - 5, endTime=now + 1, interval=1).json()
    assert set(body) == {
        "cpuUtilization", "memUtilization", "rootDiskUtilization", "gpuUtilization",
        "gpuMemUtilization",
    }  # fmt: skip
    assert body["cpuUtilization"], body
    point = body["cpuUtilization"][0]
    assert set(point) == {"timestamp", "value"} and point["timestamp"].isdigit()
    assert isinstance(point["value"], float)
    gpu = body["gpuUtilization"]
    assert set(gpu) == {"avg", "gpuIds"} and [g["gpuId"] for g in gpu["gpuIds"]] == ["0", "1"]
    assert len(gpu["gpuIds"][0]["items"]) == len(gpu["avg"])
    # Busy right after start (default pattern), then whatever a test sets.
    assert gpu["avg"][-1]["value"] > 50
    control = requests.post(
        f"{sandbox.url}/_sandbox/utilization", json={"instanceId": instance_id, "gpu": 3}, timeout=5
    )
    assert control.json() == {"instanceId": instance_id, "gpu": 3.0}
    latest = metrics(api, instance_id, interval=1).json()["gpuUtilization"]["avg"][-1]["value"]
    assert latest < 10
    sandbox.set_utilization(instance_id, 95)
    latest = metrics(api, instance_id, interval=1).json()["gpuUtilization"]["avg"][-1]["value"]
    assert latest > 85


def test_default_pattern_goes_idle_and_no_data_when_stopped(api):
    instance_id = api.create()
    assert metrics(api, instance_id).json()["gpuUtilization"] == {"avg": [], "gpuIds": []}
    api.wait_for(instance_id, "running")
    time.sleep(2.2)  # busy lasts 600 s / speed 300 = 2 s
    avg = metrics(api, instance_id, interval=1).json()["gpuUtilization"]["avg"]
    assert avg[-1]["value"] < 10
    api.post("/gpu/instance/stop", {"instanceId": instance_id})
    api.wait_for(instance_id, "exited")
    assert metrics(api, instance_id).json()["cpuUtilization"] == []


def test_metrics_auth_and_errors(sandbox, api):
    url = sandbox.url + "/openapi/v1/metrics/gpu/instance"
    assert_error(requests.get(url, params={"instanceId": "x"}, timeout=5), 401, "UNAUTHORIZED")
    assert_error(metrics(api, "missing"), 400, "RESOURCE_NOT_FOUND")
    assert_error(api.session.get(url, timeout=5), 400, "VALIDATOR_PARAM", "instanceId")
    instance_id = api.create()
    assert_error(metrics(api, instance_id, interval=-1), 400, "VALIDATOR_PARAM", "interval")
    # Not under the gpu-instance prefix.
    assert api.get("/metrics/gpu/instance", instanceId=instance_id).status_code == 404


def test_forced_notice_reclaims_then_terminates(sandbox, api):
    instance_id = api.create(**SPOT_SGP)
    assert api.instance(instance_id)["spotStatus"] == ""
    api.wait_for(instance_id, "running")
    assert api.instance(instance_id)["spotStatus"] == "running"
    answer = requests.post(
        f"{sandbox.url}/_sandbox/spot/reclaim",
        json={"instanceId": instance_id, "noticeSeconds": 300},  # 1 s at speed 300
        timeout=5,
    ).json()
    item = api.instance(instance_id)
    assert item["spotStatus"] == "notified" and item["status"] == "running"
    assert item["spotReclaimTime"] == answer["spotReclaimTime"]
    assert 0 < int(item["spotReclaimTime"]) - time.time() < 3
    seen = set()
    deadline = time.monotonic() + 10
    while api.instance(instance_id)["status"] != "exited":
        seen.add(api.instance(instance_id)["spotStatus"])
        assert time.monotonic() < deadline
        time.sleep(0.01)
    final = api.instance(instance_id)
    assert "reclaiming" in seen and final["spotStatus"] == "terminated"
    assert final["statusError"]["state"] == "spotReclaimed"
    assert api.post("/gpu/instance/start", {"instanceId": instance_id}).ok
    api.wait_for(instance_id, "running")
    assert api.instance(instance_id)["spotStatus"] == "running"
    assert api.instance(instance_id)["spotReclaimTime"] == "0"
    api.post("/gpu/instance/stop", {"instanceId": instance_id})
    assert api.instance(instance_id)["spotStatus"] == ""


def test_reclaim_control_errors(sandbox, api):
    on_demand = api.create()
    with pytest.raises(ValueError, match="not a spot"):
        sandbox.spot_reclaim(on_demand)
    spot = api.create(**SPOT_SGP)
    with pytest.raises(ValueError, match="invalid state change"):
        sandbox.spot_reclaim(spot)  # not running yet
    response = requests.post(
        f"{sandbox.url}/_sandbox/spot/reclaim", json={"instanceId": spot, "noticeSeconds": -1}
    )
    assert_error(response, 400, "VALIDATOR_PARAM", "noticeSeconds")


def test_migrate_moves_a_notified_instance_and_clears_the_notice(sandbox, api):
    sandbox.set_stock(5, product_id="4090.16c62g")
    instance_id = api.create(**SPOT_SGP)
    api.wait_for(instance_id, "running")
    sandbox.spot_reclaim(instance_id, notice_seconds=3600)
    assert api.post("/gpu/instance/migrate", {"instanceId": instance_id}).json() == {}
    assert api.instance(instance_id)["status"] == "migrating"
    api.wait_for(instance_id, "running")
    item = api.instance(instance_id)
    assert item["clusterId"] == "cn-hongkong-1"  # the only other cluster of this product
    assert item["spotStatus"] == "running" and item["spotReclaimTime"] == "0"
    stock = {
        c: next(p for p in api.get("/products", clusterId=c).json()["data"] if p["id"] == "4090.16c62g")
        for c in ("as-sgp-2", "cn-hongkong-1")
    }  # fmt: skip
    assert stock["as-sgp-2"]["inventoryState"] == "normal"  # 5 free again
    assert stock["cn-hongkong-1"]["inventoryState"] == "low"  # 4 left


def test_migrate_without_room_elsewhere(sandbox, api):
    instance_id = api.create(**SPOT_SGP)
    api.wait_for(instance_id, "running")
    sandbox.set_stock(0, cluster_id="cn-hongkong-1", product_id="4090.16c62g")
    sandbox.spot_reclaim(instance_id)
    assert_error(
        api.post("/gpu/instance/migrate", {"instanceId": instance_id}),
        400,
        "MIGRATE_INSUFFICIENT_RESOURCE",
    )
    assert api.instance(instance_id)["spotStatus"] == "notified"
    assert_error(
        api.post("/gpu/instance/migrate", {"instanceId": "nope"}), 400, "RESOURCE_NOT_FOUND"
    )


def test_random_notices_at_a_configured_rate():
    # 3600 notices per hour at speed 300: one every ~0.04 s of wall time on average.
    with Sandbox(speed=300, seed=3, spot_notice_rate=3600) as sb:
        api = Api(sb)
        instance_id = api.create(**SPOT_SGP)
        api.wait_for(instance_id, "running")
        deadline = time.monotonic() + 5
        while api.instance(instance_id)["spotStatus"] != "notified":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        on_demand = api.create(clusterId="as-sgp-2")
        api.wait_for(on_demand, "running")
        time.sleep(0.3)
        assert api.instance(on_demand)["spotStatus"] == ""
    with Sandbox(speed=300, seed=3) as quiet:  # default: no random notices
        api = Api(quiet)
        instance_id = api.create(**SPOT_SGP)
        api.wait_for(instance_id, "running")
        time.sleep(0.3)
        assert api.instance(instance_id)["spotStatus"] == "running"
