"""The spend limit: what live instances cost per hour now, and a reservation that holds a
create's price against the client's ``spend_limit_per_hour`` while the create is in flight.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..api import NovitaAPI
from ..config import Config
from ..errors import BudgetExceededError
from ..models import BILLED_STATUSES, GONE_STATUSES, Instance, phase_of
from ..money import format_money
from .idempotency import patiently


def counts_for_budget(raw: Mapping[str, Any]) -> bool:
    """Live and billed, or on its way to running (it will be billed in a moment)."""
    status = str(raw.get("status") or "")
    if status in GONE_STATUSES:
        return False
    error = raw.get("statusError") or {}
    if isinstance(error, Mapping) and (error.get("state") or error.get("message")):
        return status in BILLED_STATUSES
    return status in BILLED_STATUSES or phase_of(status) in ("provisioning", "starting")


class Budget:
    """Spend per hour from one list call, priced by ``to_instance``; creates in flight are
    counted by their reserved price (under one lock), so a batch can never overshoot."""

    def __init__(
        self,
        api: NovitaAPI,
        config: Config,
        to_instance: Callable[[dict[str, Any]], Instance],
    ) -> None:
        self.api = api
        self.config = config
        self.to_instance = to_instance
        self._lock = threading.Lock()
        self._in_flight: dict[str, float] = {}

    def current_spend_per_hour(self) -> float:
        """USD per hour of this account's live instances that are billed or about to be."""
        return self._spend_excluding(set())

    def _spend_excluding(self, names: set[str]) -> float:
        total = 0.0
        for raw in self.api.list_instances():
            if raw.get("name") in names or not counts_for_budget(raw):
                continue
            total += self.to_instance(raw).price_per_hour or 0.0
        return total

    @contextlib.contextmanager
    def reserve(self, name: str, price: float) -> Iterator[None]:
        """Hold ``price`` for ``name`` while its create runs; BudgetExceededError if it would
        push the hourly spend over ``spend_limit_per_hour``. No limit configured: no check."""
        budget = self.config.spend_limit_per_hour
        if budget is None:
            yield
            return
        with self._lock:
            spend = patiently(lambda: self._spend_excluding(set(self._in_flight)))
            spend += sum(self._in_flight.values())
            if spend + price > budget + 1e-9:
                raise BudgetExceededError(
                    f"creating {name!r} at {format_money(price, per_hour=True)} would raise "
                    f"the hourly spend from {format_money(spend, per_hour=True)} to "
                    f"{format_money(spend + price, per_hour=True)}, over the spend limit of "
                    f"{format_money(budget, per_hour=True)}",
                    current_per_hour=spend,
                    price_per_hour=price,
                    budget_per_hour=budget,
                    hint="Stop or delete an instance, choose a cheaper GPU (max_price=) or raise "
                    "spend_limit_per_hour=.",
                )
            self._in_flight[name] = price
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.pop(name, None)
