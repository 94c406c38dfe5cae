"""The sandbox answers every contract fixture's request with the fixture's shape: same fields,
no unknown ones, same types (digit strings, nullables) — checked in both directions.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))
import schema  # noqa: E402

from novita_notebook.sandbox import Sandbox  # noqa: E402


def _fill(value: Any, names: dict[str, str]) -> Any:
    """Replace "{placeholder}" strings of a fixture request with this run's ids."""
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def _prepare(sb: Sandbox, session: requests.Session) -> dict[str, str]:
    """State every fixture can be asked about: an auth, a volume, a running instance using
    them, a private template."""
    api = sb.api_url

    def post(path: str, body: Any) -> Any:
        response = session.post(api + path, json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    post("/repository/auth/save", {"name": "hub", "username": "me", "password": "pw-secret"})
    volume = post(
        "/networkstorage/create",
        {"clusterId": "as-sgp-2", "storageName": "datasets", "storageSize": 20},
    )
    instance_id = post(
        "/gpu/instance/create",
        {
            "name": "demo-1",
            "productId": "4090.16c62g",
            "gpuNum": 1,
            "rootfsSize": 50,
            "imageUrl": "ubuntu:22.04",
            "kind": "gpu",
            "clusterId": "as-sgp-2",
            "ports": "8888/http",
            "envs": [{"key": "MODE", "value": "train"}],
            "tools": [{"name": "Jupyter", "port": "8888", "type": "http"}],
            "networkStorages": [{"Id": volume, "mountPoint": "/data"}],
        },
    )["id"]
    template_id = post(
        "/template/create",
        {
            "template": {
                "name": "my-trainer",
                "type": "instance",
                "channel": "private",
                "image": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
                "startCommand": "python train.py",
                "rootfsSize": 60,
                "ports": [{"type": "http", "ports": [8888]}],
                "envs": [{"key": "MODE", "value": "train"}],
                "tools": [{"name": "Jupyter", "describe": "JupyterLab", "port": 8888}],
                "minCudaVersion": "12.4",
                "recommendCards": [{"gpuSpecId": "4090.16c62g", "cardNum": 1}],
            }
        },
    )["templateId"]
    deadline = time.monotonic() + 15
    while (
        session.get(api + "/gpu/instance", params={"instanceId": instance_id}).json()["status"]
        != "running"
    ):
        assert time.monotonic() < deadline, "the instance never ran"
        time.sleep(0.01)
    now = int(time.time())
    return {
        "instanceId": instance_id,
        "templateId": template_id,
        "startTime": str(now - 5),
        "endTime": str(now + 1),
    }


@pytest.mark.parametrize("name", schema.names())
def test_sandbox_matches_fixture(name):
    fixture = schema.load(name)
    assert fixture["_source"].strip(), "every fixture names its source"
    with Sandbox(speed=300, seed=7) as sb:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {sb.api_key}"
        request = _fill(fixture["request"], _prepare(sb, session))
        sb.configure(**fixture.get("switches", {}))  # a documented answer behind a switch
        response = session.request(
            request["method"],
            sb.url + request["path"],
            params=request.get("query"),
            json=request.get("body"),
            headers=request.get("headers"),
            timeout=10,
        )
        log = sb.requests()[-1]
    assert response.status_code == fixture["status"], response.text
    body = response.json()
    problems = schema.check(fixture, body)
    assert problems == [], f"{name}: {problems}\n{json.dumps(body)[:600]}"
    assert log["ignored"] == [], "the fixture's own request uses only known fields"
