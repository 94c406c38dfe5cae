"""The one grammar for durations and times: every timeout, interval, idle window, warning lead
and deadline a user types goes through here, from Python, a magic flag, a cell key or the env.

Durations: seconds as a number, a ``timedelta``, or text made of ``<number><unit>`` parts:
``90``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1h30m"``, ``"2 hours"``, ``"1 day 6 h"``. Times (for
deadlines): ``"18:00Z"`` (the next 18:00 UTC), ``"18:00+02:00"``, an ISO date-time
(``"2026-11-27T18:00Z"``) or a ``datetime``; a time without an offset is UTC.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from ..errors import ValidationError

__all__ = [
    "DURATION_RULE",
    "TIME_RULE",
    "DEADLINE_RULE",
    "MAX_DURATION",
    "invalid",
    "parse_timedelta",
    "parse_seconds",
    "parse_time",
    "looks_like_time",
    "parse_deadline",
    "format_duration",
]

DURATION_RULE = "must be a duration like 90 (seconds), '90s', '30m', '2h', '1h30m' or '2 hours'"
TIME_RULE = "must be a time like '18:00Z', '18:00+02:00' or '2026-11-27T18:00Z'"
DEADLINE_RULE = "must be a duration from now ('2h', '1h30m') or a time ('18:00Z')"
#: Far beyond any timeout or deadline anyone means, and well inside what timedelta can hold.
MAX_DURATION = timedelta(days=3650)

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_PART = re.compile(rf"({_NUMBER})\s*([a-z]+)")
_PARTS = re.compile(rf"^(?:(?:{_NUMBER})\s*[a-z]+(?:\s*,\s*|\s+and\s+|\s*))+$")
_CLOCK = re.compile(
    r"^(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*"
    r"(?P<zone>z|utc|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def invalid(field: str, rule: str) -> ValidationError:
    """The error every grammar raises: ``field: rule``, with (field, rule) as its problem."""
    return ValidationError(f"{field}: {rule}", field=field, problems=[(field, rule)])


def _text_seconds(text: str) -> float | None:
    """Seconds of a duration written as text, or None when it is not one."""
    text = text.strip().lower()
    if re.fullmatch(_NUMBER, text):
        return float(text)
    if not _PARTS.match(text):
        return None
    total = 0.0
    for number, unit in _PART.findall(text):
        if unit not in _UNITS:
            return None
        total += float(number) * _UNITS[unit]
    return total


def parse_timedelta(value: Any, field: str) -> timedelta:
    """A positive duration (see the module docstring) → timedelta; at most ten years."""
    seconds: float | None = None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _text_seconds(value)
    if seconds is None or not math.isfinite(seconds):
        raise invalid(field, f"{DURATION_RULE}, got {value!r}")
    if seconds <= 0:
        raise invalid(field, f"must be a positive duration, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise invalid(field, f"must be at most {MAX_DURATION.days} days, got {value!r}")
    return timedelta(seconds=seconds)


def parse_seconds(value: Any, field: str) -> float:
    """parse_timedelta, in seconds (what timeouts and intervals are kept as)."""
    return parse_timedelta(value, field).total_seconds()


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _clock_time(match: re.Match[str], now: datetime) -> datetime | None:
    """The next moment after ``now`` showing this clock time in its zone (UTC by default)."""
    hour, minute = int(match["hour"]), int(match["minute"])
    second = int(match["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    zone_text = (match["zone"] or "z").lower()
    offset = timedelta(0)
    if zone_text not in ("z", "utc"):
        sign = -1 if zone_text[0] == "-" else 1
        digits = zone_text[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    local_now = now + offset
    candidate = datetime.combine(local_now.date(), time(hour, minute, second), tzinfo=UTC)
    if candidate <= local_now:
        candidate += timedelta(days=1)
    return candidate - offset


def parse_time(value: Any, field: str, now: datetime | None = None) -> datetime:
    """A point in time → an aware UTC datetime. A clock time (``"18:00Z"``) is its next
    occurrence after ``now``; ISO text and datetimes without an offset are UTC."""
    now = _aware(now) if now is not None else datetime.now(UTC)
    if isinstance(value, datetime):
        try:
            return _aware(value)
        except (OverflowError, ValueError):  # e.g. datetime.max in a zone west of UTC
            raise invalid(field, f"must be a usable time, got {value!r}") from None
    if isinstance(value, str):
        text = value.strip()
        clock = _CLOCK.match(text)
        if clock is not None:
            moment = _clock_time(clock, now)
            if moment is not None:
                return moment
        elif re.match(r"^\d{4}-\d{2}-\d{2}", text):
            try:
                return _aware(datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text)))
            except (OverflowError, ValueError):  # not ISO, or beyond what a datetime holds
                pass
    raise invalid(field, f"{TIME_RULE}, got {value!r}")


def looks_like_time(value: Any) -> bool:
    """True for what parse_time reads: a datetime, a clock time or an ISO date-time."""
    if isinstance(value, datetime):
        return True
    return isinstance(value, str) and bool(
        _CLOCK.match(value.strip()) or re.match(r"^\s*\d{4}-\d{2}-\d{2}", value)
    )


def parse_deadline(value: Any, field: str, now: datetime | None = None) -> datetime:
    """A duration from ``now`` or a time (see parse_time) → an aware UTC datetime after now."""
    now = _aware(now) if now is not None else datetime.now(UTC)
    if looks_like_time(value):
        moment = parse_time(value, field, now)
    else:
        try:
            moment = now + parse_timedelta(value, field)
        except ValidationError:
            raise invalid(field, f"{DEADLINE_RULE}, got {value!r}") from None
    if moment <= now:
        raise invalid(field, f"must be in the future, got {moment:%Y-%m-%d %H:%M:%SZ}")
    return moment


def format_duration(span: timedelta | float) -> str:
    """``5400`` s → ``"1h30m"``; ``45`` → ``"45s"``: the grammar's own compact form."""
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            count = int(seconds // size)
            parts.append(f"{count}{unit}")
            seconds -= count * size
    if seconds or not parts:
        parts.append(f"{seconds:g}s")
    return "".join(parts)
