"""Constants shared by the waiting tests (importable: conftest modules are not).
The schedule and images are chosen for the sandbox at test speed (300x)."""

from __future__ import annotations

import time

import pytest

from novita_notebook.errors import NotFoundError
from novita_notebook.waiting import Backoff

#: The wait schedule scaled to the test sandbox (speed 300): same shape, 50x faster.
FAST = Backoff(initial=0.01, cap=0.2)

#: Pulls in well under a second at speed 300 ...
SMALL_IMAGE = "ubuntu:22.04"
#: ... and this one takes long enough (about 0.4 s) to be caught mid-provisioning.
BIG_IMAGE = "universonic/stable-diffusion-webui:latest"


def wait_until_gone(client, instance_id: str, within: float = 20.0) -> None:
    """Until the API answers 404 for the id (a removed record lingers briefly first)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            client.api.get_instance(instance_id)
        except NotFoundError:
            return
        time.sleep(0.02)
    pytest.fail("the removed instance never disappeared")
