"""Instances over HTTP: create validation, the get/list shapes, pagination, the lifecycle state
machine, invalid transitions, edit, failed pulls and the per-port proxy endpoints.
"""

from __future__ import annotations

import time

import pytest
import requests
from sandbox_helpers import BASIC_INSTANCE, assert_error


def test_create_returns_an_id_and_get_has_every_documented_field(api, sandbox):
    instance_id = api.create(
        name="full-1",
        ports="8888/http, 3306/tcp",
        envs=[{"key": "A", "value": "1"}],
        command="python train.py",
        entrypoint="/bin/sh -c",
        clusterId="as-sgp-2",
    )
    item = api.instance(instance_id)
    for key in (
        "id", "name", "clusterId", "clusterName", "status", "imageUrl", "imageAuthId", "command",
        "cpuNum", "memory", "gpuNum", "portMappings", "productId", "productName", "rootfsSize",
        "volumeMounts", "statusError", "envs", "kind", "billingMode", "endTime", "entrypoint",
        "network", "node", "jobs", "connectComponentSSH", "connectComponentWebTerminal",
        "connectComponentJupyter", "connectComponentLog", "freeStorageSize", "keepDataDay",
        "createdAt", "lastStartedAt", "lastStoppedAt", "spotStatus", "spotReclaimTime",
    ):  # fmt: skip
        assert key in item, key
    assert item["id"] == instance_id and item["name"] == "full-1"
    assert item["clusterId"] == "as-sgp-2" and item["clusterName"] == "AS-SGP-02"
    assert item["cpuNum"] == "16" and item["memory"] == "62" and item["gpuNum"] == "1"
    assert item["endTime"] == "-1" and item["spotStatus"] == "" and item["spotReclaimTime"] == "0"
    assert item["createdAt"].isdigit() and abs(int(item["createdAt"]) - time.time()) < 60
    assert item["envs"] == [{"key": "A", "value": "1"}]
    ssh = item["connectComponentSSH"]
    assert ssh["sshCommand"].startswith("ssh root@127.0.0.1 -p ")
    assert ssh["password"]
    ports = {p["port"]: p for p in item["portMappings"]}
    assert ports[8888]["endpoint"] == f"{sandbox.url}/_sandbox/proxy/{instance_id}/8888/"
    assert ports[3306]["type"] == "tcp"
    jupyter = item["connectComponentJupyter"]
    assert jupyter["port"] == 8888 and jupyter["address"] == ports[8888]["endpoint"]
    assert item["node"] == [{"maxRootfsSize": 1000}]


def test_lifecycle_walks_the_documented_statuses(api):
    instance_id = api.create()
    seen = api.wait_for(instance_id, "running")
    assert seen[-1] == "running"
    assert set(seen) <= {"toCreate", "creating", "pulling", "running"}
    assert "pulling" in seen
    started = api.instance(instance_id)
    assert int(started["lastStartedAt"]) > 0 and started["connectComponentSSH"]["isRunning"]

    assert api.post("/gpu/instance/stop", {"instanceId": instance_id}).json() == {}
    assert api.instance(instance_id)["status"] in {"toStop", "stopping", "exited"}
    seen = api.wait_for(instance_id, "exited")
    assert set(seen) <= {"toStop", "stopping", "exited"}
    assert int(api.instance(instance_id)["lastStoppedAt"]) > 0

    assert api.post("/gpu/instance/start", {"instanceId": instance_id}).status_code == 200
    assert set(api.wait_for(instance_id, "running")) <= {"toStart", "starting", "running"}

    assert api.post("/gpu/instance/restart", {"instanceId": instance_id}).status_code == 200
    assert api.instance(instance_id)["status"] in {"toRestart", "restarting", "running"}
    assert set(api.wait_for(instance_id, "running")) <= {"toRestart", "restarting", "running"}

    assert api.post("/gpu/instance/delete", {"instanceId": instance_id}).status_code == 200
    assert set(api.wait_for(instance_id, "removed")) <= {"toRemove", "removing", "removed"}
    api.wait_gone(instance_id)
    assert_error(api.get("/gpu/instance", instanceId=instance_id), 404, "RESOURCE_NOT_FOUND")


def test_transition_times_scale_with_speed():
    from sandbox_helpers import Api

    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=1.0) as slow:
        api = Api(slow)
        instance_id = api.create()
        time.sleep(0.3)
        # At real-time speed a create sits in toCreate/creating for seconds.
        assert api.instance(instance_id)["status"] in {"toCreate", "creating"}


@pytest.mark.parametrize(
    ("status", "action"),
    [("running", "start"), ("exited", "stop"), ("exited", "restart")],
)
def test_invalid_transitions_say_invalid_state_change(api, status, action):
    instance_id = api.create()
    api.wait_for(instance_id, "running")
    if status == "exited":
        api.post("/gpu/instance/stop", {"instanceId": instance_id})
        api.wait_for(instance_id, "exited")
    response = api.post(f"/gpu/instance/{action}", {"instanceId": instance_id})
    assert_error(response, 400, "REQUEST", "invalid state change")


def test_start_while_creating_is_invalid_and_delete_works_in_any_state(api):
    instance_id = api.create()
    assert_error(
        api.post("/gpu/instance/start", {"instanceId": instance_id}),
        400,
        "REQUEST",
        "invalid state change",
    )
    assert api.post("/gpu/instance/delete", {"instanceId": instance_id}).status_code == 200
    # Deleting again while removing is harmless; acting on it is not.
    assert api.post("/gpu/instance/delete", {"instanceId": instance_id}).status_code == 200
    assert_error(
        api.post("/gpu/instance/stop", {"instanceId": instance_id}),
        400,
        "REQUEST",
        "invalid state change",
    )


def test_lifecycle_actions_on_unknown_ids(api):
    for action in ("start", "stop", "restart", "delete", "edit"):
        response = api.post(f"/gpu/instance/{action}", {"instanceId": "missing"})
        assert_error(response, 400, "RESOURCE_NOT_FOUND", "missing")
    assert_error(api.post("/gpu/instance/stop", {}), 400, "VALIDATOR_PARAM", "instanceId")
    assert_error(api.get("/gpu/instance"), 400, "VALIDATOR_PARAM", "instanceId")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"productId": None}, "productId"),
        ({"productId": ""}, "productId"),
        ({"gpuNum": 0}, "gpuNum"),
        ({"gpuNum": 9}, "gpuNum"),
        ({"gpuNum": "1"}, "gpuNum"),
        ({"gpuNum": True}, "gpuNum"),
        ({"rootfsSize": 6145}, "rootfsSize"),
        ({"rootfsSize": 1001}, "rootfsSize"),  # above the 4090's maxRootFS
        ({"rootfsSize": None}, "rootfsSize"),
        ({"imageUrl": ""}, "imageUrl"),
        ({"imageUrl": "x" * 501}, "imageUrl"),
        ({"imageUrl": 5}, "imageUrl"),
        ({"name": "a" * 256}, "name"),
        ({"ports": [80]}, "ports"),
        ({"ports": "80/udp"}, "ports"),
        ({"ports": "0/http"}, "ports"),
        ({"ports": "65536/tcp"}, "ports"),
        ({"ports": "2222/tcp"}, "ports"),
        ({"ports": "2224/http"}, "ports"),
        ({"ports": "abc"}, "ports"),
        ({"ports": "80/http, 80/tcp"}, "ports"),
        ({"ports": ", ".join(f"{8000 + i}/http" for i in range(16))}, "ports"),
        ({"envs": [{"key": "K", "value": "v"}] * 101}, "envs"),
        ({"envs": [{"key": "K" * 512, "value": "v"}]}, "envs[0].key"),
        ({"envs": [{"key": "K", "value": "v" * 4096}]}, "envs[0].value"),
        ({"envs": "A=1"}, "envs"),
        ({"command": "c" * 2048}, "command"),
        ({"entrypoint": "e" * 2048}, "entrypoint"),
        ({"kind": None}, "kind"),
        ({"kind": "tpu"}, "kind"),
        ({"kind": "cpu"}, "kind"),
        ({"billingMode": "yearly"}, "billingMode"),
        ({"billingMode": "monthly"}, "month"),
        ({"month": -1}, "month"),
        ({"networkStorages": [{"id": "x"}]}, "networkStorages[0].Id"),
        ({"networkStorages": [{"Id": "x", "mountPoint": ""}]}, "networkStorages[0].mountPoint"),
        ({"networkStorages": {"Id": "x"}}, "networkStorages"),
        ({"tools": [{"name": "Jupyter", "port": "http", "type": "http"}]}, "tools[0].port"),
    ],
)
def test_create_validation_names_the_field(api, overrides, field):
    body = {**BASIC_INSTANCE, **overrides}
    body = {k: v for k, v in body.items() if v is not None}
    assert_error(api.post("/gpu/instance/create", body), 400, "VALIDATOR_PARAM", field)


def test_create_reference_errors(api):
    body = dict(BASIC_INSTANCE)
    assert_error(
        api.post("/gpu/instance/create", {**body, "productId": "nope.1c1g"}),
        400,
        "RESOURCE_NOT_FOUND",
        "productId",
    )
    assert_error(
        api.post("/gpu/instance/create", {**body, "clusterId": "mars-1"}),
        400,
        "RESOURCE_NOT_FOUND",
        "clusterId",
    )
    assert_error(
        api.post("/gpu/instance/create", {**body, "productId": "H200.16c240g", "clusterId": "as-sgp-2"}),
        400, "RESOURCE_NOT_FOUND", "not offered",
    )  # fmt: skip
    assert_error(
        api.post("/gpu/instance/create", {**body, "imageAuthId": "no-such-auth"}),
        400,
        "RESOURCE_NOT_FOUND",
        "imageAuthId",
    )
    assert_error(
        api.post("/gpu/instance/create", {**body, "productId": "H200.16c240g", "billingMode": "spot"}),
        400, "UNSUPPORTED_BILLING_MODE", "spot",
    )  # fmt: skip
    assert_error(
        api.post(
            "/gpu/instance/create",
            {**body, "clusterId": "as-in-1", "networkStorages": [{"Id": "s1", "mountPoint": "/data"}]},
        ),
        400, "NETWORK_STORAGE_NOT_FOUND", "networkStorages[0].Id",
    )  # fmt: skip


def test_create_accepts_documented_edges(api):
    small = api.instance(api.create(rootfsSize=3))
    assert small["rootfsSize"] == 10  # documented: below 10 becomes 10
    many = api.create(
        name="",
        ports=", ".join(f"{8000 + i}/tcp" for i in range(14)),
        tools=[{"name": "Jupyter", "port": "8888", "type": "http"}],
        envs=[{"key": f"K{i}", "value": "v" * 4095} for i in range(100)],
        command="c" * 2047,
        gpuNum=8,
        clusterId="as-sgp-2",
    )
    item = api.instance(many)
    assert len(item["portMappings"]) == 15
    assert item["connectComponentJupyter"]["port"] == 8888
    monthly = api.instance(api.create(month=3))
    assert monthly["billingMode"] == "monthly" and int(monthly["endTime"]) > time.time()
    spot = api.create(billingMode="spot")
    api.wait_for(spot, "running")
    assert api.instance(spot)["spotStatus"] == "running"
    volume = api.post(
        "/networkstorage/create", {"clusterId": "as-sgp-2", "storageName": "d", "storageSize": 20}
    ).json()
    storage = api.instance(
        api.create(clusterId="as-sgp-2", networkStorages=[{"Id": volume, "mountPoint": "/data"}])
    )
    assert storage["volumeMounts"] == [
        {"type": "network", "size": 20, "id": volume, "mountPath": "/data"}
    ]
    anywhere = api.instance(api.create(clusterId=""))
    assert anywhere["clusterId"]


def test_list_filters_total_and_pagination(api):
    ids = [api.create(name=f"train-{i}") for i in range(7)]
    api.create(name="other", productId="3090.12c46g", clusterId="as-sgp-2")
    everything = api.get("/gpu/instances", pageSize=100, pageNum=0).json()
    assert everything["total"] == 8 and len(everything["instances"]) == 8
    assert {i["id"] for i in everything["instances"]} >= set(ids)
    assert api.get("/gpu/instances", pageSize=100, pageNum=1).json()["instances"] == []
    default = api.get("/gpu/instances").json()
    assert len(default["instances"]) == 8 and default["total"] == 8  # default page size 10
    pages = [api.get("/gpu/instances", pageSize=3, pageNum=n).json() for n in range(4)]
    walked = [i["id"] for p in pages[:3] for i in p["instances"]]
    assert len(walked) == 8 and len(set(walked)) == 8  # 0-based: pages 0, 1, 2
    assert pages[3]["instances"] == [] and pages[3]["total"] == 8
    named = api.get("/gpu/instances", name="TRAIN", pageSize=100).json()
    assert named["total"] == 7
    by_product = api.get("/gpu/instances", productName="3090", pageSize=100).json()
    assert [i["name"] for i in by_product["instances"]] == ["other"]
    api.wait_for(ids[0], "running")
    running = api.get("/gpu/instances", status="running", pageSize=100).json()
    assert running["total"] >= 1 and all(i["status"] == "running" for i in running["instances"])
    item = everything["instances"][0]
    assert isinstance(item["cpuNum"], str) and isinstance(item["rootfsSize"], int)
    assert "connectComponentSSH" not in item  # the list is the short form
    # The docs allow any pageSize >= 0: 0 is the default size, above 100 is capped at 100.
    assert len(api.get("/gpu/instances", pageSize=0).json()["instances"]) == 8
    assert len(api.get("/gpu/instances", pageSize=101).json()["instances"]) == 8
    assert_error(api.get("/gpu/instances", pageSize=-1), 400, "VALIDATOR_PARAM", "pageSize")
    assert_error(api.get("/gpu/instances", pageNum=-1), 400, "VALIDATOR_PARAM", "pageNum")
    assert_error(api.get("/gpu/instances", status="x" * 64), 400, "VALIDATOR_PARAM", "status")


def test_edit_adds_ports_and_grows_the_root_disk(api):
    instance_id = api.create(ports="80/http")
    api.wait_for(instance_id, "running")
    body = {
        "instanceId": instance_id,
        "ports": [{"port": 8080, "type": "http"}],
        "expandRootDisk": 20,
    }
    assert api.post("/gpu/instance/edit", body).json() == {}
    item = api.instance(instance_id)
    assert {p["port"] for p in item["portMappings"]} == {80, 8080}
    assert item["rootfsSize"] == 70
    assert item["status"] == "running"  # no restart
    # Re-sending an existing mapping is harmless; changing its type clashes.
    assert api.post(
        "/gpu/instance/edit", {"instanceId": instance_id, "ports": [{"port": 80, "type": "http"}]}
    ).ok
    clash = api.post(
        "/gpu/instance/edit", {"instanceId": instance_id, "ports": [{"port": 80, "type": "tcp"}]}
    )
    assert_error(clash, 400, "CONFLICT", "80")
    bad = [
        ({"expandRootDisk": -1}, "expandRootDisk"),
        ({"expandRootDisk": 5000}, "expandRootDisk"),
        ({"ports": [{"port": 2223, "type": "tcp"}]}, "ports[0].port"),
        ({"ports": [{"port": "81", "type": "tcp"}]}, "ports[0].port"),
        ({"ports": [{"port": 81, "type": "udp"}]}, "ports[0].type"),
        ({"ports": [{"port": 81}]}, "ports[0].type"),
        ({"ports": [{"port": 81, "type": "tcp"}, {"port": 81, "type": "tcp"}]}, "ports[1].port"),
        ({"ports": "81/tcp"}, "ports"),
    ]
    for extra, field in bad:
        assert_error(
            api.post("/gpu/instance/edit", {"instanceId": instance_id, **extra}),
            400,
            "VALIDATOR_PARAM",
            field,
        )
    too_many = [{"port": 9000 + i, "type": "tcp"} for i in range(14)]
    assert_error(
        api.post("/gpu/instance/edit", {"instanceId": instance_id, "ports": too_many}),
        400,
        "VALIDATOR_PARAM",
        "15",
    )


def test_unpullable_image_ends_exited_with_status_error(api):
    instance_id = api.create(imageUrl="example/does-not-exist:latest")
    seen = api.wait_for(instance_id, "exited")
    assert "pulling" in seen and "running" not in seen
    item = api.instance(instance_id)
    assert item["statusError"]["state"] and "does-not-exist" in item["statusError"]["message"]
    # Starting it again pulls again and fails again.
    assert api.post("/gpu/instance/start", {"instanceId": instance_id}).ok
    api.wait_for(instance_id, "exited")
    assert api.instance(instance_id)["statusError"]["message"]


def test_malformed_image_reference_fails_the_pull(api):
    instance_id = api.create(imageUrl="Not A Valid Image")
    api.wait_for(instance_id, "exited")
    assert "invalid reference format" in api.instance(instance_id)["statusError"]["message"]


def test_private_registry_needs_valid_auth(api):
    image = "registry.sandbox.local/team/trainer:1.0"
    denied = api.create(imageUrl=image)
    half = api.create(imageUrl=image, imageAuth="user:")
    inline = api.create(imageUrl=image, imageAuth="user:secret")
    assert api.post("/repository/auth/save", {"name": "r", "username": "u", "password": "p"}).ok
    auth_id = api.get("/repository/auths").json()["data"][0]["id"]
    saved = api.create(imageUrl=image, imageAuthId=auth_id)
    for instance_id in (denied, half):
        api.wait_for(instance_id, "exited")
        message = api.instance(instance_id)["statusError"]["message"]
        assert "pull access denied" in message and "secret" not in message
    for instance_id in (inline, saved):
        api.wait_for(instance_id, "running")
        assert api.instance(instance_id)["statusError"] == {"state": "", "message": ""}


def test_proxy_answers_502_until_the_app_is_up_then_200(api, sandbox):
    from sandbox_helpers import Api

    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=20) as slow:  # slow enough to catch the pre-running window
        slow_api = Api(slow)
        instance_id = slow_api.create(ports="7860/http")
        endpoint = f"{slow.url}/_sandbox/proxy/{instance_id}/7860/"
        assert requests.get(endpoint, timeout=5).status_code == 502
        slow_api.wait_for(instance_id, "running", timeout=20)
        deadline = time.monotonic() + 10
        while requests.get(endpoint, timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert slow_api.instance(instance_id)["connectComponentWebTerminal"]["isRunning"]
        assert (
            requests.get(f"{slow.url}/_sandbox/proxy/{instance_id}/9999/", timeout=5).status_code
            == 502
        )
        slow_api.post("/gpu/instance/stop", {"instanceId": instance_id})
        assert requests.get(endpoint, timeout=5).status_code == 502
    assert requests.get(f"{sandbox.url}/_sandbox/proxy/unknown/80/", timeout=5).status_code == 502


def test_jupyter_image_exposes_a_working_address(api):
    # The Jupyter image serves 8888 by itself: no ports requested.
    instance_id = api.create(imageUrl="novitalabs/pytorch-jupyter:2.4.0-cuda12.4")
    assert api.instance(instance_id)["portMappings"][0]["port"] == 8888
    api.wait_for(instance_id, "running")
    deadline = time.monotonic() + 5
    while not api.instance(instance_id)["connectComponentJupyter"]["isRunning"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    address = api.instance(instance_id)["connectComponentJupyter"]["address"]
    page = requests.get(address, timeout=5)
    assert page.status_code == 200 and "Jupyter" in page.text
    plain = api.instance(api.create(imageUrl="ubuntu:22.04"))
    assert plain["connectComponentJupyter"] == {"port": 0, "address": "", "isRunning": False}


def test_logs_endpoints(api, sandbox):
    instance_id = api.create(command="python serve.py")
    api.wait_for(instance_id, "running")
    item = api.instance(instance_id)
    log = requests.get(item["connectComponentLog"]["instanceLogAddress"], timeout=5)
    assert log.status_code == 200 and "python serve.py" in log.text
    assert item["connectComponentSSH"]["password"] not in log.text
    assert requests.get(f"{sandbox.url}/_sandbox/logs/missing/system", timeout=5).status_code == 404
