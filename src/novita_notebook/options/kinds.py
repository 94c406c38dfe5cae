"""The kinds of value the option schemas use, each a ``Kind`` over one grammar of validation/:
text, names, images, choices, switches, money, sizes, durations, deadlines, ports, envs,
regions and volumes. A kind adds only how typed text becomes a Python value; the rule and its
words are the grammar's, so every surface refuses a bad value in the same words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import validation as v
from ..errors import ValidationError
from ..validation import invalid
from .schema import Kind

__all__ = [
    "text",
    "free_text",
    "NAME",
    "IMAGE",
    "BILLING",
    "choice",
    "SWITCH",
    "money",
    "size",
    "DURATION",
    "DURATION_OR_ZERO",
    "TIMEDELTA",
    "DEADLINE",
    "is_time",
    "number",
    "PERCENT",
    "PORTS",
    "ENVS",
    "REGION",
    "REGIONS",
    "VOLUMES",
    "NETWORK_STORAGES",
    "PROGRESS",
    "WORDS",
    "problems_of",
]

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def problems_of(check: Callable[..., Any], *, field_arg: bool = True) -> Callable[[Any, str], Any]:
    """A ``check_*(value, problems, field)`` of validation/ as a grammar that raises."""

    def parse(value: Any, field: str) -> Any:
        problems = v.Problems()
        result = check(value, problems, field) if field_arg else check(value, problems)
        problems.raise_if_any()
        return result

    return parse


def text(rule: str, max_len: int = 2047, example: str = "") -> Kind:
    """Non-empty text (stripped) of at most ``max_len`` characters; ``rule`` says what it is."""

    def parse(value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise invalid(field, f"{rule}, got {value!r}")
        if len(value) > max_len:
            raise invalid(field, f"must be at most {max_len} characters, got {len(value)}")
        return value.strip()

    return Kind("text", parse, metavar="TEXT", example=example)


def free_text(max_len: int, example: str = "") -> Kind:
    """Optional text of at most ``max_len`` characters (a command, an entrypoint)."""

    def parse(value: Any, field: str) -> str | None:
        problems = v.Problems()
        checked = v.check_text(value, problems, field, max_len=max_len)
        problems.raise_if_any()
        return checked

    return Kind("text", parse, metavar="TEXT", example=example)


def _name(value: Any, field: str) -> str:
    text_value = value.strip() if isinstance(value, str) else value
    return problems_of(v.check_name)(text_value, field)


NAME = Kind("name", _name, metavar="NAME", example="my-box")
IMAGE = Kind("image", problems_of(v.check_image), metavar="IMAGE", example="pytorch/pytorch:2.4.0")
BILLING = Kind(
    "billing",
    problems_of(v.check_billing),
    metavar="{onDemand,spot,monthly}",
    example="spot",
)


def choice(values: Iterable[str], example: str = "") -> Kind:
    """One of ``values`` (exactly, after stripping; text is lowered when the values are)."""
    allowed = tuple(values)

    def parse(value: Any, field: str) -> str:
        text_value = value.strip() if isinstance(value, str) else value
        if isinstance(text_value, str) and text_value.lower() in allowed:
            text_value = text_value.lower()
        if text_value not in allowed:
            raise invalid(field, f"must be one of {', '.join(allowed)}, got {value!r}")
        return text_value

    return Kind(
        "choice", parse, metavar="{" + ",".join(allowed) + "}", example=example or allowed[0]
    )


def _switch(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, f"must be True or False (yes or no), got {value!r}")
    return value


def _switch_text(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return value


SWITCH = Kind("switch", _switch, _switch_text, metavar="", example="yes", switch=True)


def money(unit: str = v.PER_GPU_HOUR, example: str = "0.5") -> Kind:
    def parse(value: Any, field: str) -> float | None:
        return v.parse_money(value, field, unit=unit, example=example)

    return Kind("money", parse, metavar="USD", example=example)


def size(low: int, high: int, unit: str = "", example: str = "") -> Kind:
    def parse(value: Any, field: str) -> int:
        return v.parse_size(value, field, low, high, unit)

    def from_text(value: Any) -> Any:
        return v.size_from_text(value, unit)

    return Kind("size", parse, from_text, metavar="N", example=example or str(low))


def _seconds(value: Any, field: str) -> float:
    return v.parse_seconds(value, field)


def _seconds_or_zero(value: Any, field: str) -> float:
    if (isinstance(value, int | float) and not isinstance(value, bool) and value == 0) or (
        isinstance(value, str) and re.fullmatch(r"\s*0+(\.0*)?\s*[a-z]*\s*", value.lower())
    ):
        return 0.0
    return v.parse_seconds(value, field)


def _number_text(value: Any) -> Any:
    """Text holding a plain number as that number (durations read it as seconds)."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?(\d+(\.\d*)?|\.\d+)\s*", value):
        return float(value)
    return value


DURATION = Kind("duration", _seconds, metavar="DURATION", example="90s")
DURATION_OR_ZERO = Kind("duration", _seconds_or_zero, metavar="DURATION", example="5m")
TIMEDELTA = Kind("duration", v.parse_timedelta, metavar="DURATION", example="30m")
DEADLINE = Kind("deadline", v.parse_deadline, metavar="WHEN", example="2h")


def is_time(value: Any) -> bool:
    """True when a deadline's value names a time (``18:00Z``, ISO, a datetime), not a span."""
    return v.looks_like_time(value)


def number(rule: str, *, minimum: float = 0.0, example: str = "1") -> Kind:
    """A finite number > ``minimum`` (text holding one is read)."""

    def parse(value: Any, field: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= minimum
        ):
            raise invalid(field, f"{rule}, got {value!r}")
        return float(value)

    return Kind("number", parse, _number_text, metavar="N", example=example)


PERCENT = Kind("percent", v.parse_percent, metavar="PERCENT", example="5")


def _ports(value: Any, field: str) -> list[tuple[int, str]]:
    problems = v.Problems()
    pairs = v.parse_ports(value, problems, field)
    problems.raise_if_any()
    return pairs


def _ports_text(value: Any) -> Any:
    if isinstance(value, str):
        return ",".join(part for part in re.split(r"[,\s]+", value) if part)
    return value


PORTS = Kind("ports", _ports, _ports_text, metavar="PORTS", example="8888/http,22/tcp")


def _envs(value: Any, field: str) -> list[tuple[str, str]]:
    problems = v.Problems()
    pairs = v.parse_envs(value, problems, field)
    problems.raise_if_any()
    return pairs


def _envs_text(value: Any) -> Any:
    """``"A=1, B=2"`` (or a list of such lines) → (key, value) pairs; mistakes are kept as
    entries parse_envs refuses in the text grammar's words."""
    if isinstance(value, list | tuple):
        value = "\n".join(str(item) for item in value)
    if not isinstance(value, str):
        return value
    try:
        return v.parse_env_text(value)
    except ValidationError as error:
        return _TextProblem(error)


class _TextProblem:
    """Text a kind's from_text could not read: parse re-raises the text grammar's error."""

    def __init__(self, error: ValidationError) -> None:
        self.error = error


def _with_text_problem(parse: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def checked(value: Any, field: str) -> Any:
        if isinstance(value, _TextProblem):
            raise invalid(field, value.error.problems[0][1] if value.error.problems else str(value))
        return parse(value, field)

    return checked


ENVS = Kind("envs", _with_text_problem(_envs), _envs_text, metavar="K=V,...", example="A=1, B=2")


def _region(value: Any, field: str) -> str | None:
    return v.parse_region(value, field)


def _regions(value: Any, field: str) -> list[str] | None:
    return v.region_keys(value, field)


def _regions_text(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


REGION = Kind("region", _region, metavar="REGION", example="AS-SGP-02")
REGIONS = Kind("regions", _regions, _regions_text, metavar="R1,R2", example="AS-SGP-02, CN-HK-01")


def _volumes(value: Any, field: str) -> list[dict[str, str]]:
    problems = v.Problems()
    entries = v.parse_volumes(value, problems, field)
    problems.raise_if_any()
    return entries


def _volumes_text(value: Any) -> Any:
    parts = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(p, str) for p in parts):
        return value
    return [item.strip() for part in parts for item in part.split(",") if item.strip()]


VOLUMES = Kind("volumes", _volumes, _volumes_text, metavar="VOLUME[:/PATH]", example="my-data")


def _storages(value: Any, field: str) -> list[dict[str, str]]:
    problems = v.Problems()
    entries = v.parse_network_storages(value, problems)
    problems.raise_if_any()
    return entries


NETWORK_STORAGES = Kind("volumes", _storages, _volumes_text, metavar="ID[:/PATH]")


def _progress(value: Any, field: str) -> Any:
    return v.check_progress(value, field)


PROGRESS = Kind("progress", _progress, metavar="{text,silent}", example="text")


def _words(value: Any, field: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise invalid(field, f"must be a name or a list of names, got {value!r}")
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise invalid(field, f"entries must be non-empty text, got {item!r}")
        out.append(item.strip())
    return out


WORDS = Kind("words", _words, _volumes_text, metavar="NAME[,NAME]", example="data.csv")
