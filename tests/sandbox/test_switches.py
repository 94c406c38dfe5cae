"""Behaviour switches and tolerance over HTTP: paging base (argument, control endpoint, CLI),
not-found status, ignored unknown fields in the log, seeded "pending", phase jitter.
"""

from __future__ import annotations

import pytest
import requests
from sandbox_helpers import BASIC_INSTANCE, Api, assert_error

from novita_notebook.sandbox import Sandbox
from novita_notebook.sandbox.__main__ import build_parser


def _ids(api: Api, path: str, key: str, **params) -> list[str]:
    rows = api.get(path, **params).json()[key]
    return [row.get("id") or row.get("Id") for row in rows]


def test_default_paging_is_zero_based(api):
    for i in range(5):
        api.create(name=f"p-{i}")
    first = _ids(api, "/gpu/instances", "instances", pageSize=2, pageNum=0)
    second = _ids(api, "/gpu/instances", "instances", pageSize=2, pageNum=1)
    third = _ids(api, "/gpu/instances", "instances", pageSize=2, pageNum=2)
    assert len(first) == 2 and len(second) == 2 and len(third) == 1
    assert len(set(first + second + third)) == 5
    assert _ids(api, "/gpu/instances", "instances", pageSize=2) == first  # omitted = first
    templates0 = _ids(api, "/templates", "template", pageSize=2, pageNum=0)
    templates1 = _ids(api, "/templates", "template", pageSize=2, pageNum=1)
    assert not set(templates0) & set(templates1)


def _one_based_checks(api: Api) -> None:
    for i in range(5):
        api.create(name=f"q-{i}")
    page0 = _ids(api, "/gpu/instances", "instances", pageSize=2, pageNum=0)
    page1 = _ids(api, "/gpu/instances", "instances", pageSize=2, pageNum=1)
    page2 = _ids(api, "/gpu/instances", "instances", pageSize=2, pageNum=2)
    page3 = _ids(api, "/gpu/instances", "instances", pageSize=2, pageNum=3)
    assert page0 == page1 and len(page1) == 2  # 0 and 1 both mean the first page
    assert len(set(page1 + page2 + page3)) == 5
    assert _ids(api, "/templates", "template", pageSize=2, pageNum=0) == _ids(
        api, "/templates", "template", pageSize=2, pageNum=1
    )
    body = api.get("/templates", pageSize=2).json()
    assert body["pageNum"] == 1  # omitted: the first page, echoed in this base


def test_page_base_one_as_an_argument():
    with Sandbox(speed=300, page_base=1) as sb:
        assert sb.config["pageBase"] == 1
        _one_based_checks(Api(sb))
        sb.reset()
        assert sb.config["pageBase"] == 1  # reset keeps the constructor's switches


def test_page_base_through_the_control_endpoint(sandbox, api):
    url = f"{sandbox.url}/_sandbox/config"
    answer = requests.post(url, json={"pageBase": 1}, timeout=5).json()
    assert answer["config"]["pageBase"] == 1
    assert requests.get(url, timeout=5).json()["config"]["pageBase"] == 1
    _one_based_checks(api)
    sandbox.configure(page_base=0)
    assert (
        api.get("/gpu/instances", pageSize=2, pageNum=1).json()["instances"]
        != (api.get("/gpu/instances", pageSize=2, pageNum=0).json()["instances"])
    )


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"pageBase": 2}, "pageBase"),
        ({"notFoundStatus": 410}, "notFoundStatus"),
        ({"phaseJitter": 1.5}, "phaseJitter"),
        ({"spotNoticeRate": -1}, "spotNoticeRate"),
        ({"pendingRate": "x"}, "pendingRate"),
        ({"colour": 1}, "colour"),
    ],
)
def test_config_endpoint_validates(sandbox, body, word):
    response = requests.post(f"{sandbox.url}/_sandbox/config", json=body, timeout=5)
    assert_error(response, 400, "VALIDATOR_PARAM", word)


def test_switch_arguments_are_validated():
    with pytest.raises(ValueError, match="page_base"):
        Sandbox(page_base=2)
    with pytest.raises(ValueError, match="phase_jitter"):
        Sandbox(phase_jitter=-0.1)
    sb = Sandbox()
    with pytest.raises(ValueError, match="not_found_status"):
        sb.configure(not_found_status=500)


def test_cli_flags_reach_the_switches():
    args = build_parser().parse_args(
        ["--page-base", "1", "--not-found-status", "400", "--phase-jitter", "0.2"]
    )
    assert (args.page_base, args.not_found_status, args.phase_jitter) == (1, 400, 0.2)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--page-base", "2"])


def test_unknown_instance_is_404_by_default_and_400_with_the_switch(sandbox, api):
    assert_error(api.get("/gpu/instance", instanceId="nope"), 404, "RESOURCE_NOT_FOUND")
    sandbox.configure(not_found_status=400)
    assert_error(api.get("/gpu/instance", instanceId="nope"), 400, "RESOURCE_NOT_FOUND")
    requests.post(f"{sandbox.url}/_sandbox/config", json={"notFoundStatus": 404}, timeout=5)
    assert api.get("/gpu/instance", instanceId="nope").status_code == 404


def test_unknown_body_fields_are_ignored_and_logged(sandbox, api):
    sandbox.clear_requests()
    body = {
        **BASIC_INSTANCE,
        "colour": "red",
        "envs": [{"key": "A", "value": "1", "secret": True}],
        "networkStorages": [],
    }
    assert api.post("/gpu/instance/create", body).status_code == 200
    template = {
        "name": "old-style",
        "type": "instance",
        "channel": "private",
        "image": "ubuntu:22.04",
        "rootfsSize": 20,
        "ports": [{"type": "http", "ports": ["8888"]}],  # strings, as older docs sent
        "volumes": [],
        "localVolumeSize": 10,
        "localVolumeMount": "/data",
    }
    created = api.post("/template/create", {"template": template})
    assert created.status_code == 200, created.text
    fetched = api.get("/template", templateId=created.json()["templateId"]).json()["template"]
    assert fetched["ports"] == [{"type": "http", "ports": [8888]}] and "volumes" not in fetched
    api.get("/clusters")
    log = sandbox.requests()
    assert log[0]["ignored"] == ["colour", "envs[0].secret"]
    assert log[1]["ignored"] == [
        "template.localVolumeMount",
        "template.localVolumeSize",
        "template.volumes",
    ]
    assert log[-1]["ignored"] == []


def test_control_endpoints_stay_strict(sandbox):
    response = requests.post(f"{sandbox.url}/_sandbox/stock", json={"stock": 1, "x": 1}, timeout=5)
    assert_error(response, 400, "VALIDATOR_PARAM", "x")


def test_pending_shows_before_to_create_on_a_seeded_share_of_creates():
    with Sandbox(speed=1.0, seed=7) as sb:  # slow: the first status stays for a second
        api = Api(sb)
        firsts = [api.instance(api.create(name=f"s-{i}"))["status"] for i in range(12)]
    assert set(firsts) == {"pending", "toCreate"}
    assert 1 <= firsts.count("pending") <= 8
    with Sandbox(speed=1.0, seed=7, pending_rate=0) as sb:
        api = Api(sb)
        assert {api.instance(api.create())["status"] for _ in range(5)} == {"toCreate"}


def _stage_lengths(sandbox: Sandbox) -> list[float]:
    with sandbox.world.lock:
        record = next(iter(sandbox.world.instances.values()))
        ends = [record.created_at] + [until for _, until in record.stages]
        return [b - a for a, b in zip(ends, ends[1:], strict=False)]


def test_phase_jitter_is_seeded_and_bounded():
    def lengths(jitter: float, seed: int) -> list[float]:
        with Sandbox(speed=1.0, seed=seed, phase_jitter=jitter, pending_rate=0) as sb:
            Api(sb).create()
            return _stage_lengths(sb)

    plain = lengths(0.0, 1)
    assert plain == pytest.approx([1.0, 4.0, 15.0 + 8.0 * 0.03])  # toCreate, creating, pulling
    jittered = lengths(0.2, 1)
    assert jittered == lengths(0.2, 1)  # same seed, same durations
    assert jittered != plain and jittered != lengths(0.2, 2)
    for got, base in zip(jittered, plain, strict=True):
        assert 0.8 * base - 1e-9 <= got <= 1.2 * base + 1e-9


def test_pull_time_grows_with_image_size():
    def pulling(image: str) -> float:
        with Sandbox(speed=1.0, pending_rate=0) as sb:
            Api(sb).create(imageUrl=image)
            return _stage_lengths(sb)[-1]

    assert pulling("ubuntu:22.04") < pulling("pytorch/pytorch:2.4.0-cuda12.4-cudnn9-devel")


def test_fields_of_older_docs_are_never_a_400(sandbox, api):
    sandbox.clear_requests()
    old_create = {
        **BASIC_INSTANCE,
        "cpuNum": "16",
        "memory": "62",
        "diskSize": 50,
        "networkStorageId": "x",
        "networkStorageMountPoint": "/data",
    }
    assert api.post("/gpu/instance/create", old_create).status_code == 200
    assert sandbox.requests()[-1]["ignored"] == [
        "cpuNum",
        "diskSize",
        "memory",
        "networkStorageId",
        "networkStorageMountPoint",
    ]
