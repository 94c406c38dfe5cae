"""Helpers of the doctor tests: instances created through the sandbox's API, as a user would.
Imported by name (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import requests

from novita_notebook.sandbox import Sandbox


def make_instances(sandbox: Sandbox, names: list[str]) -> list[str]:
    """Create instances through the API (as a user would) and return their ids."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.api_key}"
    products = session.get(sandbox.api_url + "/products", timeout=5).json()["data"]
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
        }
        answer = session.post(sandbox.api_url + "/gpu/instance/create", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["id"])
    session.close()
    return ids
