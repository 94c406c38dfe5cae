"""Constants shared by the watch tests (importable: conftest modules are not).
The schedule and images are chosen for the sandbox at test speed (300x)."""

from __future__ import annotations

from novita_notebook.waiting import Backoff

#: The wait schedule scaled to the test sandbox (speed 300): same shape, 50x faster.
FAST = Backoff(initial=0.01, cap=0.2)

#: Pulls in well under a second at speed 300 ...
SMALL_IMAGE = "ubuntu:22.04"
#: ... and this one takes long enough (about 0.4 s) to be caught mid-provisioning.
BIG_IMAGE = "universonic/stable-diffusion-webui:latest"
