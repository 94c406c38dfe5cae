"""sign() and verify_signature(): the header format, and every way a webhook can be refused
(forged, tampered, truncated, replayed, future, mismatched, oversized, not a JSON object).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from webhook_helpers import SECRET, make_change

from novita_notebook.errors import NovitaError, ValidationError, WebhookVerificationError
from novita_notebook.webhooks import (
    MAX_BODY,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_payload,
    sign,
    verify_signature,
)


def signed(at: float | None = None, *, secret: str = SECRET, payload: dict | None = None):
    moment = time.time() if at is None else at
    payload = payload if payload is not None else build_payload(make_change(), timestamp=moment)
    body = json.dumps(payload).encode()
    return body, sign(body, secret, moment)


def rejection(body: bytes, headers: dict, **kwargs) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(body, headers, SECRET, **kwargs)
    error = caught.value
    assert isinstance(error, NovitaError)  # one `except NovitaError` catches every refusal
    assert SECRET not in str(error) and SECRET not in repr(error)
    return error


def test_sign_matches_the_predecessor_scheme():
    body = b'{"a":1}'
    headers = sign(body, SECRET, 1_700_000_000.7)
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers == {SIGNATURE_HEADER: "sha256=" + expected, TIMESTAMP_HEADER: "1700000000"}


def test_a_valid_event_round_trips_and_header_lookup_ignores_case():
    body, headers = signed()
    payload = verify_signature(body, {k.upper(): v for k, v in headers.items()}, SECRET)
    assert payload["instanceId"] == "inst-42"
    assert payload["event"] == "instance.running"


def test_forged_signature_is_rejected():
    body, headers = signed(secret="an-attackers-own-secret-value")
    error = rejection(body, headers)
    assert (error.reason, error.status) == ("bad_signature", 401)


def test_tampered_body_is_rejected():
    body, headers = signed()
    error = rejection(body.replace(b"demo-1", b"evil-1"), headers)
    assert error.reason == "bad_signature"


@pytest.mark.parametrize("keep", [0, 1, 10, -5])
def test_truncated_body_is_rejected(keep):
    body, headers = signed()
    assert rejection(body[:keep], headers).reason == "bad_signature"


@pytest.mark.parametrize(
    "signature, reason",
    [
        ("", "missing_signature"),
        ("md5=abc", "malformed_signature"),
        ("sha256=", "malformed_signature"),
        ("sha1=" + "0" * 40, "malformed_signature"),
        ("0" * 64, "malformed_signature"),
        ("sha256=" + "0" * 63, "malformed_signature"),
        ("sha256=xyz", "malformed_signature"),
        ("sha256=" + "g" * 64, "malformed_signature"),
        ("sha256=" + "a" * 66, "malformed_signature"),
        ("sha256=" + "a" * 64, "bad_signature"),
    ],
)
def test_missing_malformed_or_guessed_signatures_are_rejected(signature, reason):
    body, headers = signed()
    headers[SIGNATURE_HEADER] = signature
    assert rejection(body, headers).reason == reason


def test_uppercase_hex_signature_is_accepted():
    body, headers = signed()
    headers[SIGNATURE_HEADER] = "sha256=" + headers[SIGNATURE_HEADER][7:].upper()
    assert verify_signature(body, headers, SECRET)["name"] == "demo-1"


def test_replayed_old_event_is_rejected_and_tolerance_is_honoured():
    body, headers = signed(at=time.time() - 400)
    assert rejection(body, headers).reason == "replay"
    assert verify_signature(body, headers, SECRET, tolerance=600)["status"] == "running"


def test_now_parameter_sets_the_clock():
    body, headers = signed(at=1_700_000_000)
    assert verify_signature(body, headers, SECRET, now=1_700_000_100)["id"]
    assert rejection(body, headers, now=1_700_000_301).reason == "replay"
    assert rejection(body, headers, now=1_699_999_600).reason == "future"


def test_event_from_the_future_is_rejected():
    body, headers = signed(at=time.time() + 3600)
    assert rejection(body, headers).reason == "future"


def test_header_timestamp_must_agree_with_the_signed_payload():
    body, headers = signed(at=time.time() - 3600)
    headers[TIMESTAMP_HEADER] = str(int(time.time()))  # a fresh header on an old body
    assert rejection(body, headers).reason == "timestamp_mismatch"


@pytest.mark.parametrize(
    "value, reason", [(None, "missing_timestamp"), ("soon", "malformed_timestamp")]
)
def test_missing_or_malformed_timestamp_header_is_rejected(value, reason):
    body, headers = signed()
    if value is None:
        del headers[TIMESTAMP_HEADER]
    else:
        headers[TIMESTAMP_HEADER] = value
    assert rejection(body, headers).reason == reason


def test_payload_without_a_timestamp_is_rejected():
    payload = build_payload(make_change())
    del payload["timestamp"]
    body, headers = signed(payload=payload)
    assert rejection(body, headers).reason == "malformed_timestamp"


def test_oversized_body_is_rejected_with_413():
    body = b'{"x":"' + b"a" * 2000 + b'"}'
    error = rejection(body, sign(body, SECRET), max_body=1000)
    assert (error.reason, error.status) == ("too_large", 413)
    huge = b"{" + b" " * (MAX_BODY + 1) + b"}"  # the default limit
    assert rejection(huge, sign(huge, SECRET)).status == 413


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b"42", b"\xff\xfe\x00"])
def test_signed_bodies_that_are_not_json_objects_are_rejected_with_400(body):
    error = rejection(body, sign(body, SECRET))
    assert (error.reason, error.status) == ("bad_json", 400)


@pytest.mark.parametrize("secret", [None, "", "short"])
def test_a_missing_or_weak_secret_is_a_validation_error(secret):
    body, headers = signed()
    with pytest.raises(ValidationError) as caught:
        verify_signature(body, headers, secret)
    assert caught.value.field == "secret"
    with pytest.raises(ValidationError):
        sign(body, secret)


def test_body_must_be_bytes():
    _, headers = signed()
    with pytest.raises(ValidationError) as caught:
        verify_signature("text", headers, SECRET)
    assert caught.value.field == "body"
