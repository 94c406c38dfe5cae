"""The webhook receiver under a hypothesis-generated stream of malformed requests: every one
gets an HTTP answer below 500, nothing bogus is accepted, and the receiver keeps serving.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from malformed_http import RawRequest, bodies, header_names, header_values, json_values, send_raw
from secret_scan import WEBHOOK_SECRET

from novita_notebook.webhooks import Receiver, sign

RECEIVER_PATHS = ("/webhook", "/health", "/", "/webhook/", "/webhook?x=1", "/%2e%2e/etc", "/nope")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW")


@pytest.fixture(scope="module")
def receiver():
    with Receiver(WEBHOOK_SECRET) as server:
        yield server


@st.composite
def receiver_requests(draw: st.DrawFn) -> RawRequest:
    body = draw(bodies)
    headers: list[tuple[str, str]] = []
    signing = draw(st.sampled_from(("none", "valid", "stale", "garbage", "wrong-secret")))
    if signing == "valid":
        headers += list(sign(body, WEBHOOK_SECRET).items())
    elif signing == "stale":
        headers += list(sign(body, WEBHOOK_SECRET, timestamp=time.time() - 10_000).items())
    elif signing == "wrong-secret":
        headers += list(sign(body, "someone-elses-secret").items())
    elif signing == "garbage":
        headers += [
            ("X-Webhook-Signature", draw(header_values)),
            ("X-Webhook-Timestamp", draw(header_values)),
        ]
    headers += draw(st.lists(st.tuples(header_names, header_values), max_size=3))
    return RawRequest(
        draw(st.sampled_from(METHODS)), draw(st.sampled_from(RECEIVER_PATHS)), headers, body
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=receiver_requests())
def test_malformed_requests_never_get_a_500_or_an_accepted_event(receiver, request):
    status, response = send_raw(receiver.host, receiver.port, request)
    assert status != 0, f"no HTTP answer to {request.method} {request.path}"
    assert status < 500, f"{status} for {request.method} {request.path}: {response[:200]!r}"
    # A generated body is never a valid event (no matching payload timestamp), so none counts.
    assert len(receiver.events) == 0
    assert WEBHOOK_SECRET.encode() not in response


def test_receiver_still_serves_after_the_stream(receiver):
    assert requests.get(f"http://{receiver.host}:{receiver.port}/health", timeout=5).ok


@pytest.fixture(scope="module")
def event_receiver():
    with Receiver(WEBHOOK_SECRET) as server:
        yield server


@st.composite
def signed_events_with_odd_fields(draw: st.DrawFn) -> RawRequest:
    """Correctly signed, fresh events whose other fields hold any JSON type."""
    now = time.time()
    payload = {
        "timestamp": datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z"),
        **{
            key: draw(json_values)
            for key in draw(
                st.lists(
                    st.sampled_from(
                        (
                            "id",
                            "event",
                            "instanceId",
                            "name",
                            "status",
                            "previousStatus",
                            "instance",
                        )
                    ),
                    unique=True,
                )
            )
        },
    }
    body = json.dumps(payload).encode()
    headers = list(sign(body, WEBHOOK_SECRET, timestamp=now).items())
    return RawRequest("POST", "/webhook", headers, body)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=signed_events_with_odd_fields())
def test_verified_events_with_odd_field_types_never_break_the_receiver(event_receiver, request):
    before = len(event_receiver.events)
    status, response = send_raw(event_receiver.host, event_receiver.port, request)
    assert status in {200, 400, 401}, f"{status}: {response[:300]!r}"
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    accepted = status == 200 and not body.get("duplicate")
    # the accepted-events table still builds, whatever types the fields had
    assert len(event_receiver.events) == before + (1 if accepted else 0)
