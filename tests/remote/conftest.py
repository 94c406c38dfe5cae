"""Fixtures of the remote tests: a running sandbox instance (real SSH on loopback) and the
client bound to its sandbox (``client`` and ``sandbox`` come from tests/conftest.py).
"""

from __future__ import annotations

import pytest


@pytest.fixture
def instance(client):
    """A running RTX 4090 instance of the per-test sandbox, details read."""
    created = client.create("remote-1", gpu="RTX 4090", image="ubuntu:22.04")
    return client.wait(created, until="running", timeout=30)
