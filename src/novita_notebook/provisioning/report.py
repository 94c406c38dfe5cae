"""The fallback report: every region a create tried, in order, with its outcome, and the offer
chosen. Outcome names and billing labels live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import html
from ..money import format_money, price_is_estimate
from ..vocabulary import BILLING_WORDS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Billing modes in words (the one table in vocabulary.py).
BILLING_LABELS = BILLING_WORDS

OUTCOME_NO_PRODUCT = "no such product"
OUTCOME_UNAVAILABLE = "out of stock"
OUTCOME_OVER_PRICE = "over max_price"
OUTCOME_ROOTFS = "rootfs too large"
OUTCOME_CREATE_FAILED = "create failed"
OUTCOME_NO_STORAGE = "no network storage"
OUTCOME_VOLUME = "volume elsewhere"
OUTCOME_CHOSEN = "chosen"

#: Which answer decided a region: the unfiltered listing (offers, prices), the region's own
#: clusterId listing (its stock), the create call itself, or the volumes asked for.
SIGNAL_CATALOG = "listing"
SIGNAL_REGION = "region listing"
SIGNAL_CREATE = "create"
SIGNAL_VOLUME = "volume"

POLICIES = {
    "price": 'prefer="price": the cheapest offer in stock first, across regions '
    "(ties: region order)",
    "region": 'prefer="region": regions in order (region= or default_region first), '
    "the cheapest offer in stock within each",
}


@dataclass(frozen=True)
class Attempt:
    """What happened in one region: the outcome, a readable detail, and the offer if any."""

    region: str
    outcome: str
    detail: str
    cluster_id: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    price_per_gpu_hour: float | None = None
    price_per_hour: float | None = None  # the whole instance (all GPUs)
    signal: str | None = None  # SIGNAL_*: which answer decided it

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "outcome": self.outcome,
            "signal": self.signal,
            "detail": self.detail,
            "product_id": self.product_id,
            "product": self.product_name,
            "price_per_hour": self.price_per_hour,
        }


class FallbackReport:
    """Every region tried, in order, with its outcome, and the offer chosen (if one was)."""

    def __init__(self, gpu: str | None, gpu_num: int, billing: str, prefer: str = "price") -> None:
        self.gpu = gpu
        self.gpu_num = gpu_num
        self.billing = billing
        self.prefer = prefer
        self.restriction: str | None = None  # e.g. why only one region could be used
        #: how products' region labels were matched to clusters (catalog.region_join)
        self.region_join: str | None = None
        self.attempts: list[Attempt] = []

    @property
    def policy(self) -> str:
        """Which policy ordered the offers, in words."""
        return POLICIES.get(self.prefer, self.prefer)

    def add(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    @property
    def chosen(self) -> Attempt | None:
        for attempt in self.attempts:
            if attempt.outcome == OUTCOME_CHOSEN:
                return attempt
        return None

    @property
    def price(self) -> float | None:
        """USD per hour of the chosen offer for the whole instance, or None."""
        chosen = self.chosen
        return chosen.price_per_hour if chosen else None

    @property
    def regions_tried(self) -> list[str]:
        seen: list[str] = []
        for attempt in self.attempts:
            if attempt.region not in seen:
                seen.append(attempt.region)
        return seen

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        columns = [
            "region",
            "outcome",
            "signal",
            "detail",
            "product_id",
            "product",
            "price_per_hour",
        ]
        return pd.DataFrame([a.as_dict() for a in self.attempts], columns=columns)

    def lines(self) -> list[str]:
        width = max((len(a.region) for a in self.attempts), default=0) + 2
        return [f"{a.region:<{width}}{a.detail}" for a in self.attempts]

    def header(self) -> list[str]:
        """The policy that ordered the offers and any restriction on the regions."""
        lines = [f"policy: {self.policy}"]
        if self.restriction:
            lines.append(f"regions: {self.restriction}")
        if self.region_join and not self.region_join.startswith("regions joined by name"):
            lines.append(self.region_join)
        return lines

    def __repr__(self) -> str:
        if not self.attempts:
            return "\n".join(["FallbackReport: no region tried", *self.header()])
        return "\n".join([*self.header(), *self.lines()])

    def _repr_html_(self) -> str:
        rows = []
        for attempt in self.attempts:
            # chosen green, a create that failed red, a region passed over grey
            phase = {OUTCOME_CHOSEN: "running", OUTCOME_CREATE_FAILED: "failed"}.get(
                attempt.outcome, "stopped"
            )
            price = (
                format_money(
                    attempt.price_per_hour,
                    per_hour=True,
                    estimate=price_is_estimate(self.billing, self.gpu_num),
                )
                if attempt.price_per_hour
                else None
            )
            rows.append(
                (
                    attempt.region,
                    html.badge(attempt.outcome, phase),
                    attempt.detail,
                    attempt.product_name,
                    price,
                )
            )
        title = html.text(describe_request(self.gpu, self.gpu_num, self.billing))
        header = "".join(html.muted(html.text(line)) for line in self.header())
        columns = ["region", "outcome", "detail", "product", "price"]
        body = header + html.table(
            columns, rows, raw_columns=["outcome"], nowrap_columns=["region"], numeric=["price"]
        )
        return html.frame(title, body, kind="report")


def describe_request(gpu: str | None, gpu_num: int, billing: str) -> str:
    """``"RTX 4090 x2 (on demand)"``: what was asked for, in words."""
    what = gpu if gpu else "any GPU"
    count = f" x{gpu_num}" if gpu_num > 1 else ""
    return f"{what}{count} ({BILLING_LABELS.get(billing, billing)})"
