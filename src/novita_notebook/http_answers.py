"""How the transport reads what came back: the error map (HTTP answer → errors.py),
``Retry-After`` parsing, and short reasons for connection failures (without URLs).
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Callable
from typing import Any

import requests
import urllib3

from . import errors

__all__ = ["error_from_response", "parse_retry_after", "never_connected", "network_reason"]

# Novita reasons (all HTTP 400 on the real API) that mean "the resource is in the wrong state".
_STATE_REASONS = frozenset(
    {
        "CLUSTER_STATUS",
        "NODE_STATUS",
        "DEPENDENT_RESOURCE_STATE",
        "INVALID_STATE",
        "INSTANCE_STATUS",
        "PREPAID_INSTANCE_NOT_SUPPORT_RELEASE",
        "CREATING_INSTANCE_NOT_SUPPORT_RENEWAL",
        "OPERATION_LIMIT",
    }
)
_CAPACITY_REASONS = frozenset({"INSUFFICIENT_RESOURCE", "MIGRATE_INSUFFICIENT_RESOURCE"})
SECRET_BODY_KEYS = frozenset({"password", "imageAuth", "sshPassword"})
_REASON_HINTS = {
    "BALANCE_NOT_ENOUGH": "Top up the Novita account balance, then try again.",
    "EXPIRED_OR_BALANCE_NOT_ENOUGH": "Top up the Novita account balance, then try again.",
    "CREATE_INSTANCE_LIMIT": "Recharge or delete other instances (Novita.mine(), cleanup()).",
    "CONFLICT": "Something with that name or id already exists or changed meanwhile.",
    "IMAGE_AUTH_IN_USE": "Delete or change the templates/instances using this registry auth.",
    "TEMPLATE_IS_PRIVATE": "The template belongs to another account; use one of yours.",
    "UNSUPPORTED_BILLING_MODE": "Pick a billing method the product lists (Novita.products()).",
    "WALLET_NOT_FOUND": (
        "Novita found no wallet for the account (a server refusal, HTTP 500, not a missing "
        "instance): nothing was changed. Check the account's billing in the Novita console."
    ),
    "INVALID_USER_TOKEN": "Check NOVITA_API_KEY (or pass api_key=...): Novita refused the key.",
}
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*):\s")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: ``"7"``, ``"1.5"`` or an HTTP date; junk → None."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _envelope(response: requests.Response) -> dict[str, Any]:
    """The error envelope ``{code, reason, message, metadata}`` or a stand-in from the text."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    text = (response.text or "").strip()
    return {"message": text[:200] if text else (response.reason or "")}


def error_from_response(
    response: requests.Response,
    method: str,
    path: str,
    *,
    scrub: Callable[[str], str] = lambda s: s,
) -> errors.NovitaError:
    """Map an HTTP error response to the error tree from the status and the envelope's reason
    read together: a refused key is an AuthenticationError whatever its status (401, or the
    documented 400 ``INVALID_USER_TOKEN``); a 5xx is a server error whatever its reason (a
    500 ``WALLET_NOT_FOUND`` is never "not found", and is not retried)."""
    status = response.status_code
    envelope = _envelope(response)
    reason = envelope.get("reason") or None
    reason = str(reason) if reason is not None else None
    message = scrub(str(envelope.get("message") or envelope.get("error") or response.reason or ""))
    if not message:
        message = f"HTTP {status}"
    metadata = envelope.get("metadata") if isinstance(envelope.get("metadata"), dict) else {}
    common: dict[str, Any] = {"status": status, "reason": reason, "method": method, "path": path}
    lowered = message.lower()

    if errors.key_rejected(status, reason):
        hint = _REASON_HINTS.get(reason or "")
        return errors.AuthenticationError(message, hint=hint, **common)
    if status == 429 or reason in ("RATE_LIMIT_EXCEEDED", "SEND_CODE_TOO_FAST"):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return errors.RateLimitError(message, retry_after=retry_after, **common)
    if status >= 500:
        if reason in errors.PERMANENT_SERVER_REASONS:
            return errors.APIError(message, hint=_REASON_HINTS.get(reason or ""), **common)
        return errors.ServerError(
            message,
            hint="The Novita API had a server error; idempotent calls were already retried.",
            **common,
        )
    if errors.means_not_found(status, reason):
        return errors.NotFoundError(
            message, hint="Check the id or name (client.instances() lists them).", **common
        )
    if reason == "VALIDATOR_PARAM":
        field = metadata.get("field") if metadata else None
        if not field:  # Novita messages read "productId: is required"
            prefix = _FIELD_PREFIX.match(message)
            field = prefix.group(1) if prefix else None
        return errors.ValidationError(
            message,
            field=str(field) if field else None,
            hint="The API rejected a parameter; see the message for which one.",
            **common,
        )
    if reason in _CAPACITY_REASONS:
        return errors.CapacityError(message, **common)
    if (
        reason in _STATE_REASONS
        or "invalid state" in lowered
        or "state change" in lowered
        or (reason or "").endswith(("_STATE", "_STATUS"))
    ):
        return errors.InvalidStateError(
            message,
            hint="Wait until the instance settles (client.wait(...)) and try again.",
            **common,
        )
    hint = _REASON_HINTS.get(reason or "", "The API refused the call; see its message above.")
    return errors.APIError(message, hint=hint, **common)


def never_connected(exc: BaseException) -> bool:
    """True when the failure happened before a connection existed, so nothing was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    text = repr(exc)
    return isinstance(exc, requests.exceptions.ConnectionError) and (
        "NewConnectionError" in text
        or "Connection refused" in text
        or "NameResolution" in text
        or "Name or service not known" in text
    )


def network_reason(exc: BaseException) -> str:
    """A short human reason for a connection failure, without URLs or query strings."""
    text = repr(exc)
    if "Connection refused" in text or "ECONNREFUSED" in text or "Errno 111" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "without response" in text:
        return "the server closed the connection without a response"
    if "reset by peer" in text or "ConnectionReset" in text or "Errno 104" in text:
        return "connection reset"
    if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
        return "the host name could not be resolved"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError):
        return "the response was cut off"
    return type(exc).__name__
