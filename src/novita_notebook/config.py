"""Client configuration: arguments, then the environment, then a .env file, validated at once.
Every problem is reported in one ConfigError; the API key is only ever shown masked.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["Config", "load_config", "mask_secret", "is_loopback_host", "API_PREFIX"]

DEFAULT_API_URL = "https://api.novita.ai"
API_PREFIX = "/gpu-instance/openapi/v1"
MIN_WEBHOOK_SECRET_LENGTH = 16
#: How much faster than real time an in-process sandbox runs unless told otherwise (by
#: ``Novita.sandbox(speed=...)`` and ``%novita sandbox start``, alike): a create that takes a
#: minute on Novita takes about a second, so a newcomer following the README waits seconds.
SANDBOX_SPEED = 50.0

# Arguments that can also come from the environment or the .env file, with their variable.
_ENV_NAMES = {
    "api_key": "NOVITA_API_KEY",
    "api_url": "NOVITA_API_URL",
    "webhook_url": "WEBHOOK_URL",
    "webhook_secret": "WEBHOOK_SECRET",
    "budget_per_hour": "NOVITA_BUDGET_PER_HOUR",
}


def mask_secret(secret: str | None) -> str | None:
    """``"sk_live_abcdef"`` → ``"sk_l…"``; short secrets show nothing but the ellipsis."""
    if not secret:
        return None
    # Showing four characters of a very short secret would reveal most of it.
    return (secret[:4] if len(secret) >= 8 else "") + "…"


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


@dataclass(frozen=True)
class Config:
    """The effective settings of a client. It never holds the API key, only its mask.

    ``api_url`` includes the ``/gpu-instance/openapi/v1`` prefix. ``sources`` says where each
    setting came from (``argument``, ``environment``, ``.env`` or ``default``).
    """

    api_url: str
    masked_key: str | None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    budget_per_hour: float | None = None
    default_region: str | None = None
    poll_interval: float | None = None
    max_concurrency: int = 8
    timeout: tuple[float, float] = (5.0, 30.0)
    max_retries: int = 4
    cache_ttl: float = 300.0
    rate_limit_per_second: float | None = None
    retry_backoff: float = 0.5
    retry_backoff_max: float = 60.0
    breaker_threshold: int = 5
    breaker_reset_timeout: float = 30.0
    env_file: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def base_url(self) -> str:
        """The API URL without the v1 prefix (``https://api.novita.ai``)."""
        if self.api_url.endswith(API_PREFIX):
            return self.api_url[: -len(API_PREFIX)]
        return self.api_url

    @property
    def masked_webhook_secret(self) -> str | None:
        return mask_secret(self.webhook_secret)

    def to_dict(self) -> dict[str, Any]:
        """Effective settings, secrets masked (safe to print, log or show in a notebook)."""
        return {
            "api_url": self.api_url,
            "api_key": self.masked_key,
            "webhook_url": self.webhook_url,
            "webhook_secret": self.masked_webhook_secret,
            "budget_per_hour": self.budget_per_hour,
            "default_region": self.default_region,
            "poll_interval": self.poll_interval,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "cache_ttl": self.cache_ttl,
            "rate_limit_per_second": self.rate_limit_per_second,
            "retry_backoff": self.retry_backoff,
            "retry_backoff_max": self.retry_backoff_max,
            "breaker_threshold": self.breaker_threshold,
            "breaker_reset_timeout": self.breaker_reset_timeout,
            "env_file": self.env_file,
        }

    def __str__(self) -> str:
        return f"Config(api_url={self.api_url!r}, api_key={self.masked_key!r})"


def load_config(
    api_key: str | None = None,
    api_url: str | None = None,
    *,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    budget_per_hour: float | str | None = None,
    default_region: str | None = None,
    poll_interval: float | None = None,
    max_concurrency: int = 8,
    timeout: float | tuple[float, float] = (5, 30),
    max_retries: int = 4,
    cache_ttl: float = 300,
    rate_limit_per_second: float | None = None,
    retry_backoff: float = 0.5,
    retry_backoff_max: float = 60.0,
    breaker_threshold: int = 5,
    breaker_reset_timeout: float = 30.0,
    env_file: str | os.PathLike[str] | bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, str]:
    """Resolve and validate the settings; return ``(config, api_key)``.

    Precedence: argument, then environment (``environ``, default ``os.environ``), then the
    .env file (``env_file``; default ``.env`` in the working directory if present; ``False``
    skips it). The .env file is read with ``dotenv_values`` and never changes os.environ.
    Raises one ConfigError listing every problem found.
    """
    problems: list[tuple[str, str]] = []
    environ = os.environ if environ is None else environ
    dotenv, env_file_used = _read_env_file(env_file, problems)

    sources: dict[str, str] = {}
    explicit = {
        "api_key": api_key,
        "api_url": api_url,
        "webhook_url": webhook_url,
        "webhook_secret": webhook_secret,
        "budget_per_hour": budget_per_hour,
    }
    resolved: dict[str, Any] = {}
    for name, value in explicit.items():
        variable = _ENV_NAMES[name]
        if value is not None:
            resolved[name], sources[name] = value, "argument"
        elif environ.get(variable):
            resolved[name], sources[name] = environ[variable], "environment"
        elif dotenv.get(variable):
            resolved[name], sources[name] = dotenv[variable], ".env"
        else:
            resolved[name], sources[name] = None, "default"

    key = _check_api_key(resolved["api_key"], problems)
    url = _check_api_url(resolved["api_url"], problems)
    hook_url = _check_webhook_url(resolved["webhook_url"], problems)
    secret = _check_webhook_secret(resolved["webhook_secret"], problems)
    budget = _check_number(
        "budget_per_hour", resolved["budget_per_hour"], problems, minimum=0.0, optional=True
    )
    region = _check_region(default_region, problems)
    poll = _check_number(
        "poll_interval", poll_interval, problems, minimum=0.0, exclusive=True, optional=True
    )
    concurrency = _check_int("max_concurrency", max_concurrency, problems, 1, 256)
    timeouts = _check_timeout(timeout, problems)
    retries = _check_int("max_retries", max_retries, problems, 0, 20)
    ttl = _check_number("cache_ttl", cache_ttl, problems, minimum=0.0)
    rate = _check_number(
        "rate_limit_per_second",
        rate_limit_per_second,
        problems,
        minimum=0.0,
        exclusive=True,
        optional=True,
    )
    backoff = _check_number("retry_backoff", retry_backoff, problems, minimum=0.0)
    backoff_max = _check_number(
        "retry_backoff_max", retry_backoff_max, problems, minimum=0.0, exclusive=True
    )
    threshold = _check_int("breaker_threshold", breaker_threshold, problems, 1, 1000)
    reset = _check_number(
        "breaker_reset_timeout", breaker_reset_timeout, problems, minimum=0.0, exclusive=True
    )

    if problems:
        lines = "\n".join(f"  - {name}: {rule}" for name, rule in problems)
        raise ConfigError(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
            f"{lines}",
            field=problems[0][0],
            problems=problems,
        )
    config = Config(
        api_url=url,
        masked_key=mask_secret(key),
        webhook_url=hook_url,
        webhook_secret=secret,
        budget_per_hour=budget,
        default_region=region,
        poll_interval=poll,
        max_concurrency=concurrency,
        timeout=timeouts,
        max_retries=retries,
        cache_ttl=ttl,
        rate_limit_per_second=rate,
        retry_backoff=backoff,
        retry_backoff_max=backoff_max,
        breaker_threshold=threshold,
        breaker_reset_timeout=reset,
        env_file=env_file_used,
        sources=sources,
    )
    assert key is not None  # problems would have been raised otherwise
    return config, key


# -- sources -------------------------------------------------------------------------------------


def _read_env_file(
    env_file: str | os.PathLike[str] | bool | None, problems: list[tuple[str, str]]
) -> tuple[dict[str, str], str | None]:
    """Values of the .env file (never written into os.environ) and the path used."""
    if env_file is False:
        return {}, None
    if env_file is None or env_file is True:
        path = Path.cwd() / ".env"
        if not path.is_file():
            return {}, None  # the default file is optional
    else:
        path = Path(env_file).expanduser()
        if not path.is_file():
            problems.append(("env_file", f"file not found: {str(path)!r}"))
            return {}, None
    from dotenv import dotenv_values  # imported here: only needed when a file exists

    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(("env_file", f"cannot read {str(path)!r}: {type(exc).__name__}"))
        return {}, None
    return {k: v for k, v in values.items() if v is not None}, str(path)


# -- checks (each appends (field, rule) and returns the cleaned value) ---------------------------


def _check_api_key(value: Any, problems: list[tuple[str, str]]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(
            (
                "api_key",
                "missing: pass api_key=..., set NOVITA_API_KEY or put it in a .env file "
                "(or use Novita.sandbox() offline)",
            )
        )
        return None
    if not isinstance(value, str):
        problems.append(("api_key", f"must be a string, got {type(value).__name__}"))
        return None
    key = value.strip()
    # A key with whitespace or control characters would corrupt the Authorization header.
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
        problems.append(("api_key", "must not contain spaces, newlines or control characters"))
        return None
    # Nor can a header carry other characters (a zero-width space pasted with the key, say):
    # the HTTP library's error would then quote the header. The key itself is never echoed.
    if not key.isascii():
        problems.append(
            (
                "api_key",
                "must contain only printable ASCII characters; it holds a character that "
                "cannot go in an HTTP header (often an invisible one pasted along with the "
                "key, such as a zero-width space): copy the key again",
            )
        )
        return None
    return key


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


def _safe_url_text(value: str) -> str:
    """The URL as it may be shown in an error: any user:password@ part removed."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return "<unparseable>"
    if "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return value


def _check_api_url(value: Any, problems: list[tuple[str, str]]) -> str:
    raw = DEFAULT_API_URL if value is None or value == "" else value
    if not isinstance(raw, str):
        problems.append(("api_url", f"must be a string, got {type(raw).__name__}"))
        return DEFAULT_API_URL + API_PREFIX
    raw = raw.strip()
    problem, parts = _url_problem(raw)
    if problem:
        problems.append(("api_url", f"{_safe_url_text(raw)!r} {problem}"))
        return DEFAULT_API_URL + API_PREFIX
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        problems.append(
            (
                "api_url",
                f"{raw!r} uses plain http:// for a non-loopback host; the API key would travel "
                "unencrypted. Use https:// (http is allowed only for localhost/127.0.0.0/8/::1)",
            )
        )
    url = raw.rstrip("/")
    if not url.endswith(API_PREFIX):
        url += API_PREFIX
    return url


def _check_webhook_url(value: Any, problems: list[tuple[str, str]]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(("webhook_url", f"must be a string, got {type(value).__name__}"))
        return None
    problem, _parts = _url_problem(value.strip())
    if problem:
        problems.append(("webhook_url", f"{_safe_url_text(value)!r} {problem}"))
        return None
    return value.strip()


def _check_webhook_secret(value: Any, problems: list[tuple[str, str]]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(("webhook_secret", f"must be a string, got {type(value).__name__}"))
        return None
    if len(value) < MIN_WEBHOOK_SECRET_LENGTH:
        # Never echo the secret, not even its length-revealing prefix.
        problems.append(
            (
                "webhook_secret",
                f"too short: at least {MIN_WEBHOOK_SECRET_LENGTH} characters are required",
            )
        )
        return None
    return value


def _check_region(value: Any, problems: list[tuple[str, str]]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(("default_region", "must be a non-empty region name or id"))
        return None
    return value.strip()


def _check_number(
    name: str,
    value: Any,
    problems: list[tuple[str, str]],
    *,
    minimum: float,
    exclusive: bool = False,
    optional: bool = False,
) -> Any:
    if value is None or (optional and value == ""):
        if optional:
            return None
        problems.append((name, "is required"))
        return None
    number: float | None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    else:
        number = None
    if number is None or math.isnan(number) or math.isinf(number):
        problems.append((name, f"must be a number, got {value!r}"))
        return None
    if number < minimum or (exclusive and number == minimum):
        relation = ">" if exclusive else ">="
        what = "negative" if number < 0 else "out of range"
        problems.append((name, f"must be {relation} {minimum:g} ({what}: {number:g})"))
        return None
    return number


def _check_int(name: str, value: Any, problems: list[tuple[str, str]], low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append((name, f"must be an integer between {low} and {high}, got {value!r}"))
        return low
    if not low <= value <= high:
        problems.append((name, f"must be between {low} and {high}, got {value}"))
        return low
    return value


def _check_timeout(value: Any, problems: list[tuple[str, str]]) -> tuple[float, float]:
    """A number (both timeouts) or a (connect, read) pair of positive numbers."""
    pair = value if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2:
        problems.append(("timeout", "must be seconds or a (connect, read) pair"))
        return (5.0, 30.0)
    cleaned = []
    for label, item in zip(("connect", "read"), pair, strict=True):
        if isinstance(item, bool) or not isinstance(item, int | float) or not item > 0:
            problems.append(("timeout", f"{label} timeout must be a positive number, got {item!r}"))
            return (5.0, 30.0)
        cleaned.append(float(item))
    return (cleaned[0], cleaned[1])
