"""The wait's bar moves with the phase and the ETA: it creeps between polls, never goes back,
is full only at the target, and a sandbox's short boot gets a short ETA."""

from __future__ import annotations

import time

from novita_notebook import Novita
from novita_notebook.models import Instance
from novita_notebook.notebook.widgets import WaitProgress


def test_the_bar_follows_the_eta_and_never_goes_back():
    with Novita.sandbox(speed=20) as client:
        created = client.create("bar-1", gpu="RTX 4090")
        progress = WaitProgress("bar-1")
        seen: list[int] = []

        def update(instance: Instance, elapsed: float, phase: str) -> None:
            progress.update(instance, elapsed, phase)
            seen.append(progress.bar.value)

        client.wait(created, poll=0.1, timeout=60, progress=update)
        progress.finish()
    assert seen == sorted(seen), seen  # never back
    assert len(set(seen[:-1])) > 3, seen  # more than a few steps: not a third, then a jump
    assert max(seen[:-1]) < progress.bar.max == seen[-1]  # full only at running


def test_the_bar_creeps_between_sparse_polls():
    with Novita.sandbox(speed=1) as client:  # real time: a minute ahead, no poll for a while
        created = client.create("creep-1", gpu="RTX 4090")
        progress = WaitProgress("creep-1")
        progress.update(created, 0.0, "provisioning")
        assert progress.remaining is not None and progress.remaining > 10
        first = progress.bar.value
        time.sleep(1.3)  # no update at all: the bar still moves along the ETA
        assert progress.bar.value > first
        progress.finish()
        client.delete(created.id)


def test_a_sandbox_boot_gets_a_short_eta():
    with Novita.sandbox(speed=50) as client:
        created = client.create("eta-2", gpu="RTX 4090")
        progress = WaitProgress("eta-2")
        progress.update(created, 0.0, "provisioning")
        assert progress.remaining is not None and progress.remaining < 5, progress.eta
        progress.finish()
