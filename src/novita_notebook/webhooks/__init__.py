"""Signed webhooks: ``signature`` (sign, verify), ``payload`` (what is sent), ``notifier`` (the
sender), ``receiver`` (a verifying loopback endpoint) and ``cli`` (``webhook-receiver``).
"""

from __future__ import annotations

from .cli import main
from .notifier import Notifier
from .payload import WebhookEvent, build_payload
from .receiver import EVENT_COLUMNS, Receiver
from .signature import (
    DEFAULT_TOLERANCE,
    MAX_BODY,
    MIN_SECRET_LENGTH,
    SIGNATURE_HEADER,
    SIGNATURE_PREFIX,
    TIMESTAMP_HEADER,
    sign,
    verify_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "TIMESTAMP_HEADER",
    "MAX_BODY",
    "DEFAULT_TOLERANCE",
    "MIN_SECRET_LENGTH",
    "EVENT_COLUMNS",
    "sign",
    "verify_signature",
    "build_payload",
    "WebhookEvent",
    "Notifier",
    "Receiver",
    "main",
]
