"""Transport resilience against sandbox faults over real HTTP: retries of idempotent calls,
never of creates, Retry-After as a floor, the circuit breaker, the shared rate limiter,
dropped connections and read timeouts; plus a tiny loopback server for short Retry-After
values (the sandbox's rate window is a fixed minute, so it only produces long ones).
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from novita_notebook import Novita
from novita_notebook.errors import (
    APIError,
    CircuitBreakerError,
    NetworkError,
    NotFoundError,
    NovitaError,
    RateLimitError,
    TimeoutError,
)
from novita_notebook.http import RateLimiter, parse_retry_after
from tests.api_helpers import api_requests, create_raw


def make_client(sandbox, **kwargs):
    kwargs.setdefault("retry_backoff", 0.01)
    return Novita(api_key=sandbox.api_key, api_url=sandbox.url, **kwargs)


# -- retries --------------------------------------------------------------------------------


def test_get_is_retried_through_5xx(sandbox):
    with make_client(sandbox, max_retries=8, breaker_threshold=50) as client:
        sandbox.set_faults(errorRate=0.5)
        for _ in range(10):
            assert client.api.clusters()
        logged = api_requests(sandbox, "/clusters")
    statuses = [r["status"] for r in logged]
    assert statuses.count(200) == 10
    assert {s for s in statuses if s != 200} <= {500, 503} and len(statuses) > 10
    assert client.requests_made == len(logged)


def test_get_gives_up_after_max_retries(sandbox):
    with make_client(sandbox, max_retries=2, breaker_threshold=50) as client:
        sandbox.set_faults(errorRate=1.0)
        with pytest.raises(APIError) as info:
            client.api.clusters()
    assert info.value.status in (500, 503) and info.value.attempts == 3
    assert len(api_requests(sandbox, "/clusters")) == 3


def test_lifecycle_post_is_resent_once_a_read_shows_it_did_not_land(sandbox, monkeypatch):
    """A 5xx on a stop: the instance is read, still not stopping, so the stop is sent again
    (resending one blindly is not known to be harmless: tests/test_lifecycle.py)."""
    from novita_notebook.sandbox.faults import Decision
    from novita_notebook.sandbox.validate import ApiError

    original = sandbox.faults.decide
    failed: list[bool] = []

    def first_stop_fails(is_create, now=None, *, is_action=False):
        if is_action and not failed:
            failed.append(True)
            return Decision(error=ApiError("UNKNOWN", "internal server error"))
        return original(is_create, now, is_action=is_action)

    with make_client(sandbox, max_retries=2, breaker_threshold=50) as client:
        new_id = create_raw(client, "retry-stop")
        monkeypatch.setattr(sandbox.faults, "decide", first_stop_fails)
        client.api.stop_instance(new_id)
    assert [r["status"] for r in api_requests(sandbox, "/gpu/instance/stop")] == [500, 200]


def test_create_is_never_retried_on_5xx(sandbox):
    with make_client(sandbox, max_retries=4, breaker_threshold=50) as client:
        client.cached_products(), client.cached_clusters()
        sandbox.set_faults(errorRate=1.0)
        with pytest.raises(APIError):
            create_raw(client, "once")
    assert len(api_requests(sandbox, "/gpu/instance/create")) == 1


def test_create_is_never_retried_on_a_dropped_answer(sandbox):
    """Ambiguous create: the sandbox creates the instance, then drops the connection."""
    with make_client(sandbox, max_retries=4) as client:
        client.cached_products(), client.cached_clusters()
        sandbox.set_faults(ambiguousCreateRate=1.0)
        with pytest.raises(NetworkError) as info:
            create_raw(client, "ambiguous")
        assert "not retried" in info.value.hint
        sandbox.clear_faults()
        assert [r["name"] for r in client.api.list_instances()] == ["ambiguous"]
    assert len(api_requests(sandbox, "/gpu/instance/create")) == 1


def test_template_create_and_auth_save_are_not_retried(sandbox):
    with make_client(sandbox, max_retries=3, breaker_threshold=50) as client:
        sandbox.set_faults(errorRate=1.0)
        with pytest.raises(APIError):
            client.api.create_template({"name": "t", "image": "x"})
        with pytest.raises(APIError) as info:
            client.api.save_registry_auth("r", "u", "p4ssw0rd-secret")
    assert "p4ssw0rd-secret" not in str(info.value)
    assert len(api_requests(sandbox, "/template/create")) == 1
    assert len(api_requests(sandbox, "/repository/auth/save")) == 1


def test_4xx_is_not_retried(client, sandbox):
    with pytest.raises(NotFoundError):
        client.api.get_instance("missing")
    assert len(api_requests(sandbox, "/gpu/instance")) == 1


def test_retries_pace_themselves_on_the_one_schedule(sandbox, monkeypatch):
    """The transport's waits come from waiting.backoff.retry_delay with its own base and cap
    (the schedule's shape is tested in tests/waiting/test_backoff.py)."""
    from novita_notebook import http
    from novita_notebook.waiting import backoff

    asked = []

    def recording(attempt, **kwargs):
        asked.append((attempt, kwargs["base"], kwargs["cap"]))
        return backoff.retry_delay(attempt, **kwargs)

    monkeypatch.setattr(http, "retry_delay", recording)
    with make_client(
        sandbox, max_retries=2, breaker_threshold=50, retry_backoff=0.01, retry_backoff_max=0.05
    ) as client:
        sandbox.set_faults(errorRate=1.0)
        with pytest.raises(APIError):
            client.api.clusters()
    assert asked == [(0, 0.01, 0.05), (1, 0.01, 0.05)]


# -- Retry-After ------------------------------------------------------------------------------


def test_long_retry_after_from_sandbox_is_not_undercut(sandbox):
    """rateLimitPerMinute: the 429 asks for ~a minute; with a 5 s cap the client must not
    retry early: it raises RateLimitError carrying retry_after and sends nothing more."""
    with make_client(sandbox, max_retries=4, retry_backoff_max=5.0) as client:
        sandbox.set_faults(rateLimitPerMinute=2)
        client.api.clusters()
        client.api.clusters()
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            client.api.clusters()
        assert time.monotonic() - started < 2.0
    assert info.value.status == 429 and info.value.retry_after > 5.0
    statuses = [r["status"] for r in api_requests(sandbox, "/clusters")]
    assert statuses == [200, 200, 429]


def test_rate_limited_calls_do_not_open_the_breaker(sandbox):
    # A short cap: told to wait about a minute, each call fails fast instead of sleeping.
    with make_client(sandbox, max_retries=0, breaker_threshold=2, retry_backoff_max=5.0) as client:
        sandbox.set_faults(rateLimitPerMinute=1)
        client.api.clusters()
        for _ in range(4):
            with pytest.raises(RateLimitError):
                client.api.clusters()
        assert client.api.transport.breaker_state == "closed"


class _FlakyHandler(BaseHTTPRequestHandler):
    """Answers 429 (with the server's Retry-After) until told otherwise, logging arrivals."""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        server = self.server
        with server.lock:
            server.arrivals.append(time.time())
            failing = len(server.arrivals) <= server.failures
        if failing:
            body = json.dumps({"code": 429, "reason": "RATE_LIMIT_EXCEEDED", "message": "slow"})
            self.send_response(429)
            self.send_header("Retry-After", server.retry_after())
        else:
            body = json.dumps({"data": []})
            self.send_response(200)
        encoded = body.encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)


@pytest.fixture
def flaky_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyHandler)
    server.lock = threading.Lock()
    server.arrivals = []
    server.failures = 1
    server.retry_after = lambda: "1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_retry_after_http_date_is_a_floor(flaky_server):
    url = f"http://127.0.0.1:{flaky_server.server_address[1]}"
    not_before: list[float] = []

    def http_date():
        # HTTP dates have whole seconds: ask for the next second boundary + 1
        moment = int(time.time()) + 2
        not_before.append(moment)
        return email.utils.formatdate(moment, usegmt=True)

    flaky_server.retry_after = http_date
    with Novita(api_key="sk_local_test_key", api_url=url, retry_backoff=0.001) as client:
        assert client.api.clusters() == []
    assert len(flaky_server.arrivals) == 2
    assert flaky_server.arrivals[1] >= not_before[0] - 0.05  # clock granularity only


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(
        30
    )
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-3", now) == 0.0


# -- circuit breaker -------------------------------------------------------------------------


def test_breaker_opens_fails_fast_and_recovers(sandbox):
    with make_client(
        sandbox, max_retries=0, breaker_threshold=3, breaker_reset_timeout=0.5
    ) as client:
        sandbox.set_faults(errorRate=1.0)
        for _ in range(3):
            with pytest.raises(APIError):
                client.api.clusters()
        sent = len(api_requests(sandbox))
        with pytest.raises(CircuitBreakerError) as info:
            client.api.clusters()
        error = info.value
        assert len(api_requests(sandbox)) == sent  # failed fast: nothing sent
        assert 0 < error.retry_at - time.time() <= 0.5 and "failing fast" in str(error)
        assert client.api.transport.breaker_state == "open"
        # a failed probe re-opens it
        time.sleep(0.55)
        with pytest.raises(APIError):
            client.api.clusters()
        assert client.api.transport.breaker_state == "open"
        with pytest.raises(CircuitBreakerError):
            client.api.clusters()
        # the API recovers: the next probe succeeds and closes the breaker
        sandbox.clear_faults()
        time.sleep(0.55)
        assert client.api.clusters()
        assert client.api.transport.breaker_state == "closed"
        assert client.api.clusters()


def test_4xx_does_not_open_the_breaker(client):
    for _ in range(8):
        with pytest.raises(NotFoundError):
            client.api.get_instance("missing")
    assert client.api.transport.breaker_state == "closed"


def test_breaker_interrupts_retries(sandbox):
    with make_client(sandbox, max_retries=10, breaker_threshold=3, breaker_reset_timeout=30) as c:
        sandbox.set_faults(errorRate=1.0)
        with pytest.raises(CircuitBreakerError) as info:
            c.api.clusters()
        assert isinstance(info.value.__cause__, APIError)
    assert len(api_requests(sandbox, "/clusters")) == 3


def test_half_open_lets_one_probe_through(sandbox):
    with make_client(
        sandbox, max_retries=0, breaker_threshold=1, breaker_reset_timeout=0.3
    ) as client:
        sandbox.set_faults(errorRate=1.0)
        with pytest.raises(APIError):
            client.api.clusters()
        sandbox.set_faults(latencyMs=400)  # the probe will take a while and succeed
        time.sleep(0.35)
        sandbox.clear_requests()
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(lambda _: _outcome(client.api.clusters), range(4)))
        assert outcomes.count("ok") >= 1
        assert set(outcomes) <= {"ok", "CircuitBreakerError"}
        assert len(api_requests(sandbox, "/clusters")) == outcomes.count("ok")
        assert client.api.transport.breaker_state == "closed"


def _outcome(call):
    try:
        call()
    except NovitaError as exc:
        return type(exc).__name__
    return "ok"


# -- rate limiter ------------------------------------------------------------------------------


def test_rate_limiter_shared_across_threads(sandbox):
    rate = 20.0
    with make_client(sandbox, rate_limit_per_second=rate, max_concurrency=8) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: client.api.clusters(), range(40)))
        elapsed = time.monotonic() - started
    assert elapsed >= (40 - rate) / rate * 0.9
    times = sorted(r["time"] for r in api_requests(sandbox, "/clusters"))
    assert len(times) == 40
    # token bucket: in any window of t seconds, at most burst + rate * t requests (+1 slack)
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert (j - i + 1) <= rate + rate * (times[j] - times[i]) + 1.5


def test_rate_limiter_unit():
    clock = [0.0]
    slept: list[float] = []
    limiter = RateLimiter(2.0, burst=2, clock=lambda: clock[0], sleep=slept.append)
    assert limiter.acquire() == 0 and limiter.acquire() == 0
    assert limiter.acquire() == pytest.approx(0.5)
    assert limiter.acquire() == pytest.approx(1.0)  # queued behind the previous reservation
    clock[0] = 10.0
    assert limiter.acquire() == 0  # refilled
    with pytest.raises(NovitaError):
        RateLimiter(0)


# -- network failures ------------------------------------------------------------------------


def test_dropped_connections_become_network_error(sandbox):
    with make_client(sandbox, max_retries=1, breaker_threshold=50) as client:
        sandbox.set_faults(dropRate=1.0)
        with pytest.raises(NetworkError) as info:
            client.api.clusters()
    assert "closed the connection" in info.value.message
    assert info.value.path.endswith("/clusters") and info.value.method == "GET"
    assert [r["status"] for r in api_requests(sandbox, "/clusters")] == [0, 0]


def test_latency_beyond_read_timeout_is_timeout_error(sandbox):
    with make_client(sandbox, max_retries=0, timeout=(2, 0.3)) as client:
        sandbox.set_faults(latencyMs=1500)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            client.api.clusters()
        assert time.monotonic() - started < 1.4
    assert "0.3 s" in info.value.message and info.value.path.endswith("/clusters")


def test_connection_refused_is_network_error():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        Novita(
            api_key="sk_local_test_key",
            api_url=f"http://127.0.0.1:{port}",
            max_retries=1,
            retry_backoff=0.01,
        ) as client,
        pytest.raises(NetworkError, match="connection refused") as info,
    ):
        client.api.get_instance("abc")
    assert "instanceId" not in str(info.value)  # no query string in errors
    assert client.requests_made == 2


def test_logs_and_errors_never_show_the_key(sandbox, caplog):
    caplog.set_level(logging.DEBUG, logger="novita_notebook")
    with make_client(sandbox, max_retries=1, breaker_threshold=2) as client:
        client.api.clusters()
        sandbox.set_faults(errorRate=1.0)
        for _ in range(3):
            with pytest.raises(NovitaError) as info:
                client.api.clusters()
            assert sandbox.api_key not in str(info.value)
    assert "retrying GET" in caplog.text and "circuit breaker" in caplog.text
    assert sandbox.api_key not in caplog.text


def test_create_read_timeout_is_not_retried_and_says_so(sandbox):
    with make_client(sandbox, max_retries=4, timeout=(2, 0.3)) as client:
        client.cached_products(), client.cached_clusters()
        sandbox.set_faults(latencyMs=800)
        with pytest.raises(TimeoutError) as info:
            create_raw(client, "slow-create")
        assert "may still have reached" in info.value.hint
        sandbox.clear_faults()
        creates = api_requests(sandbox, "/gpu/instance/create", at_least=1)
    assert len(creates) == 1
