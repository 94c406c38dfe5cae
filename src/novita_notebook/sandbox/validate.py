"""Request validation for the sandbox: typed field readers that raise ApiError (400
VALIDATOR_PARAM) naming the field and the rule; unknown fields are collected, not rejected.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_STATE = threading.local()


@contextlib.contextmanager
def collecting_ignored() -> Iterator[list[str]]:
    """While active (one Novita request), unknown body fields are ignored and their paths
    collected here, as the live backend (protojson) discards them. Outside: rejected."""
    previous = getattr(_STATE, "ignored", None)
    _STATE.ignored = sink = []
    try:
        yield sink
    finally:
        _STATE.ignored = previous


# The documented HTTP status of each error reason; anything not listed is a 400.
REASON_STATUS: dict[str, int] = {
    "UNKNOWN": 500,
    "WALLET_NOT_FOUND": 500,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "RATE_LIMIT_EXCEEDED": 429,
    "SERVICE_UNAVAILABLE": 503,
}


class ApiError(Exception):
    """An error answered with the go-kratos envelope ``{code, reason, message, metadata}``."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status if status is not None else REASON_STATUS.get(reason, 400)
        self.metadata = metadata or {}

    def envelope(self) -> dict[str, Any]:
        return {
            "code": self.status,
            "reason": self.reason,
            "message": self.message,
            "metadata": self.metadata,
        }


def invalid(field: str, rule: str) -> ApiError:
    """The VALIDATOR_PARAM error for one field."""
    return ApiError("VALIDATOR_PARAM", f"{field}: {rule}", metadata={"field": field})


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}


def check_object(body: Any, allowed: set[str], where: str = "body") -> dict[str, Any]:
    """The body must be a JSON object; unknown fields are ignored (and collected) inside a
    Novita request, rejected elsewhere (the sandbox's own control endpoints)."""
    if not isinstance(body, dict):
        raise invalid(where, "must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        prefix = "" if where == "body" else f"{where}."
        sink = getattr(_STATE, "ignored", None)
        if sink is None:
            raise invalid(f"{prefix}{unknown[0]}", "unknown field")
        sink.extend(f"{prefix}{key}" for key in unknown)
    return body


def _typed(body: dict[str, Any], key: str, kind: type, field: str, required: bool) -> Any:
    if key not in body or body[key] is None:
        if required:
            raise invalid(field, "is required")
        return None
    value = body[key]
    # bool is a subclass of int: true/false must not pass as an integer.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid(field, f"must be {_TYPE_NAMES[kind]}")
    return value


def get_str(
    body: dict[str, Any],
    key: str,
    *,
    field: str | None = None,
    required: bool = False,
    min_len: int = 0,
    max_len: int | None = None,
    choices: tuple[str, ...] | None = None,
    default: str | None = None,
) -> str | None:
    field = field or key
    value = _typed(body, key, str, field, required)
    if value is None:
        return default
    if required and min_len == 0 and value == "":
        raise invalid(field, "must not be empty")
    if len(value) < min_len:
        raise invalid(field, f"length must be at least {min_len}")
    if max_len is not None and len(value) > max_len:
        raise invalid(field, f"length must be at most {max_len}")
    if choices is not None and value not in choices:
        raise invalid(field, f"must be one of {', '.join(choices)}")
    return value


def get_int(
    body: dict[str, Any],
    key: str,
    *,
    field: str | None = None,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
) -> int | None:
    field = field or key
    value = _typed(body, key, int, field, required)
    if value is None:
        return default
    if minimum is not None and value < minimum:
        raise invalid(field, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise invalid(field, f"must be at most {maximum}")
    return value


def get_bool(body: dict[str, Any], key: str, *, default: bool = False) -> bool:
    value = _typed(body, key, bool, key, False)
    return default if value is None else value


def get_list(
    body: dict[str, Any], key: str, *, field: str | None = None, max_items: int | None = None
) -> list[Any]:
    field = field or key
    value = _typed(body, key, list, field, False)
    if value is None:
        return []
    if max_items is not None and len(value) > max_items:
        raise invalid(field, f"at most {max_items} items")
    return value


def query_int(
    query: dict[str, list[str]],
    key: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
) -> int | None:
    """An integer query parameter (digits only, optional sign)."""
    values = query.get(key)
    if not values or values[-1] == "":
        return default
    raw = values[-1].strip()
    try:
        value = int(raw)
    except ValueError:
        raise invalid(key, "must be an integer") from None
    if minimum is not None and value < minimum:
        raise invalid(key, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise invalid(key, f"must be at most {maximum}")
    return value


def query_str(
    query: dict[str, list[str]], key: str, *, max_len: int = 255, default: str | None = None
) -> str | None:
    values = query.get(key)
    if not values or values[-1] == "":
        return default
    value = values[-1]
    if len(value) > max_len:
        raise invalid(key, f"length must be at most {max_len}")
    return value


def query_bool(query: dict[str, list[str]], key: str) -> bool | None:
    """A boolean query parameter: true/false (1/0 also accepted); absent → None."""
    values = query.get(key)
    if not values or values[-1] == "":
        return None
    raw = values[-1].strip().lower()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise invalid(key, "must be true or false")


def query_list(query: dict[str, list[str]], key: str) -> list[str]:
    """A string[] parameter sent repeated (``channel=a&channel=b``) or comma-joined."""
    items: list[str] = []
    for value in query.get(key, ()):
        items.extend(part.strip() for part in value.split(",") if part.strip())
    return items


def parse_port_spec(spec: str, field: str = "ports") -> list[tuple[int, str]]:
    """``"80/http, 3306/tcp"`` → ``[(80, "http"), (3306, "tcp")]`` with the documented rules."""
    result: list[tuple[int, str]] = []
    seen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        number, _, kind = part.partition("/")
        kind = kind.strip().lower() or "http"
        number = number.strip()
        if not number.isdigit():
            raise invalid(field, f"{part!r} must look like '<port>/<tcp|http>'")
        result.append(check_port(int(number), kind, field))
        if result[-1][0] in seen:
            raise invalid(field, f"port {number} listed twice")
        seen.add(result[-1][0])
    return result


RESERVED_PORTS = frozenset({2222, 2223, 2224})


def check_port(port: int, kind: str, field: str) -> tuple[int, str]:
    if not 1 <= port <= 65535:
        raise invalid(field, f"port {port} must be between 1 and 65535")
    if port in RESERVED_PORTS:
        raise invalid(field, f"port {port} is reserved (2222-2224 are used by the platform)")
    if kind not in ("tcp", "http"):
        raise invalid(field, f"type {kind!r} must be tcp or http")
    return port, kind


def read_envs(body: dict[str, Any], key: str = "envs", limit: int = 100) -> list[dict[str, str]]:
    """``[{key, value}]`` environment variables with the documented limits."""
    envs = []
    for i, item in enumerate(get_list(body, key, max_items=limit)):
        where = f"{key}[{i}]"
        check_object(item, {"key", "value"}, where)
        name = get_str(item, "key", field=f"{where}.key", required=True, max_len=511)
        value = get_str(item, "value", field=f"{where}.value", max_len=4095, default="")
        envs.append({"key": name, "value": value})
    return envs


#: The largest page served; a bigger ``pageSize`` is capped, not refused.
MAX_PAGE_SIZE = 100


def page_window(
    query: dict[str, list[str]], base: int, key: str = "pageNum", default_size: int = 10
) -> tuple[int, int, int]:
    """(page number as asked, first index, page size) for a paged listing. ``base`` 0: page 0
    is the first; base 1: page 1 is, and 0 also means the first page. The docs allow any
    ``pageSize`` >= 0: 0 means the default size, and more than ``MAX_PAGE_SIZE`` is served as
    ``MAX_PAGE_SIZE`` (a short page, with ``total`` telling the rest)."""
    size = query_int(query, "pageSize", minimum=0, default=default_size) or default_size
    size = min(size, MAX_PAGE_SIZE)
    number = query_int(query, key, minimum=0, default=base)
    index = number if base == 0 else max(number, 1) - 1
    return number, index * size, size
