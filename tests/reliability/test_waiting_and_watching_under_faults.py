"""wait and watch through fault storms and a sandbox restart: they ride out what is transient,
report what is not as NovitaErrors, and the watcher thread never dies.
"""

from __future__ import annotations

import threading
import time

import pytest
from sandbox_truth import live_instances, outcome

from novita_notebook import Novita
from novita_notebook.errors import NovitaError
from novita_notebook.errors import TimeoutError as NovitaTimeoutError
from novita_notebook.sandbox import Sandbox
from novita_notebook.sandbox import faults as sandbox_faults
from novita_notebook.waiting import Backoff
from novita_notebook.webhooks import Notifier

IMAGE = "ubuntu:22.04"  # ~20 s to running at speed 1: ~1 s at speed 20
FAST_POLL = Backoff(initial=0.02, cap=0.1)


@pytest.fixture
def slow_sandbox():
    """Provisioning takes about a second, long enough to restart the sandbox in the middle."""
    with Sandbox(speed=20, seed=5) as server:
        yield server


@pytest.fixture
def slow_client(slow_sandbox):
    client = Novita(
        api_key=slow_sandbox.api_key,
        api_url=slow_sandbox.url,
        max_retries=2,
        retry_backoff=0.01,
        retry_backoff_max=0.5,
        breaker_threshold=1000,
        timeout=(0.5, 2.0),
    )
    yield client
    client.close()


def _restart_later(server: Sandbox, delay: float, downtime: float) -> tuple[threading.Thread, dict]:
    marks: dict[str, float] = {}

    def run() -> None:
        time.sleep(delay)
        marks["down"] = time.monotonic()
        server.restart(downtime=downtime)
        marks["up"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, marks


def test_wait_rides_out_a_fault_storm(sandbox, fast_client):
    inst = fast_client.create("storm-1", gpu="4090", image=IMAGE)
    sandbox.set_faults(errorRate=0.3, dropRate=0.1)
    result = outcome(lambda: fast_client.wait(inst, until="running", timeout=30, poll=FAST_POLL))
    sandbox.clear_faults()
    assert not isinstance(result, NovitaError), result
    assert result.status == "running"


def test_wait_rides_out_a_sandbox_restart(slow_sandbox, slow_client):
    inst = slow_client.create("restart-1", gpu="4090", image=IMAGE)
    thread, marks = _restart_later(slow_sandbox, delay=0.2, downtime=0.6)
    started = time.monotonic()
    result = outcome(lambda: slow_client.wait(inst, until="running", timeout=30, poll=FAST_POLL))
    thread.join(10)
    assert not isinstance(result, NovitaError), result
    assert result.status == "running"
    assert started < marks["down"] < marks["up"], "the restart did not happen during the wait"


def test_wait_while_the_api_is_gone_ends_in_a_timeout_error(slow_sandbox, slow_client):
    inst = slow_client.create("gone-1", gpu="4090", image=IMAGE)
    slow_sandbox.stop()
    try:
        result = outcome(
            lambda: slow_client.wait(inst, until="running", timeout=1.0, poll=FAST_POLL)
        )
    finally:
        slow_sandbox.start()
    assert isinstance(result, NovitaTimeoutError), result
    # and the same client works again once the API is back
    assert not isinstance(outcome(slow_client.instances), NovitaError)


def test_watch_survives_a_sandbox_restart_and_sees_the_end(slow_sandbox, slow_client):
    created = [slow_client.create(f"watched-{i}", gpu="4090", image=IMAGE) for i in range(3)]
    watcher = slow_client.watch(created, interval=0.05)
    try:
        watcher.wait_for(lambda w: w.ticks >= 2, timeout=10)
        thread, marks = _restart_later(slow_sandbox, delay=0.0, downtime=0.6)
        thread.join(10)
        ticks_after_restart = watcher.ticks
        # raises a TimeoutError (failing the test) if the watcher never sees all three running
        watcher.wait_for("running", timeout=20)
        assert len(watcher.latest) == 3
        assert watcher.running, "the watcher thread died"
        assert watcher.ticks > ticks_after_restart
        assert watcher.error_count >= 1, "the restart went unnoticed (no failed tick)"
        assert isinstance(watcher.last_error, NovitaError), repr(watcher.last_error)
        assert watcher.consecutive_errors == 0, "the watcher did not recover"
        statuses = [e.new_status for e in watcher.event_list if e.name == "watched-0"]
        assert statuses[-1] == "running"
    finally:
        watcher.stop()
    assert not watcher.running


def test_watch_through_a_5xx_storm_reports_novita_errors_only(sandbox):
    client = Novita(
        api_key=sandbox.api_key, api_url=sandbox.url, max_retries=0, breaker_threshold=1000
    )
    try:
        inst = client.create("stormy-watch", gpu="4090", image=IMAGE)
        sandbox.set_faults(errorRate=0.5)
        watcher = client.watch([inst], interval=0.02)
        try:
            watcher.wait_for(lambda w: w.error_count >= 3 and w.ticks >= 3, timeout=15)
            assert watcher.running
            assert isinstance(watcher.last_error, NovitaError), repr(watcher.last_error)
            assert len(watcher.errors) == 0  # no callback failed
        finally:
            watcher.stop()
        sandbox.clear_faults()
    finally:
        client.close()


def test_watch_with_an_open_breaker_keeps_the_thread_alive(sandbox):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=0,
        breaker_threshold=2,
        breaker_reset_timeout=0.3,
    )
    try:
        inst = client.create("breaker-watch", gpu="4090", image=IMAGE)
        sandbox.set_faults(errorRate=1.0)
        watcher = client.watch([inst], interval=0.02)
        try:
            # the breaker opens, lets a probe through, reopens...: the watcher meets it and lives
            watcher.wait_for(
                lambda w: type(w.last_error).__name__ == "CircuitBreakerError", timeout=15
            )
            assert watcher.running
            sandbox.clear_faults()
            watcher.wait_for(lambda w: w.consecutive_errors == 0, timeout=15)
            assert isinstance(watcher.last_error, NovitaError)
        finally:
            watcher.stop()
    finally:
        client.close()


def test_watch_keeps_its_pace_while_the_webhook_receiver_is_down(sandbox, fast_client):
    inst = fast_client.create("hook-down", gpu="4090", image=IMAGE)
    # nothing listens on port 9: every delivery fails (in the background, with retries)
    notifier = Notifier(
        "http://127.0.0.1:9/hook",
        "a-long-enough-webhook-secret",
        background=True,
        max_attempts=2,
        backoff=0.01,
        timeout=0.5,
    )
    watcher = fast_client.watch([inst], interval=0.02, notify=notifier)
    try:
        started = time.monotonic()
        watcher.wait_for(lambda w: w.ticks >= 15, timeout=15)
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"15 ticks took {elapsed:.1f} s: the notifier slowed the watcher"
        watcher.wait_for("running", timeout=15)
    finally:
        watcher.stop()
    assert notifier.flush(timeout=10)
    notifier.close()
    assert notifier.failures, "deliveries to a closed port were not recorded as failures"
    assert len(watcher.errors) == 0 and watcher.running is False


@pytest.mark.parametrize("max_retries", [0, 3])
def test_watch_never_polls_before_retry_after(sandbox, monkeypatch, retry_after_log, max_retries):
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 2.0)  # Retry-After of 1-2 s
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=max_retries,
        retry_backoff=0.01,
        retry_backoff_max=5.0,
    )
    try:
        inst = client.create("paced", gpu="4090", image=IMAGE)
        sandbox.clear_requests()
        sandbox.set_faults(rateLimitPerMinute=3)
        watcher = client.watch([inst], interval=0.05)
        try:
            watcher.wait_for(lambda w: w.ticks >= 5, timeout=30)
        finally:
            watcher.stop()
    finally:
        client.close()
    sandbox.clear_faults()
    time.sleep(0.05)  # the sandbox stamps a status just after answering
    log = [r for r in sandbox.requests() if r["path"].startswith("/gpu-instance")]
    limited = [r for r in log if r["status"] == 429]
    assert limited, "no 429 was produced"
    waits = [after for _, after in retry_after_log]
    assert len(waits) == len(limited)
    for entry, retry_after in zip(limited, waits, strict=True):
        later = [r for r in log if r["time"] > entry["time"]]
        if later:
            gap = later[0]["time"] - entry["time"]
            assert gap >= retry_after - 0.01, (
                f"polled {gap:.3f} s after a 429 asking for Retry-After: {retry_after}"
            )


@pytest.mark.parametrize("max_retries", [0, 3])
def test_wait_never_polls_before_retry_after(slow_sandbox, monkeypatch, max_retries):
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 2.0)  # Retry-After of 1-2 s
    decisions: list[int] = []
    original = slow_sandbox.faults.decide

    def recording(*args, **kwargs):
        decision = original(*args, **kwargs)
        if decision.retry_after is not None:
            decisions.append(decision.retry_after)
        return decision

    monkeypatch.setattr(slow_sandbox.faults, "decide", recording)
    client = Novita(
        api_key=slow_sandbox.api_key,
        api_url=slow_sandbox.url,
        max_retries=max_retries,
        retry_backoff=0.01,
        retry_backoff_max=5.0,
    )
    try:
        inst = client.create("paced-wait", gpu="4090", image=IMAGE)
        slow_sandbox.clear_requests()
        slow_sandbox.set_faults(rateLimitPerMinute=3)
        result = outcome(lambda: client.wait(inst, until="running", timeout=30, poll=FAST_POLL))
    finally:
        client.close()
    slow_sandbox.clear_faults()
    assert not isinstance(result, NovitaError), result
    time.sleep(0.05)
    log = [r for r in slow_sandbox.requests() if r["path"].startswith("/gpu-instance")]
    limited = [r for r in log if r["status"] == 429]
    assert limited and len(decisions) == len(limited)
    for entry, retry_after in zip(limited, decisions, strict=True):
        later = [r for r in log if r["time"] > entry["time"]]
        if later:
            gap = later[0]["time"] - entry["time"]
            assert gap >= retry_after - 0.01, (
                f"polled {gap:.3f} s after a 429 asking for Retry-After: {retry_after}"
            )


def test_create_and_wait_in_one_call_through_a_storm(sandbox, fast_client):
    sandbox.set_faults(errorRate=0.25, dropRate=0.1)
    result = outcome(
        lambda: fast_client.create(
            "one-call", gpu="4090", image=IMAGE, wait=True, timeout=30, progress=False
        )
    )
    sandbox.clear_faults()
    assert not isinstance(result, NovitaError), result
    assert result.status == "running"
    held = [i for i in live_instances(sandbox, "one-call") if i["name"] == "one-call"]
    assert [i["id"] for i in held] == [result.id]


def test_watch_through_latency_past_the_read_timeout_recovers(sandbox):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        timeout=(1.0, 0.2),
        max_retries=0,
        breaker_threshold=1000,
    )
    try:
        inst = client.create("laggy-watch", gpu="4090", image=IMAGE)
        sandbox.set_faults(latencyMs=400)
        watcher = client.watch([inst], interval=0.02)
        try:
            watcher.wait_for(lambda w: w.error_count >= 2, timeout=15)
            assert isinstance(watcher.last_error, NovitaTimeoutError), repr(watcher.last_error)
            assert watcher.running
            sandbox.clear_faults()
            watcher.wait_for(lambda w: w.consecutive_errors == 0 and w.ticks >= 1, timeout=15)
            watcher.wait_for("running", timeout=15)
        finally:
            watcher.stop()
    finally:
        client.close()
