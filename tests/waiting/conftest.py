"""Helpers for the watch tests: instances created straight through the API (a body per the
API doc), a product that can be deployed, and a schedule shrunk for the fast sandbox."""

from __future__ import annotations

import threading

import pytest

from tests.waiting.watch_helpers import SMALL_IMAGE


@pytest.fixture
def product_id(client):
    available = [p for p in client.api.products() if p.available]
    assert available, "the sandbox offers no deployable product"
    return available[0].id


@pytest.fixture
def make_instance(client, product_id):
    """``make_instance(name, image=..., ports="8888/http")`` → the new instance id."""

    def make(name: str, image: str = SMALL_IMAGE, ports: str = "", **extra) -> str:
        body = {
            "name": name,
            "productId": product_id,
            "gpuNum": 1,
            "rootfsSize": 20,
            "imageUrl": image,
            "kind": "gpu",
        }
        if ports:
            body["ports"] = ports
        body.update(extra)
        return client.api.create_instance(body)

    return make


@pytest.fixture
def thread_guard():
    """Fails the test if it leaves a new thread alive (watchers must be joined)."""
    before = set(threading.enumerate())
    yield before
    leftover = [
        t for t in threading.enumerate() if t not in before and t.name.startswith("novita-watch")
    ]
    assert not leftover, f"threads left behind: {leftover}"


@pytest.fixture
def fast_client(sandbox):
    """A client whose transport gives up and recovers quickly (for fault tests)."""
    from novita_notebook import Novita

    novita = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        timeout=(1.0, 2.0),
        max_retries=1,
        retry_backoff=0.01,
        retry_backoff_max=0.05,
        breaker_reset_timeout=0.3,
    )
    yield novita
    novita.close()
