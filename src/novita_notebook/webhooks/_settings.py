"""Checks for the settings Notifier and Receiver accept (URLs, positive numbers) and the
redacted form of a URL that logs and reprs show.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ValidationError


def redact_url(url: str) -> str:
    """The URL without userinfo or query string (they may carry tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def validate_url(url: Any) -> str:
    """An absolute http(s) URL, stripped; anything else is a ValidationError on ``url``."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(
            "a webhook URL is required (pass url=... or set WEBHOOK_URL)", field="url"
        )
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError(
            "the webhook URL must be an absolute http:// or https:// URL", field="url"
        )
    return url


def positive(value: Any, field: str, *, integer: bool = False) -> Any:
    """``value`` unchanged when it is a positive number (an int with ``integer``)."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValidationError(f"{field} must be {what}", field=field)
    return value
