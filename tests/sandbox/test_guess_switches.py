"""The switches that serve the other plausible answer to each unverified guess (one per guess,
docs/assumptions.md), and the places where the sandbox follows the docs rather than being
stricter than they are (create names, minCudaVersion, pageSize, metrics parameters).
"""

from __future__ import annotations

import time

import pytest
import requests
from sandbox_helpers import Api, assert_error

from novita_notebook.sandbox import Sandbox
from novita_notebook.sandbox.__main__ import build_parser


def _switched(**switches) -> Sandbox:
    return Sandbox(speed=300, seed=7, switches=switches)


def test_every_switch_defaults_to_the_guess(sandbox):
    config = sandbox.config
    assert config["clusterNames"] == "label" and config["filteredRegions"] == "asked"
    assert config["metricsScale"] == 100.0 and config["metricsStep"] == 0
    assert config["spotFields"] == "detail" and config["timestamps"] == "seconds"
    assert config["repeatActions"] is False and config["stopWhen"] == "any"
    assert config["healthyStatusError"] is False and config["storagePrice"] == "hour"
    assert config["gpuNumPrices"] == "perGpu" and config["retryAfter"] is True
    assert config["jupyterBlock"] == "always" and config["walletNotFound"] is False
    assert config["badKeyStatus"] == 401


def test_cluster_names_unlike_the_region_labels():
    with _switched(clusterNames="city") as sb:
        api = Api(sb)
        clusters = {c["id"]: c["name"] for c in api.get("/clusters").json()["data"]}
        assert clusters["as-sgp-2"] == "Singapore" and clusters["us-ca-nas-6"] == "California"
        labels = {r for p in api.get("/products").json()["data"] for r in p["regions"]}
        assert "AS-SGP-02 (Singapore)" in labels  # the labels stay as they are
        assert not {name for name in clusters.values()} & {r.split(" (")[0] for r in labels}
        instance = api.instance(api.create(clusterId="as-sgp-2"))
        assert instance["clusterName"] == "Singapore"
        sb.configure(cluster_names="label")
        assert api.get("/clusters").json()["data"][0]["name"] == "AS-SGP-02"


def test_filtered_listing_keeping_every_region_keeps_the_asked_regions_stock():
    with _switched(filteredRegions="all") as sb:
        api = Api(sb)
        sb.set_stock(0, cluster_id="cn-hongkong-1", product_id="4090.16c62g")
        listed = api.get("/products", clusterId="cn-hongkong-1").json()["data"]
        entry = next(p for p in listed if p["id"] == "4090.16c62g")
        assert entry["regions"] == ["AS-SGP-02 (Singapore)", "CN-HK-01 (Hong Kong)"]
        assert entry["availableDeploy"] is False  # still Hong Kong's own stock
        assert all(p["id"] != "26" for p in listed)  # still only Hong Kong's products


def test_metrics_as_fractions_and_at_the_apis_own_step():
    with _switched(metricsScale=1, metricsStep=300, pendingRate=0) as sb:
        api = Api(sb)
        instance_id = api.create()
        api.wait_for(instance_id, "running")
        now = int(time.time())
        answer = sb_metrics(sb, instance_id, startTime=now - 3600, endTime=now, interval=60)
        values = [p["value"] for p in answer["cpuUtilization"] + answer["gpuUtilization"]["avg"]]
        assert values and all(0 <= v <= 1 for v in values)
        stamps = [int(p["timestamp"]) for p in answer["cpuUtilization"]]
        assert len(stamps) == 1 or stamps[1] - stamps[0] == 300


def sb_metrics(sb: Sandbox, instance_id: str, **params) -> dict:
    url = sb.url + "/openapi/v1/metrics/gpu/instance"
    headers = {"Authorization": f"Bearer {sb.api_key}"}
    response = requests.get(url, params={"instanceId": instance_id, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("where", ["list", "none"])
def test_spot_fields_in_lists_too_or_nowhere(where):
    with _switched(spotFields=where) as sb:
        api = Api(sb)
        instance_id = api.create(billingMode="spot")
        item = api.get("/gpu/instances").json()["instances"][0]
        detail = api.instance(instance_id)
        assert ("spotStatus" in item) is (where == "list")
        assert ("spotStatus" in detail) is (where == "list")
        assert ("spotReclaimTime" in detail) is (where == "list")


@pytest.mark.parametrize("style", ["ms", "none"])
def test_timestamps_in_milliseconds_or_absent(style):
    with _switched(timestamps=style) as sb:
        api = Api(sb)
        detail = api.instance(api.create())
        if style == "none":
            assert not {"createdAt", "lastStartedAt", "lastStoppedAt"} & set(detail)
        else:
            assert len(detail["createdAt"]) == 13 and detail["createdAt"].isdigit()


def test_a_repeated_restart_acts_again_only_with_the_switch(sandbox, api):
    instance_id = api.create()
    api.wait_for(instance_id, "running")
    assert api.post("/gpu/instance/restart", {"instanceId": instance_id}).status_code == 200
    again = api.post("/gpu/instance/restart", {"instanceId": instance_id})
    assert_error(again, 400, "REQUEST", "invalid state change")
    sandbox.configure(repeat_actions=True)
    assert api.post("/gpu/instance/restart", {"instanceId": instance_id}).status_code == 200
    record = sandbox.world.instances[instance_id]
    assert record.restarts == 2 and record.actions == {"restart": 1}


def test_stop_accepted_only_while_running():
    with _switched(stopWhen="running", pendingRate=0) as sb:
        api = Api(sb)
        instance_id = api.create()
        early = api.post("/gpu/instance/stop", {"instanceId": instance_id})
        assert_error(early, 400, "REQUEST", "invalid state change")
        api.wait_for(instance_id, "running")
        assert api.post("/gpu/instance/stop", {"instanceId": instance_id}).status_code == 200


def test_healthy_instances_carry_a_status_error():
    with _switched(healthyStatusError=True) as sb:
        api = Api(sb)
        instance_id = api.create()
        api.wait_for(instance_id, "running")
        detail = api.instance(instance_id)
        assert detail["statusError"]["state"] and detail["status"] == "running"
        listed = api.get("/gpu/instances").json()["instances"][0]
        assert listed["statusError"] == detail["statusError"]


def test_volume_price_per_month_and_prices_for_the_whole_instance():
    with _switched(storagePrice="month", gpuNumPrices="total") as sb:
        api = Api(sb)
        api.post(
            "/networkstorage/create",
            {"clusterId": "as-sgp-2", "storageName": "d", "storageSize": 100},
        )
        monthly = int(api.get("/networkstorages/list").json()["data"][0]["price"])
        sb.configure(storagePrice="hour")
        hourly = int(api.get("/networkstorages/list").json()["data"][0]["price"])
        assert abs(monthly - 730 * hourly) <= 730
        one = {p["id"]: p for p in api.get("/products").json()["data"]}
        two = {p["id"]: p for p in api.get("/products", gpuNum=2).json()["data"]}
        assert int(two["4090.16c62g"]["price"]) == 2 * int(one["4090.16c62g"]["price"])


def test_rate_limit_without_retry_after():
    with _switched(retryAfter=False) as sb:
        sb.set_faults(rateLimitPerMinute=1)
        api = Api(sb)
        api.get("/clusters")
        limited = api.get("/clusters")
        assert limited.status_code == 429 and "Retry-After" not in limited.headers


def test_jupyter_block_only_when_used():
    with _switched(jupyterBlock="whenUsed") as sb:
        api = Api(sb)
        assert "connectComponentJupyter" not in api.instance(api.create())
        with_jupyter = api.instance(api.create(name="j", ports="8888/http"))
        assert with_jupyter["connectComponentJupyter"]["port"] == 8888


def test_delete_answers_wallet_not_found_and_deletes_nothing():
    with _switched(walletNotFound=True) as sb:
        api = Api(sb)
        instance_id = api.create()
        answer = api.post("/gpu/instance/delete", {"instanceId": instance_id})
        assert_error(answer, 500, "WALLET_NOT_FOUND")
        assert api.instance(instance_id)["status"] not in ("toRemove", "removing", "removed")


def test_a_wrong_key_answered_with_the_documented_400():
    with _switched(badKeyStatus=400) as sb:
        wrong = requests.get(sb.api_url + "/clusters", headers={"Authorization": "Bearer sk_no"})
        assert_error(wrong, 400, "INVALID_USER_TOKEN")


def test_an_ambiguous_action_is_applied_and_its_answer_lost(sandbox, api):
    instance_id = api.create()
    api.wait_for(instance_id, "running")
    sandbox.set_faults(ambiguous_action_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.post("/gpu/instance/restart", {"instanceId": instance_id})
    sandbox.clear_faults()
    assert sandbox.world.instances[instance_id].restarts == 1


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"clusterNames": "codes"}, "clusterNames: must be one of label, city"),
        ({"repeatActions": 1}, "repeatActions: must be true or false"),
        ({"metricsScale": 0}, "metricsScale"),
        ({"metricsStep": 1.5}, "metricsStep"),
        ({"badKeyStatus": 403}, "badKeyStatus"),
    ],
)
def test_bad_switch_values_are_refused_everywhere(sandbox, body, word):
    answer = requests.post(sandbox.url + "/_sandbox/config", json=body, timeout=5)
    assert_error(answer, 400, "VALIDATOR_PARAM", word)
    with pytest.raises(ValueError, match=word.split(":")[0]):
        Sandbox(switches=body)


def test_the_command_line_takes_any_switch():
    args = build_parser().parse_args(
        ["--switch", "clusterNames=city", "--switch", "retryAfter=false"]
    )
    assert dict(args.switch) == {"clusterNames": "city", "retryAfter": False}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--switch", "nonsense"])


# -- where the docs are looser than the sandbox was ------------------------------------------------
def test_names_and_cuda_versions_as_loose_as_the_docs(api):
    instance_id = api.create(name="Lab 3 – Ada's_model", minCudaVersion="12.4.1-update")
    assert api.instance(instance_id)["name"] == "Lab 3 – Ada's_model"
    assert_error(api.post("/gpu/instance/create", {"name": "x" * 256}), 400, "VALIDATOR_PARAM")


def test_metrics_parameters_as_loose_as_the_docs(api, sandbox):
    instance_id = api.create()
    api.wait_for(instance_id, "running")
    now = int(time.time())
    huge = sb_metrics(sandbox, instance_id, startTime=0, endTime=now, interval=1)
    assert 0 < len(huge["cpuUtilization"]) <= 2000  # the latest points, not a refusal
    backwards = sb_metrics(sandbox, instance_id, startTime=now, endTime=now - 60)
    assert backwards["cpuUtilization"] == []
    assert sb_metrics(sandbox, instance_id, interval=0)["cpuUtilization"]
