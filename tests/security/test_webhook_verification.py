"""Webhook verification: valid events pass; forged, tampered, truncated, replayed and oversized
ones are refused, by verify_signature and by a live Receiver over real HTTP.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import requests
from secret_scan import WEBHOOK_SECRET

from novita_notebook.errors import NovitaError, WebhookVerificationError
from novita_notebook.models import StatusChange
from novita_notebook.webhooks import (
    MAX_BODY,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Notifier,
    Receiver,
    build_payload,
    sign,
    verify_signature,
)


def _change(status: str = "running") -> StatusChange:
    return StatusChange("inst-1", "demo-1", "pulling", status, datetime.now(UTC))


def _signed(payload: dict | None = None, *, secret: str = WEBHOOK_SECRET, at: float | None = None):
    moment = time.time() if at is None else at
    payload = payload or build_payload(_change(), timestamp=moment)
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body, sign(body, secret, timestamp=moment)


def test_a_valid_event_is_accepted_and_parsed():
    body, headers = _signed()
    payload = verify_signature(body, headers, WEBHOOK_SECRET)
    assert payload["instanceId"] == "inst-1" and payload["status"] == "running"


def test_header_names_are_case_insensitive():
    body, headers = _signed()
    lowered = {key.lower(): value for key, value in headers.items()}
    assert verify_signature(body, lowered, WEBHOOK_SECRET)["name"] == "demo-1"


def _rejection(body: bytes, headers: dict, **kwargs) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(body, headers, WEBHOOK_SECRET, **kwargs)
    assert WEBHOOK_SECRET not in str(caught.value)
    return caught.value


def test_forged_signature_with_another_secret_is_rejected():
    body, headers = _signed(secret="an-attackers-guess-at-the-secret")
    assert _rejection(body, headers).reason == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        "sha256=" + "z" * 64,
        "sha256=" + "0" * 63,
        "0" * 64,
    ],
)
def test_malformed_or_guessed_signatures_are_rejected(signature):
    body, headers = _signed()
    headers[SIGNATURE_HEADER] = signature
    error = _rejection(body, headers)
    assert error.status == 401


def test_missing_signature_is_rejected():
    body, headers = _signed()
    del headers[SIGNATURE_HEADER]
    assert _rejection(body, headers).reason == "missing_signature"


def test_tampered_body_is_rejected():
    body, headers = _signed()
    tampered = body.replace(b'"running"', b'"exited"')
    assert tampered != body
    assert _rejection(tampered, headers).reason == "bad_signature"


@pytest.mark.parametrize("keep", [0, 1, 10, -1])
def test_truncated_body_is_rejected(keep):
    body, headers = _signed()
    assert _rejection(body[:keep], headers).status in {400, 401}


def test_replayed_old_event_is_rejected():
    an_hour_ago = time.time() - 3600
    body, headers = _signed(at=an_hour_ago)
    assert _rejection(body, headers).reason == "replay"


def test_event_from_the_future_is_rejected():
    body, headers = _signed(at=time.time() + 3600)
    assert _rejection(body, headers).reason == "future"


def test_resigned_header_timestamp_without_the_payload_is_rejected():
    # An attacker can resend an old body with a fresh header only if the timestamp is unsigned;
    # here the payload carries the signed instant, so the two disagree.
    old = time.time() - 3600
    body, headers = _signed(at=old)
    headers[TIMESTAMP_HEADER] = str(int(time.time()))
    assert _rejection(body, headers).status == 401


def test_oversized_body_is_rejected_before_parsing():
    huge = b"{" + b" " * (MAX_BODY + 1) + b"}"
    headers = sign(huge, WEBHOOK_SECRET)
    error = _rejection(huge, headers)
    assert error.status == 413


@pytest.mark.parametrize("body", [b"[1,2,3]", b"\xff\xfe", b"not json", b'"a string"'])
def test_signed_bodies_that_are_not_json_objects_are_rejected(body):
    headers = sign(body, WEBHOOK_SECRET)
    assert _rejection(body, headers).status in {400, 401}


def test_every_rejection_is_a_novita_error():
    assert issubclass(WebhookVerificationError, NovitaError)


# -- over real HTTP ----------------------------------------------------------------------------


@pytest.fixture
def receiver():
    with Receiver(WEBHOOK_SECRET) as server:
        yield server


def _post(receiver: Receiver, body: bytes, headers: dict) -> requests.Response:
    return requests.post(
        receiver.url,
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )


def test_receiver_accepts_a_valid_event_once_and_flags_the_replay(receiver):
    body, headers = _signed()
    first = _post(receiver, body, headers)
    again = _post(receiver, body, headers)
    assert first.status_code == 200 and first.json().get("duplicate") is not True
    assert again.status_code == 200 and again.json().get("duplicate") is True
    assert len(receiver.events) == 1


@pytest.mark.parametrize(
    "attack, expected",
    [
        ("forged", 401),
        ("tampered", 401),
        ("truncated", 400),
        ("replayed", 401),
        ("unsigned", 401),
    ],
)
def test_receiver_refuses_attacks_and_records_nothing(receiver, attack, expected):
    if attack == "forged":
        body, headers = _signed(secret="not-the-receivers-secret")
    elif attack == "tampered":
        body, headers = _signed()
        body = body.replace(b"demo-1", b"evil-1")
    elif attack == "truncated":
        body, headers = _signed()
        body = body[: len(body) // 2]
    elif attack == "replayed":
        body, headers = _signed(at=time.time() - 3600)
    else:
        body, headers = _signed()
        headers = {}
    response = _post(receiver, body, headers)
    # a truncated body fails the signature (401) or the JSON parse (400): both refuse it
    assert response.status_code == expected or (
        attack == "truncated" and response.status_code == 401
    )
    assert len(receiver.events) == 0
    assert WEBHOOK_SECRET not in response.text


def test_receiver_refuses_an_oversized_body_without_reading_it(receiver):
    huge = b"x" * (MAX_BODY + 10)
    headers = sign(huge, WEBHOOK_SECRET)
    try:
        response = _post(receiver, huge, headers)
    except requests.ConnectionError:
        # answering 413 and closing before the body is read may reset the sender's upload
        pass
    else:
        assert response.status_code == 413
    assert len(receiver.events) == 0
    assert requests.get(receiver.url.replace("/webhook", "/health"), timeout=5).status_code == 200


def test_notifier_to_receiver_round_trip_is_verified(receiver):
    with Notifier(receiver.url, WEBHOOK_SECRET, max_attempts=1) as notifier:
        assert notifier.send(_change("running")) is True
    payload = receiver.queue.get(timeout=5)
    assert payload["status"] == "running" and payload["instanceId"] == "inst-1"


def test_notifier_signed_with_a_different_secret_is_refused(receiver):
    with Notifier(receiver.url, "a-completely-different-secret", max_attempts=1) as notifier:
        assert notifier.send(_change("running")) is False
        assert notifier.failures and notifier.failures[0]["status"] == 401
    assert len(receiver.events) == 0
