"""How a webhook is signed and verified: HMAC-SHA256 over the raw body, a timestamp header
that must agree with the payload's own timestamp, constant-time comparison, a replay window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from ..config import MIN_WEBHOOK_SECRET_LENGTH
from ..errors import ValidationError, WebhookVerificationError
from ..models import parse_time

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SIGNATURE_PREFIX",
    "MAX_BODY",
    "DEFAULT_TOLERANCE",
    "MIN_SECRET_LENGTH",
    "require_secret",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_PREFIX = "sha256="
MAX_BODY = 1_048_576
DEFAULT_TOLERANCE = 300
# Header and payload timestamps come from the same clock reading, but the header is whole seconds.
TIMESTAMP_AGREEMENT_SECONDS = 2
# One rule for the whole package (the config enforces the same minimum).
MIN_SECRET_LENGTH = MIN_WEBHOOK_SECRET_LENGTH
_HEX = frozenset("0123456789abcdef")


def require_secret(secret: Any, field: str = "secret") -> str:
    """The secret as text; missing, non-text or too short secrets are a ValidationError."""
    if hasattr(secret, "get_secret_value"):  # a SecretStr-like wrapper from the config
        secret = secret.get_secret_value()
    if not isinstance(secret, str) or not secret:
        raise ValidationError(
            "a webhook secret is required (pass secret=... or set WEBHOOK_SECRET)", field=field
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(
            f"the webhook secret must be at least {MIN_SECRET_LENGTH} characters long",
            field=field,
        )
    return secret


def _hex_digest(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: float | int | None = None) -> dict[str, str]:
    """Headers authenticating ``body``: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret,
    body)>`` and ``X-Webhook-Timestamp: <unix seconds>``.

    The timestamp itself is protected because the payload carries the same instant and the
    receiver requires both to agree.
    """
    if not isinstance(body, bytes | bytearray):
        raise ValidationError("the body to sign must be bytes", field="body")
    secret = require_secret(secret)
    seconds = int(time.time() if timestamp is None else timestamp)
    return {
        SIGNATURE_HEADER: SIGNATURE_PREFIX + _hex_digest(secret, bytes(body)),
        TIMESTAMP_HEADER: str(seconds),
    }


def _reject(message: str, reason: str, status: int) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason=reason, status=status)


def _lower_headers(headers: Mapping[str, str] | Any) -> dict[str, str]:
    """Case-insensitive view of a header mapping (dicts, requests' or http.server's headers)."""
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(key).lower(): str(value) for key, value in items}


def _check_signature(body: bytes, lowered: dict[str, str], secret: str) -> None:
    given = lowered.get(SIGNATURE_HEADER.lower())
    if not given:
        raise _reject(f"missing {SIGNATURE_HEADER} header", "missing_signature", 401)
    given = given.strip()
    digest = given[len(SIGNATURE_PREFIX) :].lower()
    if not given.startswith(SIGNATURE_PREFIX) or len(digest) != 64 or not set(digest) <= _HEX:
        raise _reject(
            f"{SIGNATURE_HEADER} must look like 'sha256=<64 hex digits>'",
            "malformed_signature",
            401,
        )
    expected = _hex_digest(secret, body)
    if not hmac.compare_digest(expected.encode("ascii"), digest.encode("ascii")):
        raise _reject("webhook signature does not match the body", "bad_signature", 401)


def _header_time(lowered: dict[str, str]) -> float:
    raw_stamp = lowered.get(TIMESTAMP_HEADER.lower())
    if raw_stamp is None or not raw_stamp.strip():
        raise _reject(f"missing {TIMESTAMP_HEADER} header", "missing_timestamp", 401)
    try:
        header_time = float(raw_stamp.strip())
    except ValueError:
        header_time = float("nan")
    if header_time != header_time or header_time in (float("inf"), float("-inf")):
        raise _reject(f"{TIMESTAMP_HEADER} must be unix seconds", "malformed_timestamp", 401)
    return header_time


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _reject("webhook body is not valid UTF-8 JSON", "bad_json", 400) from None
    if not isinstance(payload, dict):
        raise _reject("webhook body must be a JSON object", "bad_json", 400)
    return payload


def _check_times(header_time: float, payload: dict[str, Any], tolerance: float, now: float) -> None:
    payload_time = parse_time(payload.get("timestamp"))
    if payload_time is None:
        raise _reject(
            "webhook payload has no valid 'timestamp' (ISO 8601)", "malformed_timestamp", 401
        )
    if abs(payload_time.timestamp() - header_time) > TIMESTAMP_AGREEMENT_SECONDS:
        raise _reject(
            f"payload 'timestamp' and {TIMESTAMP_HEADER} disagree", "timestamp_mismatch", 401
        )
    for stamp in (header_time, payload_time.timestamp()):
        if now - stamp > tolerance:
            raise _reject(f"webhook is older than {tolerance:g} s (possible replay)", "replay", 401)
        if stamp - now > tolerance:
            raise _reject(
                f"webhook timestamp is more than {tolerance:g} s in the future", "future", 401
            )


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
    *,
    max_body: int = MAX_BODY,
) -> dict[str, Any]:
    """Check a received webhook and return its parsed payload.

    Raises ``WebhookVerificationError`` (``reason`` and ``status`` set: 413 oversized, 401
    signature or timestamp problems, 400 bodies that are not a JSON object). Signatures are
    compared in constant time; events older than ``tolerance`` seconds, or that far in the
    future, are rejected as replays. The secret never appears in a message.
    """
    secret = require_secret(secret)
    if not isinstance(body, bytes | bytearray):
        raise ValidationError("the webhook body must be the raw bytes received", field="body")
    if tolerance is None or tolerance <= 0:
        raise ValidationError("tolerance must be a positive number of seconds", field="tolerance")
    if len(body) > max_body:
        raise _reject(f"webhook body is larger than {max_body} bytes", "too_large", 413)
    body = bytes(body)
    lowered = _lower_headers(headers)
    _check_signature(body, lowered, secret)
    header_time = _header_time(lowered)
    payload = _parse_object(body)
    _check_times(header_time, payload, tolerance, time.time() if now is None else float(now))
    return payload
