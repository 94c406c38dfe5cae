"""The client's settings, declared once: the ``Novita(...)`` keywords, their environment
variables (also read from a .env file), the ``%config NovitaMagics`` traits of the ones a session
may change, and their rules. config.py loads and holds them; nothing else declares them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..validation import PER_HOUR, invalid
from . import kinds
from .schema import Family, Kind, Option

__all__ = [
    "CLIENT",
    "DEFAULT_API_URL",
    "API_PREFIX",
    "MIN_WEBHOOK_SECRET_LENGTH",
    "is_loopback_host",
    "safe_url_text",
]

DEFAULT_API_URL = "https://api.novita.ai"
API_PREFIX = "/gpu-instance/openapi/v1"
MIN_WEBHOOK_SECRET_LENGTH = 16


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (where plain http is acceptable)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url_text(value: str) -> str:
    """The URL as it may be shown in an error: any user:password@ part removed."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return "<unparseable>"
    if "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return value


def _url_problem(value: str) -> tuple[str | None, Any]:
    """(problem or None, split URL) for an absolute http(s) URL."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a junk port
    except ValueError:
        return "is not a valid URL", None
    del port
    if parts.scheme not in ("http", "https"):
        return "must start with https:// (or http:// for a loopback host)", parts
    if not parts.hostname:
        return "has no host name", parts
    if parts.username or parts.password:
        return "must not contain credentials (user:password@)", parts
    if parts.query or parts.fragment:
        return "must not contain a query string or fragment", parts
    return None, parts


def _api_key(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise invalid(field, f"must be a string, got {type(value).__name__}")
    key = value.strip()
    if not key:
        raise invalid(field, "must not be empty")
    # A key with whitespace or control characters would corrupt the Authorization header.
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise invalid(field, "must not contain spaces, newlines or control characters")
    # Nor can a header carry other characters (a zero-width space pasted with the key, say):
    # the HTTP library's error would then quote the header. The key itself is never echoed.
    if not key.isascii():
        raise invalid(
            field,
            "must contain only printable ASCII characters; it holds a character that cannot "
            "go in an HTTP header (often an invisible one pasted along with the key, such as "
            "a zero-width space): copy the key again",
        )
    return key


def _api_url(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise invalid(field, f"must be a string, got {type(value).__name__}")
    raw = value.strip() or DEFAULT_API_URL
    problem, parts = _url_problem(raw)
    if problem:
        raise invalid(field, f"{safe_url_text(raw)!r} {problem}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise invalid(
            field,
            f"{raw!r} uses plain http:// for a non-loopback host; the API key would travel "
            "unencrypted. Use https:// (http is allowed only for localhost/127.0.0.0/8/::1)",
        )
    url = raw.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def _webhook_url(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise invalid(field, f"must be a string, got {type(value).__name__}")
    problem, _parts = _url_problem(value.strip())
    if problem:
        raise invalid(field, f"{safe_url_text(value)!r} {problem}")
    return value.strip()


def _webhook_secret(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise invalid(field, f"must be a string, got {type(value).__name__}")
    if len(value) < MIN_WEBHOOK_SECRET_LENGTH:
        # Never echo the secret, not even its length-revealing prefix.
        raise invalid(
            field, f"too short: at least {MIN_WEBHOOK_SECRET_LENGTH} characters are required"
        )
    return value


def _timeout(value: Any, field: str) -> tuple[float, float]:
    """Seconds for both, or a (connect, read) pair; each a positive duration."""
    pair = value if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2:
        raise invalid(field, f"must be seconds or a (connect, read) pair, got {value!r}")
    cleaned = []
    for label, item in zip(("connect", "read"), pair, strict=True):
        try:
            cleaned.append(kinds.DURATION.parse(item, field))
        except Exception:  # noqa: BLE001 - reworded with the part that is wrong
            raise invalid(
                field, f"{label} timeout must be a positive number of seconds, got {item!r}"
            ) from None
    return (cleaned[0], cleaned[1])


def _timeout_text(value: Any) -> Any:
    if isinstance(value, str) and "," in value:
        return tuple(kinds.DURATION.from_text(part.strip()) for part in value.split(",", 1))
    return value


def _env_file(value: Any, field: str) -> Path | bool:
    if isinstance(value, bool):
        return value
    if not isinstance(value, str | os.PathLike):
        raise invalid(field, f"must be a path, True or False, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_file():
        raise invalid(field, f"file not found: {str(path)!r}")
    return path


def _secret(check: Any) -> Kind:
    return Kind("secret", check, metavar="SECRET")


def _count(low: int, high: int) -> Kind:
    return kinds.size(low, high)


CLIENT = Family(
    "client",
    "Client settings: Novita(...), the environment and %config NovitaMagics",
    (
        Option(
            "api_key",
            _secret(_api_key),
            "your Novita API key (only ever shown masked)",
            env="NOVITA_API_KEY",
            secret=True,
        ),
        Option(
            "api_url",
            Kind("url", _api_url, metavar="URL", example=DEFAULT_API_URL),
            "the API's base URL (https://, or http:// for loopback only)",
            default=DEFAULT_API_URL,
            env="NOVITA_API_URL",
        ),
        Option(
            "webhook_url",
            Kind("url", _webhook_url, metavar="URL", example="https://hooks.example/novita"),
            "where Notifier.from_client() posts signed status changes",
            env="WEBHOOK_URL",
        ),
        Option(
            "webhook_secret",
            _secret(_webhook_secret),
            "the webhooks' signing secret, at least 16 characters",
            env="WEBHOOK_SECRET",
            secret=True,
        ),
        Option(
            "spend_limit_per_hour",
            kinds.money(PER_HOUR, "5"),
            "refuse a create that would raise the hourly spend of live instances above this",
            deprecated=("budget_per_hour",),
            env="NOVITA_SPEND_LIMIT_PER_HOUR",
            deprecated_env=("NOVITA_BUDGET_PER_HOUR",),
            trait="spend_limit_per_hour",
            deprecated_trait="budget_per_hour",
            live=True,
        ),
        Option(
            "default_region",
            kinds.REGION,
            "the region create tries first when none is given",
            env="NOVITA_DEFAULT_REGION",
            trait="default_region",
            live=True,
        ),
        Option(
            "poll_interval",
            kinds.DURATION,
            "a fixed pace for watch() and wait() (default: adaptive waits, 5-s watchers)",
            env="NOVITA_POLL_INTERVAL",
            trait="poll_interval",
            live=True,
        ),
        Option(
            "max_concurrency", _count(1, 256), "connections and batch workers at once", default=8
        ),
        Option(
            "timeout",
            Kind("timeout", _timeout, _timeout_text, metavar="CONNECT,READ", example="5,30"),
            "HTTP timeouts in seconds: one for both, or (connect, read)",
            default=(5.0, 30.0),
        ),
        Option("max_retries", _count(0, 20), "retries of a safe call after a transient error", 4),
        Option(
            "cache_ttl",
            kinds.DURATION_OR_ZERO,
            "how long product, cluster and template listings are kept (0: never)",
            default=300.0,
        ),
        Option(
            "rate_limit_per_second",
            kinds.number("must be a positive number of requests per second", example="5"),
            "a cap on this client's requests per second, shared by its threads",
        ),
        Option(
            "env_file",
            Kind("path", _env_file, metavar="PATH", example=".env"),
            "the .env file to read (default ./.env when present; False: none)",
        ),
        Option(
            "retry_backoff",
            kinds.DURATION_OR_ZERO,
            "the first retry's delay bound (doubling, full jitter)",
            default=0.5,
        ),
        Option("retry_backoff_max", kinds.DURATION, "the longest retry delay", default=60.0),
        Option(
            "breaker_threshold",
            _count(1, 1000),
            "failures in a row that open the circuit breaker",
            default=5,
        ),
        Option(
            "breaker_reset_timeout",
            kinds.DURATION,
            "how long an open breaker refuses calls before trying one",
            default=30.0,
        ),
    ),
)
