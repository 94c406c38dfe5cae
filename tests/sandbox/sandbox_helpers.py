"""Helpers for the sandbox tests: an authenticated keep-alive session bound to a sandbox and
small wrappers to create instances and wait for statuses over real HTTP.
"""

from __future__ import annotations

import time
from typing import Any

import requests

BASIC_INSTANCE: dict[str, Any] = {
    "name": "test-1",
    "productId": "4090.16c62g",
    "gpuNum": 1,
    "rootfsSize": 50,
    "imageUrl": "ubuntu:22.04",
    "kind": "gpu",
}


class Api:
    """A keep-alive session talking to one sandbox, with the key set."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sandbox.api_key}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.sandbox.api_url + path, params=params, timeout=10)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.post(self.sandbox.api_url + path, json=body, timeout=10, **kw)

    def create(self, **overrides: Any) -> str:
        body = {**BASIC_INSTANCE, **overrides}
        body = {k: v for k, v in body.items() if v is not None}
        response = self.post("/gpu/instance/create", body)
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def instance(self, instance_id: str) -> dict[str, Any]:
        response = self.get("/gpu/instance", instanceId=instance_id)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for(self, instance_id: str, status: str, timeout: float = 15.0) -> list[str]:
        """Poll until ``status``; returns every distinct status seen on the way."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.instance(instance_id)["status"]
            if not seen or seen[-1] != current:
                seen.append(current)
            if current == status:
                return seen
            time.sleep(0.005)
        raise AssertionError(f"{instance_id} never reached {status}; saw {seen}")

    def wait_gone(self, instance_id: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/gpu/instance", instanceId=instance_id).status_code == 404:
                return
            time.sleep(0.01)
        raise AssertionError(f"{instance_id} still visible")


def assert_error(response: requests.Response, status: int, reason: str, *words: str) -> dict:
    """The go-kratos envelope with the given status and reason, message containing words."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "reason", "message", "metadata"}, body
    assert body["code"] == status
    assert body["reason"] == reason, body
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body
