"""The sandbox under a hypothesis-generated stream of malformed requests (random methods,
paths, headers, bodies, broken JSON, wrong types): never a 500, never a dropped answer.
"""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from malformed_http import (
    API_PREFIX,
    RawRequest,
    bodies,
    raw_requests,
    send_raw,
    wrong_typed_objects,
)

from novita_notebook.sandbox import Sandbox

#: Methods outside HTTP's standard set may be answered 501 Not Implemented (RFC 9110 §15.6.2).
NONSTANDARD_METHODS = ("TRACE", "BREW", "PROPFIND")


@pytest.fixture(scope="module")
def fuzzed_sandbox():
    with Sandbox(speed=300, seed=11) as server:
        yield server


def _assert_answered_sanely(server: Sandbox, request: RawRequest) -> None:
    status, response = send_raw(server.host, server.port, request)
    what = f"{request.method} {request.path} body={request.body[:80]!r}"
    assert status != 0, f"no HTTP answer to {what}"
    if request.method in NONSTANDARD_METHODS and status == 501:
        return
    assert status < 500, f"{status} for {what}: {response[:300]!r}"
    if request.path.startswith(API_PREFIX) and status >= 400:
        # errors in the Novita namespace use the documented envelope
        body = response.split(b"\r\n\r\n", 1)[-1]
        if body:
            envelope = json.loads(body)
            assert {"code", "reason", "message"} <= envelope.keys(), envelope


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_malformed_requests_never_get_a_500(fuzzed_sandbox, data):
    request = data.draw(raw_requests(fuzzed_sandbox.api_key))
    if data.draw(st.integers(0, 9)) == 0:
        request.method = data.draw(st.sampled_from(NONSTANDARD_METHODS))
    _assert_answered_sanely(fuzzed_sandbox, request)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(("/_sandbox/stock", "/_sandbox/faults", "/_sandbox/requests")),
    method=st.sampled_from(("POST", "PUT", "PATCH")),
    body=st.one_of(
        bodies,
        wrong_typed_objects.map(lambda obj: json.dumps(obj).encode()),
        st.fixed_dictionaries(
            {"stock": st.one_of(st.text(max_size=5), st.floats(), st.booleans(), st.none())}
        ).map(lambda obj: json.dumps(obj).encode()),
        st.fixed_dictionaries(
            {"errorRate": st.one_of(st.text(max_size=5), st.integers(2, 99), st.booleans())}
        ).map(lambda obj: json.dumps(obj).encode()),
    ),
)
def test_control_endpoints_refuse_malformed_bodies_without_a_500(
    fuzzed_sandbox, path, method, body
):
    request = RawRequest(method, path, [("Content-Type", "application/json")], body)
    _assert_answered_sanely(fuzzed_sandbox, request)
    # Whatever got through, no fault may be left switched on for the next example.
    fuzzed_sandbox.clear_faults()


def test_sandbox_still_serves_after_the_stream(fuzzed_sandbox):
    fuzzed_sandbox.clear_faults()
    response = requests.get(
        f"{fuzzed_sandbox.api_url}/clusters",
        headers={"Authorization": f"Bearer {fuzzed_sandbox.api_key}"},
        timeout=5,
    )
    assert response.status_code == 200 and response.json()["data"]
    statuses = [entry["status"] for entry in fuzzed_sandbox.requests()]
    assert statuses and 500 not in statuses
