"""A statusError counts as a failure only on an instance that came to rest (exited) or when it
persists on one still on its way; a transient one is a warning on the progress line. Against
the sandbox serving a stale statusError on healthy instances, and a scripted source for the
timing edges the sandbox cannot hold still (an error that stands, one that clears).
"""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.errors import InstanceFailedError
from novita_notebook.models import Instance, StatusError
from novita_notebook.sandbox import Sandbox
from novita_notebook.waiting import wait as wait_module
from novita_notebook.waiting.wait import run_blocking, wait_steps

PULL_ERROR = StatusError("pullImageRetry", "pull attempt 1 timed out; retried")


class Scripted:
    """A WaitSource answering a fixed sequence of instances (the last one repeats)."""

    owner = None

    def __init__(self, *statuses: tuple[str, StatusError | None]) -> None:
        self.answers = [
            Instance(id="i-1", name="scripted", status=s, status_error=e) for s, e in statuses
        ]
        self.calls = 0

    def poll_interval(self) -> float | None:
        return None

    def subject(self, instance, until):
        return self.answers[0]

    def fetch(self, instance_id: str) -> Instance:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers) - 1)]


def _wait(source: Scripted, **kw) -> Instance:
    options = {"until": "running", "timeout": 5.0, "progress": False, "probe": None, "poll": 0.02}
    options.update(kw)
    return run_blocking(wait_steps(source, "i-1", **options))


def test_a_healthy_instance_with_a_stale_status_error_is_waited_for_not_failed():
    with Sandbox(speed=300, seed=7, switches={"healthyStatusError": True}) as sb:
        novita = Novita(api_key=sb.api_key, api_url=sb.url)
        try:
            inst = novita.create("stale", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
            assert inst.status == "running" and not inst.failed
            assert inst.warning is not None and inst.warning.state == "pullImageRetry"
            assert novita.instances().loc[0, "phase"] == "running"
        finally:
            novita.close()


def test_a_transient_status_error_is_a_warning_on_the_progress_line(capsys):
    source = Scripted(
        ("pulling", None), ("pulling", PULL_ERROR), ("pulling", PULL_ERROR), ("running", None)
    )
    assert _wait(source, progress="text").status == "running"
    printed = capsys.readouterr().out
    assert "warning: statusError pullImageRetry: pull attempt 1 timed out" in printed
    assert "is running" in printed


def test_a_status_error_that_stands_past_the_window_fails_the_wait(monkeypatch):
    monkeypatch.setattr(wait_module, "STATUS_ERROR_WINDOW", 0.2)
    source = Scripted(("pulling", None), ("pulling", PULL_ERROR))
    with pytest.raises(InstanceFailedError) as info:
        _wait(source)
    error = info.value
    assert "stood" in error.message and "0.2 s" in error.message
    assert error.status_error == PULL_ERROR and error.last_status == "pulling"


def test_a_status_error_on_a_rested_instance_fails_at_once():
    source = Scripted(("pulling", None), ("exited", PULL_ERROR))
    with pytest.raises(InstanceFailedError) as info:
        _wait(source)
    assert source.calls == 1 and info.value.last_status == "exited"


def test_the_window_restarts_when_the_error_clears(monkeypatch):
    monkeypatch.setattr(wait_module, "STATUS_ERROR_WINDOW", 0.15)
    # Errors come and go, none standing 0.15 s in a row (polls every 0.02 s).
    flicker = [("pulling", PULL_ERROR if i % 4 else None) for i in range(20)]
    source = Scripted(*flicker, ("running", None))
    assert _wait(source).status == "running"
