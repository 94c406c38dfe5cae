"""Money in one place: the API's price unit, the cost of a billed span, and how amounts print.
A leaf: imports nothing from the package, so models, frames, ledger and html can all use it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

__all__ = [
    "PRICE_UNIT",
    "ESTIMATE_MARK",
    "ESTIMATED_PRICES",
    "usd_from_api",
    "cost_so_far",
    "format_money",
    "price_is_estimate",
    "round_usd",
]

#: API prices are integers (or digit strings) in 1/100000 USD per hour.
PRICE_UNIT = 100_000

#: Put before an amount whose unit or multiplier no public source shows (shown as an estimate,
#: never as fact). Views that draw their own amounts use it too.
ESTIMATE_MARK = "\u2248"

#: The prices that rest on a guess, and why (docs/assumptions.md G12, G13).
ESTIMATED_PRICES: dict[str, str] = {
    "monthly": "monthlyPrice is taken as per GPU per month (no public source says)",
    "several GPUs": "a listed price is taken as per GPU and multiplied by the GPU count",
    "network volume": "a volume's price is taken as USD per hour in 1/100000 USD",
}


def price_is_estimate(
    billing: str | None = None, gpu_num: int | None = 1, *, volume: bool = False
) -> bool:
    """True when a price rests on a guess about its unit or multiplier: a network volume's,
    a monthly one, or one for more than one GPU (``ESTIMATED_PRICES`` says why)."""
    return volume or billing == "monthly" or (gpu_num or 1) > 1


def usd_from_api(value: Any) -> float | None:
    """``35000`` or ``"35000"`` → ``0.35`` (USD per hour). Empty, missing or junk → None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        usd = float(value) / PRICE_UNIT
    except (TypeError, ValueError):
        return None
    return usd if math.isfinite(usd) else None


def round_usd(amount: float) -> float:
    """Drop float noise (``0.29750000000000004`` → ``0.2975``) without losing sub-cent detail."""
    return round(amount, 6)


def cost_so_far(
    price_per_hour: float | None, start: datetime | None, end: datetime | None
) -> float | None:
    """USD billed from ``start`` to ``end`` at ``price_per_hour``; None when any is unknown.
    A span that ends before it starts costs nothing."""
    if price_per_hour is None or start is None or end is None:
        return None
    hours = max(0.0, (end - start).total_seconds() / 3600.0)
    return round_usd(price_per_hour * hours)


def format_money(
    amount: float | None, *, per_hour: bool = False, missing: str = "—", estimate: bool = False
) -> str:
    """``0.2975`` → ``$0.30`` (``$0.30/h`` with ``per_hour``); ``1234.5`` → ``$1,234.50``;
    None → ``missing``; ``estimate`` (``price_is_estimate``) puts ``≈`` before it."""
    if amount is None:
        return missing
    text = f"${amount:,.2f}" + ("/h" if per_hour else "")
    return ESTIMATE_MARK + text if estimate else text
