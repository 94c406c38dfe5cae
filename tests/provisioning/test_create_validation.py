"""Every input rule of create() and the template/registry helpers, checked before any HTTP call:
the sandbox's request log stays empty and the error names the field and the rule.
"""

from __future__ import annotations

import pytest

from novita_notebook.errors import ValidationError

from .helpers import CREATE_PATH, calls

LONG = "x" * 2048

# (kwargs for create, the field named, a fragment of the rule)
CASES = [
    ({"name": ""}, "name", "1–63"),
    ({"name": "a" * 64}, "name", "1–63"),
    ({"name": "-lead"}, "name", "hyphen"),
    ({"name": "trail-"}, "name", "hyphen"),
    ({"name": "under_score"}, "name", "letters, digits and hyphens"),
    ({"name": "spa ce"}, "name", "letters, digits and hyphens"),
    ({"name": 42}, "name", "string"),
    ({"name": "a" * 60, "unique_name": True}, "name", "56"),
    ({"gpu": ""}, "gpu", "GPU name"),
    ({"gpu": 5}, "gpu", "GPU name"),
    ({"gpu_num": 0}, "gpu_num", "between 1 and 8"),
    ({"gpu_num": 9}, "gpu_num", "between 1 and 8"),
    ({"gpu_num": 1.5}, "gpu_num", "integer"),
    ({"gpu_num": True}, "gpu_num", "integer"),
    ({"rootfs_gb": 9}, "rootfs_gb", "between 10 and 6144"),
    ({"rootfs_gb": 6145}, "rootfs_gb", "between 10 and 6144"),
    ({"ports": "0/http"}, "ports", "between 1 and 65535"),
    ({"ports": [65536]}, "ports", "between 1 and 65535"),
    ({"ports": "2222/tcp"}, "ports", "reserved"),
    ({"ports": {2224: "tcp"}}, "ports", "reserved"),
    ({"ports": "8888/udp"}, "ports", "tcp or http"),
    ({"ports": "http/8888"}, "ports", "not a number"),
    ({"ports": [8000 + i for i in range(16)]}, "ports", "at most 15"),
    ({"ports": "80/http,80/tcp"}, "ports", "twice"),
    ({"ports": 8888}, "ports", "must be a string"),
    ({"envs": {f"K{i}": "v" for i in range(101)}}, "envs", "at most 100"),
    ({"envs": {"1BAD": "v"}}, "envs", "[A-Za-z_][A-Za-z0-9_]*"),
    ({"envs": {"BAD-KEY": "v"}}, "envs", "[A-Za-z_][A-Za-z0-9_]*"),
    ({"envs": {"K" * 512: "v"}}, "envs", "511"),
    ({"envs": {"K": "v" * 4096}}, "envs", "4095"),
    ({"envs": ["K=v"]}, "envs", "pair"),
    ({"envs": "K=v"}, "envs", "dict"),
    ({"envs": 42}, "envs", "dict"),
    ({"billing": "weekly"}, "billing", "onDemand, spot, monthly"),
    ({"command": LONG}, "command", "0–2047"),
    ({"entrypoint": LONG}, "entrypoint", "0–2047"),
    ({"image": ""}, "image", "1–500"),
    ({"image": "i" * 501}, "image", "1–500"),
    ({"image": "has space:latest"}, "image", "whitespace"),
    ({"image": "Bad/Image!"}, "image", "not an image reference"),
    ({"image": "team/UPPER:1"}, "image", "not an image reference"),
    ({"image": "x:1", "template": "tpl-cuda-base"}, "image", "either image or template"),
    ({"max_price": 0}, "max_price", "positive"),
    ({"max_price": "cheap"}, "max_price", "positive"),
    ({"region": ""}, "region", "region name"),
    ({"region": 5}, "region", "region name"),
    ({"image_auth_id": ""}, "image_auth_id", "registry auth"),
    ({"regions": 5}, "regions", "list of region names"),
    ({"regions": [5]}, "regions", "region name"),
    ({"regions": []}, "regions", "at least one"),
    ({"regions": {"AS-SGP-02": "first"}}, "regions", "must be a number"),
    ({"wait": "yes"}, "wait", "True or False"),
    ({"unique_name": 1}, "unique_name", "True or False"),
    ({"network_storages": [{"mountPoint": "/data"}]}, "network_storages", "no storage id"),
    ({"network_storages": [("ns-1", "")]}, "network_storages", "1–4095"),
    ({"wait_until": "ready"}, "wait_until", "running, reachable"),
    ({"timeout": -1}, "timeout", "positive"),
    ({"progress": 3}, "progress", "callable"),
]


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_bad_input_is_refused_before_any_http_call(sandbox, client, kwargs, field, rule):
    arguments = {"name": "valid-name", "gpu": "4090", **kwargs}
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create(**arguments)
    error = caught.value
    assert error.field == field
    assert rule in str(error)
    assert sandbox.requests() == []


def test_every_problem_is_reported_at_once(sandbox, client):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create("bad_name", gpu="4090", gpu_num=0, ports="2223/tcp", envs={"9": "x"})
    assert [field for field, _ in caught.value.problems] == ["name", "gpu_num", "ports", "envs"]
    assert sandbox.requests() == []


def test_unknown_region_is_refused_without_a_create(sandbox, client):
    sandbox.clear_requests()
    for kwargs, field in (
        ({"region": "MARS-01"}, "region"),
        ({"regions": ["AS-SGP-02", "x"]}, "regions"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.create("valid-name", gpu="4090", **kwargs)
        assert caught.value.field == field
        assert "AS-SGP-02" in str(caught.value)  # the known regions are listed
    assert calls(sandbox, CREATE_PATH) == []


def test_template_and_registry_helpers_validate_too(sandbox, client):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create_template("", "img:1", ports="2222/tcp", rootfs_gb=5)
    assert [f for f, _ in caught.value.problems] == ["name", "ports", "rootfs_gb"]
    with pytest.raises(ValidationError) as caught:
        client.create_registry_auth("reg", "user", "")
    assert caught.value.field == "password"
    with pytest.raises(ValidationError) as caught:
        client.create_many(3, concurrency=0, gpu="4090")
    assert caught.value.field == "concurrency"
    with pytest.raises(ValidationError) as caught:
        client.create_many([{"name": "same"}, {"name": "same"}], gpu="4090")
    assert "same" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        client.create_many([{"name": "ok-1"}, {"name": "bad_2"}], gpu="4090")
    assert "specs[1]" in str(caught.value) and caught.value.field == "name"
    assert sandbox.requests() == []


def test_billing_aliases_work_in_create_and_products(client, sandbox):
    """One alias table: what products() accepts, create() accepts too."""
    assert len(client.products(gpu="4090", billing="on-demand")) > 0
    instance = client.create("alias-billing", gpu="4090", billing="On-Demand", image="ubuntu:22.04")
    assert instance.billing_mode in (None, "onDemand")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.create("n-1", gpu="4090", gpu_num="2"), "gpu_num"),
        (lambda c: c.create("n-1", gpu="4090", max_price=float("nan")), "max_price"),
        (lambda c: c.create("n-1", gpu="4090", max_price=float("inf")), "max_price"),
        (lambda c: c.products(max_price=float("nan")), "max_price"),
        (lambda c: c.create("n-1", gpu="4090", region="XX-NOWHERE-9"), "region"),
        (lambda c: c.create("n-1", gpu="4090", regions="XX-NOWHERE-9"), "regions"),
        (lambda c: c.create("n-1", gpu="4090", progress="fancy"), "progress"),
    ],
)
def test_one_boundary_refuses_before_sending_a_create(client, sandbox, call, field):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        call(client)
    assert caught.value.field == field
    assert calls(sandbox, CREATE_PATH) == []


def test_region_may_be_a_cluster_id_and_regions_a_bare_string(client):
    clusters = client.cached_clusters()
    target = clusters[-1]
    by_id = client.create(
        "by-cluster-id", gpu="4090", region=target.id, image="ubuntu:22.04", prefer="region"
    )
    assert by_id.cluster_id == target.id or by_id.region == target.name
    bare = client.create("bare-regions", gpu="4090", regions=target.name, image="ubuntu:22.04")
    assert bare.cluster_id == target.id or bare.region == target.name


def test_text_forms_for_the_magics():
    from novita_notebook import validation as v

    assert v.parse_money("$0.50/h") == 0.5 and v.parse_money("") is None
    assert v.parse_duration("90s", "timeout") == 90.0 and v.parse_duration("2min", "t") == 120.0
    assert v.parse_env_text("A=1, B=2") == [("A", "1"), ("B", "2")]
    with pytest.raises(ValidationError, match="USD per GPU-hour"):
        v.parse_money("nan")
    with pytest.raises(ValidationError):
        v.parse_duration("-3", "timeout")
