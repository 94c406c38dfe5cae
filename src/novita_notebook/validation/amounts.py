"""The grammars for amounts: money (a price ceiling, a spend limit, a budget) and sizes (GPUs per
instance, disk and volume sizes), each one rule whatever surface the value came from.

Money: a finite number > 0, or text such as ``"0.5"``, ``"$0.5"``, ``"0.50/h"``, ``"$1,200"``.
Sizes: integers within bounds; text (a flag, a cell key) may say ``"60"`` or ``"60 GB"``,
Python callers give an int.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .durations import invalid

__all__ = [
    "PER_GPU_HOUR",
    "PER_HOUR",
    "TOTAL",
    "MONEY_RULE",
    "money_rule",
    "parse_money",
    "PERCENT_RULE",
    "parse_percent",
    "size_rule",
    "parse_size",
    "size_from_text",
]

PER_GPU_HOUR = "USD per GPU-hour"
PER_HOUR = "USD per hour"
TOTAL = "USD"


def money_rule(unit: str = PER_GPU_HOUR, example: str = "0.5") -> str:
    """The one wording for an amount of money, per unit."""
    return f"must be a positive number of {unit}, e.g. {example}"


#: The wording for a price ceiling (USD per GPU-hour), the most common amount.
MONEY_RULE = money_rule()

_MONEY_TEXT = re.compile(
    r"^\$?\s*(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)\s*(?:usd)?\s*"
    r"(?:(?:/|per)\s*(?:h|hr|hour|gpu-?h(?:our)?))?$",
    re.IGNORECASE,
)


def parse_money(
    value: Any, field: str = "max_price", *, unit: str = PER_GPU_HOUR, example: str = "0.5"
) -> float | None:
    """An amount of USD > 0 from a number or text; None or "" → None (not given)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    amount: float | None = None
    if isinstance(value, str):
        match = _MONEY_TEXT.match(value.strip())
        if match is not None:
            amount = float(match["amount"].replace(",", ""))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    if amount is None or not math.isfinite(amount) or amount <= 0:
        raise invalid(field, f"{money_rule(unit, example)}, got {value!r}")
    return amount


PERCENT_RULE = "must be a percentage above 0 and at most 100, e.g. 5"


def parse_percent(value: Any, field: str) -> float:
    """A percentage in (0, 100]: a number, or text such as ``"5"`` or ``"5%"``."""
    number: Any = value
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            number = float(text)
        except ValueError:
            number = value
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or not math.isfinite(number)
        or not 0 < number <= 100
    ):
        raise invalid(field, f"{PERCENT_RULE}, got {value!r}")
    return float(number)


def size_rule(low: int, high: int, unit: str = "") -> str:
    return f"must be an integer between {low} and {high}" + (f" ({unit})" if unit else "")


def parse_size(value: Any, field: str, low: int, high: int, unit: str = "") -> int:
    """A whole number within [low, high]: an int (a float with no fraction too), never a
    bool or text; text goes through size_from_text first."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None:
        raise invalid(field, f"{size_rule(low, high, unit)}, got {value!r}")
    if not low <= number <= high:
        raise invalid(field, f"{size_rule(low, high, unit)}, got {number}")
    return number


def size_from_text(text: Any, unit: str = "") -> Any:
    """``"60"``, ``"60GB"``, ``" 2 "`` → the int; anything else unchanged (for parse_size to
    refuse in its own words)."""
    if not isinstance(text, str):
        return text
    pattern = rf"\s*(-?\d+)\s*(?:{re.escape(unit)})?\s*" if unit else r"\s*(-?\d+)\s*"
    match = re.fullmatch(pattern, text, re.IGNORECASE)
    return int(match.group(1)) if match else text
