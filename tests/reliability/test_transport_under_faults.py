"""The HTTP layer under the sandbox's faults: 5xx storms, dropped connections, latency past the
read timeout and 429 storms. Reads survive, failures are NovitaErrors, Retry-After is a floor.
"""

from __future__ import annotations

import time

import pytest
from sandbox_truth import live_instances, outcome, requests_to

from novita_notebook import Novita
from novita_notebook.errors import (
    APIError,
    NetworkError,
    NovitaError,
)
from novita_notebook.errors import TimeoutError as NovitaTimeoutError
from novita_notebook.sandbox import faults as sandbox_faults
from novita_notebook.waiting import Backoff

API = "/gpu-instance/openapi/v1"


def _novita_requests(sandbox) -> list[dict]:
    # The sandbox stamps a request's status just after writing the answer: let it finish.
    time.sleep(0.05)
    return [r for r in sandbox.requests() if r["path"].startswith(API)]


def test_reads_survive_thirty_percent_5xx(sandbox, fast_client):
    sandbox.set_faults(errorRate=0.3)
    calls = [fast_client.api.clusters, fast_client.api.products, fast_client.api.list_instances]
    results = [outcome(call) for _ in range(15) for call in calls]
    failures = [r for r in results if isinstance(r, NovitaError)]
    assert not failures, f"{len(failures)} reads failed despite retries: {failures[:3]}"
    statuses = [r["status"] for r in _novita_requests(sandbox)]
    assert any(s >= 500 for s in statuses), "the fault storm did not happen"
    assert statuses.count(200) == len(results)  # one success per call, no extra work


def test_exhausted_retries_raise_an_api_error_after_exactly_the_allowed_attempts(sandbox):
    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, max_retries=2, retry_backoff=0.01)
    try:
        sandbox.set_faults(errorRate=1.0)
        error = outcome(client.api.clusters)
        assert isinstance(error, APIError) and error.status in {500, 503}
        assert len(requests_to(sandbox, "GET", "/clusters")) == 3  # 1 try + 2 retries
    finally:
        client.close()


def test_dropped_connections_are_retried_for_reads(sandbox, fast_client):
    sandbox.set_faults(dropRate=0.3)
    results = [outcome(fast_client.api.clusters) for _ in range(30)]
    assert not [r for r in results if isinstance(r, NovitaError)]
    assert any(r["status"] == 0 for r in _novita_requests(sandbox)), "no connection was dropped"


def test_every_dropped_connection_ends_as_a_network_error(sandbox):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=1,
        retry_backoff=0.01,
        breaker_threshold=100,  # the breaker has its own test; here every call must try
    )
    try:
        sandbox.set_faults(dropRate=1.0)
        for call in (client.api.clusters, client.api.list_instances, client.instances):
            assert isinstance(outcome(call), NetworkError)
    finally:
        client.close()


def test_latency_beyond_the_read_timeout_is_a_timeout_error(sandbox):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        timeout=(2.0, 0.3),
        max_retries=1,
        retry_backoff=0.01,
    )
    try:
        sandbox.set_faults(latencyMs=1000)
        started = time.monotonic()
        error = outcome(client.api.clusters)
        elapsed = time.monotonic() - started
        assert isinstance(error, NovitaTimeoutError), error
        assert error.status is None and error.call and "clusters" in error.call
        # two attempts of 0.3 s each and a tiny backoff: nowhere near the 1 s latency twice
        assert elapsed < 1.8
        sandbox.clear_faults()
        assert outcome(client.api.clusters)  # the same client recovers at once
    finally:
        client.close()


def test_429_storm_never_retries_before_retry_after(sandbox, monkeypatch, retry_after_log):
    # The sandbox limits per 60-s window; a 2-s window keeps Retry-After (1-2 s) test-sized.
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 2.0)
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=6,
        retry_backoff=0.01,
        retry_backoff_max=5.0,
    )
    try:
        sandbox.set_faults(rateLimitPerMinute=4)
        results = [outcome(client.api.clusters) for _ in range(9)]
    finally:
        client.close()
    assert not [r for r in results if isinstance(r, NovitaError)], results
    log = _novita_requests(sandbox)
    limited = [entry for entry in log if entry["status"] == 429]
    assert limited, "the storm produced no 429"
    assert len(retry_after_log) == len(limited)
    for (decided_at, retry_after), entry in zip(retry_after_log, limited, strict=True):
        assert abs(decided_at - entry["time"]) < 0.5  # the decision belongs to this request
        later = [e for e in log if e["time"] > entry["time"]]
        assert later, "a 429 was never followed by a retry"
        gap = later[0]["time"] - entry["time"]
        assert gap >= retry_after - 0.01, (
            f"retried {gap:.3f} s after a 429 that asked for Retry-After: {retry_after}"
        )


def test_breaker_opens_fails_fast_and_recovers(sandbox):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=0,
        breaker_threshold=3,
        breaker_reset_timeout=0.5,
    )
    try:
        sandbox.set_faults(errorRate=1.0)
        for _ in range(3):
            assert isinstance(outcome(client.api.clusters), APIError)
        sent = len(_novita_requests(sandbox))
        error = outcome(client.api.clusters)
        assert type(error).__name__ == "CircuitBreakerError"
        assert error.retry_at is not None and error.retry_at > time.time()
        assert len(_novita_requests(sandbox)) == sent, "an open breaker still sent a request"
        assert client.transport.breaker_state == "open"

        sandbox.clear_faults()
        time.sleep(0.6)
        assert not isinstance(outcome(client.api.clusters), NovitaError)
        assert client.transport.breaker_state == "closed"
        assert not isinstance(outcome(client.api.clusters), NovitaError)
    finally:
        client.close()


def test_4xx_answers_do_not_open_the_breaker(sandbox):
    client = Novita(
        api_key=sandbox.api_key, api_url=sandbox.url, max_retries=0, breaker_threshold=2
    )
    try:
        for _ in range(5):
            assert isinstance(outcome(lambda: client.api.get_instance("missing")), NovitaError)
        assert client.transport.breaker_state == "closed"
    finally:
        client.close()


@pytest.mark.parametrize("fault", [{"errorRate": 0.3}, {"dropRate": 0.3}])
def test_lifecycle_calls_under_faults_reach_the_asked_state(sandbox, fast_client, fault):
    poll = Backoff(initial=0.01, cap=0.05)
    inst = fast_client.create("life-1", gpu="RTX 4090", image="ubuntu:22.04")
    fast_client.wait(inst, until="running", timeout=30, poll=poll)
    sandbox.set_faults(**fault)
    steps = [
        (fast_client.stop, "exited"),
        (fast_client.start, "running"),
        (fast_client.restart, "running"),
    ]
    for action, target in steps:
        result = outcome(lambda action=action: action("life-1"))
        assert not isinstance(result, NovitaError), f"{action.__name__} failed: {result}"
        waited = outcome(lambda t=target: fast_client.wait(inst.id, until=t, timeout=30, poll=poll))
        assert not isinstance(waited, NovitaError), f"wait for {target} failed: {waited}"
        assert waited.status == target
    deleted = outcome(lambda: fast_client.delete(inst.id))
    assert not isinstance(deleted, NovitaError), deleted
    sandbox.clear_faults()
    assert any(r["status"] == 0 or r["status"] >= 500 for r in _novita_requests(sandbox))
    assert live_instances(sandbox) == []
