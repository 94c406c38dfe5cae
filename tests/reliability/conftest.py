"""Fixtures for the reliability suite: a client tuned for a fast sandbox (tiny backoffs, many
retries), a recorder of the sandbox's Retry-After values, and create-only latency.
"""

from __future__ import annotations

import threading
import time

import pytest


@pytest.fixture
def fast_client(sandbox):
    """Retries quickly (10 ms base backoff) so fault storms stay fast; breaker out of the way."""
    from novita_notebook import Novita

    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=8,
        retry_backoff=0.01,
        retry_backoff_max=3.0,
        breaker_threshold=1000,
        timeout=(2.0, 5.0),
    )
    yield client
    client.close()


@pytest.fixture
def retry_after_log(sandbox):
    """Every rate-limit decision of the sandbox as (unix time, Retry-After seconds)."""
    decisions: list[tuple[float, int]] = []
    lock = threading.Lock()
    original = sandbox.faults.decide

    def recording_decide(*args, **kwargs):
        decision = original(*args, **kwargs)
        if decision.retry_after is not None:
            with lock:
                decisions.append((time.time(), decision.retry_after))
        return decision

    sandbox.faults.decide = recording_decide
    yield decisions
    sandbox.faults.decide = original


@pytest.fixture
def slow_creates(sandbox):
    """``slow_creates(seconds)``: only instance creates get this latency (the sandbox's own
    latency fault delays every request, so a create could never be reached in time)."""
    from novita_notebook.sandbox.faults import Decision

    original = sandbox.faults.decide

    def enable(seconds: float) -> None:
        def decide(is_create: bool, now: float | None = None, **kinds: bool):
            decision = original(is_create, now, **kinds)
            if is_create and decision == Decision():
                return Decision(latency=seconds)
            return decision

        sandbox.faults.decide = decide

    yield enable
    sandbox.faults.decide = original
