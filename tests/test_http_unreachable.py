"""A closed client or an unreachable API fails at once, with one clear message,
and every call is bounded by ``Transport.call_deadline``."""

from __future__ import annotations

import logging
import time

import pytest

from novita_notebook import Novita
from novita_notebook.errors import NovitaError, ServerError
from novita_notebook.http import ClientClosedError
from tests.sandbox_view import novita_calls


def test_closed_client_raises_client_closed_at_once(sandbox, client):
    client.products()
    client.close()
    sandbox.clear_requests()
    started = time.monotonic()
    with pytest.raises(ClientClosedError, match="client is closed"):
        client.create("after-close", gpu="4090")
    with pytest.raises(NovitaError, match="client is closed"):
        client.instances()
    assert time.monotonic() - started < 2.0
    assert novita_calls(sandbox) == []


@pytest.mark.timeout(120)
def test_stopped_sandbox_fails_fast_with_one_message(sandbox, caplog):
    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, timeout=(1, 5))
    client.products()  # warm: the catalog is cached, the failure comes from the create path
    sandbox.stop()
    caplog.set_level(logging.DEBUG, logger="novita_notebook")
    for _ in range(2):  # the second call must not be slower (no breaker wait-outs)
        started = time.monotonic()
        with pytest.raises(NovitaError) as info:
            client.create("nowhere", gpu="4090")
        elapsed = time.monotonic() - started
        assert elapsed < 15, f"create took {elapsed:.1f} s against a stopped API"
        assert "unreachable" in str(info.value) or "cannot reach" in str(info.value)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([r for r in warnings if "circuit breaker" in r.getMessage()]) <= 1
    assert not [r for r in warnings if "half-open" in r.getMessage()]
    assert client.ledger.pending() == []  # nothing was sent: no intent kept
    client.close()


@pytest.mark.timeout(60)
def test_call_deadline_bounds_retries(sandbox):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=8,
        retry_backoff=1.0,
        retry_backoff_max=30.0,
        breaker_threshold=100,
    )
    client.transport.call_deadline = 2.0
    sandbox.set_faults(errorRate=1.0)
    started = time.monotonic()
    with pytest.raises(ServerError):
        client.api.list_instances()
    assert time.monotonic() - started < 6.0
    client.close()


def test_transport_api_key_is_readable_but_never_shown(sandbox, client):
    assert client.transport.api_key == sandbox.api_key
    with pytest.raises(AttributeError):
        client.transport.api_key = "other"  # read-only
    assert sandbox.api_key not in repr(client.transport)
    assert sandbox.api_key not in repr(client)
