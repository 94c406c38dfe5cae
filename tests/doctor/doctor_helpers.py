"""Helpers of the doctor tests: instances created through the sandbox's API, as a user would,
and an account on which the doctor can verify everything. Imported by name (pytest puts this
folder on sys.path); the switch matrix (tests/assumptions) imports it too.
"""

from __future__ import annotations

import time

import requests

from novita_notebook.sandbox import Sandbox

#: How long ago verifiable_account's instances started: their metrics hold several points.
AGE_SECONDS = 600


def make_instances(sandbox: Sandbox, names: list[str], billing: str = "onDemand") -> list[str]:
    """Create instances through the API (as a user would) and return their ids."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.api_key}"
    products = session.get(
        sandbox.api_url + "/products", params={"billingMethod": billing}, timeout=5
    ).json()["data"]
    product = next(p for p in products if p["availableDeploy"])
    ids = []
    for name in names:
        body = {
            "name": name,
            "productId": product["id"],
            "gpuNum": 1,
            "rootfsSize": 20,
            "imageUrl": "nvidia/cuda:12.4.0-base-ubuntu22.04",
            "kind": "gpu",
            "billingMode": billing,
        }
        answer = session.post(sandbox.api_url + "/gpu/instance/create", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["id"])
    session.close()
    return ids


def verifiable_account(sandbox: Sandbox) -> list[str]:
    """One on-demand and one spot instance, running for AGE_SECONDS already: every check the
    package relies on has something to look at. The sandbox's clock is set back while they
    are created (its instances' times are the clock's), so their metrics hold several points."""
    world = sandbox.world
    real = world.clock
    world.clock = lambda: real() - AGE_SECONDS
    try:
        ids = make_instances(sandbox, ["doctor-a"]) + make_instances(
            sandbox, ["doctor-spot"], billing="spot"
        )
    finally:
        world.clock = real
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.api_key}"
    deadline = time.monotonic() + 10
    for instance_id in ids:
        while True:
            detail = session.get(
                sandbox.api_url + "/gpu/instance", params={"instanceId": instance_id}, timeout=5
            ).json()
            if detail["status"] == "running":
                break
            assert time.monotonic() < deadline, detail["status"]
            time.sleep(0.01)
    session.close()
    return ids
