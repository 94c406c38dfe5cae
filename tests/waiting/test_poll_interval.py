"""``poll_interval`` paces both ``watch()`` and ``wait()``, as the %config help says: counted
from the sandbox's own request log, not from the client's counters."""

from __future__ import annotations

import statistics
import time

import pytest

from novita_notebook import Novita
from novita_notebook.errors import TimeoutError
from tests.waiting.watch_helpers import SMALL_IMAGE

LIST_PATH = "/gpu/instances"
GET_PATH = "/gpu/instance"


@pytest.fixture
def paced(sandbox):
    """A client configured with a short poll interval (the default pace is 5 s / adaptive)."""
    novita = Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=0.1)
    yield novita
    novita.close()


def _calls(sandbox, path: str) -> list[float]:
    return [e["time"] for e in sandbox.requests() if e["path"].endswith(path)]


def test_watch_polls_at_the_configured_interval(sandbox, paced, make_instance, thread_guard):
    make_instance("paced-watch", image=SMALL_IMAGE)
    sandbox.clear_requests()
    with paced.watch() as watcher:
        time.sleep(1.0)
    assert watcher.interval == 0.1
    # Every 0.1 s for 1 s is about ten listings; the old fixed 5 s made one.
    assert len(_calls(sandbox, LIST_PATH)) >= 4


def test_watch_interval_argument_wins_over_the_setting(sandbox, make_instance, thread_guard):
    slow = Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=30)
    try:
        sandbox.clear_requests()
        with slow.watch(interval=0.1) as watcher:
            time.sleep(0.6)
        assert watcher.interval == 0.1 and len(_calls(sandbox, LIST_PATH)) >= 3
    finally:
        slow.close()


def test_wait_polls_at_the_configured_interval(sandbox, paced, make_instance):
    instance_id = make_instance("paced-wait", image=SMALL_IMAGE)
    sandbox.clear_requests()
    # A running instance never exits by itself: the wait polls until its timeout.
    with pytest.raises(TimeoutError):
        paced.wait(instance_id, until="exited", timeout=1.0, progress=False)
    times = _calls(sandbox, GET_PATH)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Fixed 0.1-s polls: about ten GETs, 0.1 s apart. The adaptive default (no poll_interval)
    # starts near 0.5 s and grows: three or four GETs, gaps of 0.4 s and more.
    assert len(times) >= 5
    assert statistics.median(gaps) < 0.3


def test_wait_poll_argument_wins_over_the_setting(sandbox, make_instance):
    slow = Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=30)
    try:
        instance_id = make_instance("fast-wait", image=SMALL_IMAGE)
        sandbox.clear_requests()
        with pytest.raises(TimeoutError):
            slow.wait(instance_id, until="exited", timeout=0.6, progress=False, poll=0.1)
        assert len(_calls(sandbox, GET_PATH)) >= 3
    finally:
        slow.close()
