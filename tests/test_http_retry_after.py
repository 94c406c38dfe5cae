"""A Retry-After binds the whole client: once one thread is told to wait, no thread of that
client sends before the wait is over (checked from the sandbox's request log)."""

from __future__ import annotations

import threading
import time

import pytest

from novita_notebook import Novita
from novita_notebook.errors import RateLimitError
from novita_notebook.sandbox import faults as sandbox_faults


def _api_log(sandbox):
    time.sleep(0.05)  # let the last answer's log entry settle
    return [r for r in sandbox.requests() if r["path"].startswith("/gpu-instance")]


def test_no_thread_sends_before_a_retry_after_another_thread_received(sandbox, monkeypatch):
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 2.0)  # Retry-After of 1-2 s
    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, retry_backoff=0.01, max_retries=6)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.api.clusters()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    try:
        sandbox.clear_requests()
        sandbox.set_faults(rateLimitPerMinute=2)
        client.api.clusters()
        client.api.clusters()  # the window is full now
        first = threading.Thread(target=call)
        first.start()  # gets a 429 and waits out its Retry-After
        deadline = time.monotonic() + 10
        # until the client itself holds the Retry-After: the sandbox logs its 429 before the
        # answer reaches the client, and a call sent in between is not "told to wait" yet
        while client.transport._not_before <= time.monotonic():
            assert time.monotonic() < deadline, "no 429 was received"
            time.sleep(0.005)
        assert any(r["status"] == 429 for r in sandbox.requests())
        second = threading.Thread(target=call)  # a new call while the client is told to wait
        second.start()
        first.join(30)
        second.join(30)
        sandbox.clear_faults()
    finally:
        client.close()
    assert not errors
    log = _api_log(sandbox)
    limited_at = next(r["time"] for r in log if r["status"] == 429)
    # Retry-After is a whole number of seconds (>= 1): nothing may arrive within it.
    too_early = [r for r in log if limited_at < r["time"] < limited_at + 0.95]
    assert too_early == [], too_early


def test_a_retry_after_longer_than_the_cap_fails_fast_without_sending(sandbox, monkeypatch):
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 30.0)
    client = Novita(
        api_key=sandbox.api_key, api_url=sandbox.url, retry_backoff=0.01, retry_backoff_max=5.0
    )
    try:
        sandbox.set_faults(rateLimitPerMinute=1)
        client.api.clusters()
        with pytest.raises(RateLimitError):
            client.api.clusters()  # told to wait ~30 s: more than the 5 s cap
        sandbox.clear_requests()
        with pytest.raises(RateLimitError) as info:
            client.api.products()  # another call: refused before it is sent
        assert info.value.retry_after > 5.0
        assert _api_log(sandbox) == []
    finally:
        sandbox.clear_faults()
        client.close()
