"""The chaos suite's shared pieces: one sandbox for a module's trials (each trial resets it and
puts it on its own virtual clock), no guard process of its own and no in-kernel watcher (each
trial ticks its guards itself), and which trials run (``NOVITA_CHAOS_TRIALS``, default 200).
"""

from __future__ import annotations

import os

import pytest

#: In-process trials in CI; NOVITA_CHAOS_TRIALS runs more, NOVITA_CHAOS_FIRST other seeds
#: (any failure names its seed).
TRIALS = int(os.environ.get("NOVITA_CHAOS_TRIALS", "200"))
FIRST_SEED = int(os.environ.get("NOVITA_CHAOS_FIRST", "0"))


@pytest.fixture(scope="module")
def chaos_sandbox():
    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=1.0, seed=11) as server:
        yield server


@pytest.fixture
def guards_ticked_by_the_trial(monkeypatch):
    """No guard process and no watcher thread: the trial ticks its own guards."""
    from novita_notebook.guard.service import GuardService

    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")
    monkeypatch.setattr(GuardService, "ensure_kernel_guard", lambda self, interval=None: None)
