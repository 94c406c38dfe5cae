"""The guard's data: a guarded instance as stored (GuardRecord), a create whose rules were stored
before its request went out (GuardIntent) and what is known of an instance now (InstanceState).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import inf
from typing import Any

from ..config import API_PREFIX
from ..errors import ValidationError
from ..models import BILLED_STATUSES, parse_time
from ..money import format_money
from .rules import GuardRules

__all__ = [
    "GuardRecord",
    "GuardIntent",
    "InstanceState",
    "scope_url",
    "iso",
    "stored_time",
    "budget_kept",
    "seen_stopped_update",
    "idle_reading_of",
    "idle_reading_update",
    "IDLE_SOURCES",
]


#: Where the idle rule's utilisation came from: the metrics endpoint, or the GPU's own report
#: read over SSH (remote/top.py's SOURCE).
IDLE_SOURCES = ("metrics", "nvidia-smi over SSH")


def scope_url(url: str | None) -> str | None:
    """The scope of an API URL: without a trailing slash, with the v1 prefix (the same
    scope whether a caller passes ``https://api.novita.ai`` or the client's ``api_url``)."""
    if not isinstance(url, str) or not url:
        return None
    url = url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if isinstance(moment, datetime) else None


def stored_time(value: Any) -> datetime | None:
    """An ISO time as this package stores it; anything else (or a damaged value) is None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _price(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value < inf else None


@dataclass(frozen=True)
class GuardRecord:
    """One guarded instance as stored: its rules and what the guard knows about it. The total
    budget's bookkeeping (guard/spend.py): ``budget_since`` when it began counting, ``spent``
    USD of billed stretches that are over, ``billed_since``/``billed_seen`` the stretch billing
    now (its start, the last look that saw it). ``seen_stopped``: the first look that saw it
    stopped (None while it bills or provisions): how long the guard keeps watching it."""

    id: str
    rules: GuardRules
    api_url: str | None = None
    name: str = ""
    created_at: datetime | None = None
    price_per_hour: float | None = None
    warned: dict[str, datetime] = field(default_factory=dict)
    budget_since: datetime | None = None
    spent: float = 0.0
    billed_since: datetime | None = None
    billed_seen: datetime | None = None
    seen_stopped: datetime | None = None
    idle_reading: str | None = None  # what the idle rule read last: IDLE_SOURCES or "none"

    def __repr__(self) -> str:
        """``<GuardRecord demo-1 (id): stop at 2026-12-01 18:00:00Z; budget $5.00 total>``."""
        counted = f"; {format_money(self.spent)} counted" if self.rules.budget_total else ""
        return f"<GuardRecord {self.name or '?'} ({self.id}): {self.rules.describe()}{counted}>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "api_url": self.api_url,
            "name": self.name,
            "rules": self.rules.to_dict(),
            "created_at": iso(self.created_at),
            "price_per_hour": self.price_per_hour,
            "warned": {key: iso(at) for key, at in self.warned.items()},
            "budget_since": iso(self.budget_since),
            "spent": self.spent,
            "billed_since": iso(self.billed_since),
            "billed_seen": iso(self.billed_seen),
            "seen_stopped": iso(self.seen_stopped),
            "idle_reading": self.idle_reading,
        }

    @classmethod
    def from_dict(cls, data: Any) -> GuardRecord:
        """A stored record; a ValidationError (a ValueError) says why one cannot be used."""
        if not isinstance(data, Mapping):
            raise ValidationError("a guard record must be an object", field="record")
        instance_id = data.get("id")
        if not isinstance(instance_id, str) or not instance_id.strip():
            raise ValidationError("a guard record needs an instance id", field="id")
        spent = data.get("spent")
        if _price(spent) is None:
            spent = 0.0  # absent (a store from before the count) or nonsense: count afresh
        warned = data.get("warned") if isinstance(data.get("warned"), Mapping) else {}
        return cls(
            id=instance_id,
            rules=GuardRules.from_dict(data.get("rules")),
            api_url=scope_url(data.get("api_url")),
            name=str(data.get("name") or ""),
            created_at=stored_time(data.get("created_at")),
            price_per_hour=_price(data.get("price_per_hour")),
            warned={str(k): t for k, v in warned.items() if (t := stored_time(v)) is not None},
            budget_since=stored_time(data.get("budget_since")),
            spent=float(spent),
            billed_since=stored_time(data.get("billed_since")),
            billed_seen=stored_time(data.get("billed_seen")),
            seen_stopped=stored_time(data.get("seen_stopped")),
            idle_reading=_idle_reading(data.get("idle_reading")),
        )


@dataclass(frozen=True)
class GuardIntent:
    """Rules stored before a create request went out: bound to the instance's id once the
    create answers, or, if it never did (Ctrl-C, a killed kernel), once a listing shows an
    instance of that ``name`` created after ``sent_at``. ``token`` is the ledger intent's;
    ``misses`` counts the listings that did not show it (one listing's word forgets nothing)."""

    token: str
    name: str
    rules: GuardRules
    sent_at: datetime
    api_url: str | None = None
    price_per_hour: float | None = None
    misses: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "name": self.name,
            "rules": self.rules.to_dict(),
            "sent_at": iso(self.sent_at),
            "api_url": self.api_url,
            "price_per_hour": self.price_per_hour,
            "misses": self.misses,
        }

    @classmethod
    def from_dict(cls, data: Any) -> GuardIntent:
        if not isinstance(data, Mapping):
            raise ValidationError("a guard intent must be an object", field="intent")
        token, name = data.get("token"), data.get("name")
        sent = stored_time(data.get("sent_at"))
        if not isinstance(token, str) or not token or not isinstance(name, str) or not name:
            raise ValidationError("a guard intent needs a token and a name", field="intent")
        if sent is None:
            raise ValidationError("a guard intent needs the time it was sent", field="sent_at")
        return cls(
            token=token,
            name=name,
            rules=GuardRules.from_dict(data.get("rules")),
            sent_at=sent,
            api_url=scope_url(data.get("api_url")),
            price_per_hour=_price(data.get("price_per_hour")),
            misses=int(_price(data.get("misses")) or 0),
        )


@dataclass(frozen=True)
class InstanceState:
    """What is known of an instance now. ``utilisation`` is None when metrics are not known
    (not fetched or unavailable: ``metrics_error`` says why), else ``(time, value)`` pairs in
    the API's unit; ``utilisation_peak`` is the largest value of any utilisation series in
    the same answer (the evidence for that unit, guard/units.py)."""

    id: str
    status: str
    name: str = ""
    price_per_hour: float | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    utilisation: tuple[tuple[datetime, float], ...] | None = None
    metrics_error: str | None = None
    utilisation_source: str = "metrics"  # or "nvidia-smi over SSH" when the metrics failed
    busy: str | None = None  # a remote kernel running a cell, an active run: never idle
    spot_status: str | None = None
    spot_reclaim_time: datetime | None = None
    stopped_at: datetime | None = None
    utilisation_peak: float | None = None

    @classmethod
    def from_raw(
        cls,
        raw: Mapping[str, Any],
        record: GuardRecord | None = None,
        *,
        utilisation: Iterable[tuple[datetime, float]] | None = None,
        metrics_error: str | None = None,
        utilisation_peak: float | None = None,
        utilisation_source: str = "metrics",
        busy: str | None = None,
    ) -> InstanceState:
        """From a raw API instance (list or get) and the stored record (price, created)."""
        created = parse_time(raw.get("createdAt") or raw.get("createTime"))
        return cls(
            id=str(raw.get("id") or raw.get("Id") or (record.id if record else "")),
            status=str(raw.get("status") or ""),
            name=str(raw.get("name") or (record.name if record else "")),
            price_per_hour=record.price_per_hour if record else None,
            created_at=created or (record.created_at if record else None),
            started_at=parse_time(raw.get("lastStartedAt")),
            utilisation=None if utilisation is None else tuple(utilisation),
            metrics_error=metrics_error,
            utilisation_source=utilisation_source,
            busy=busy,
            spot_status=str(raw.get("spotStatus") or "") or None,
            spot_reclaim_time=parse_time(raw.get("spotReclaimTime")),
            stopped_at=parse_time(raw.get("lastStoppedAt")),
            utilisation_peak=utilisation_peak,
        )


def budget_kept(previous: GuardRecord | None, rules: GuardRules, replace: bool) -> GuardRecord:
    """A record for ``rules`` that keeps the total budget's count of ``previous``: setting
    other rules (or a new cap) goes on counting; a first total budget, or ``replace``,
    starts the count at the rules' ``set_at``. Only the bookkeeping fields matter here."""
    fresh = GuardRecord(id="", rules=rules)
    if rules.budget_total is None:
        return fresh
    if previous is None or replace or previous.rules.budget_total is None:
        return dataclasses.replace(fresh, budget_since=rules.set_at)
    return dataclasses.replace(
        fresh,
        budget_since=previous.budget_since or previous.rules.set_at,
        spent=previous.spent,
        billed_since=previous.billed_since,
        billed_seen=previous.billed_seen,
    )


def _idle_reading(value: Any) -> str | None:
    return value if isinstance(value, str) and value in (*IDLE_SOURCES, "none") else None


def idle_reading_of(state: InstanceState) -> str | None:
    """Where this look's utilisation for the idle rule came from (the metrics, or the GPU's
    own nvidia-smi), "none" when neither answered, None when it was not read (no idle rule,
    not running)."""
    if state.utilisation is not None:
        return state.utilisation_source
    return None if state.metrics_error is None else "none"


def idle_reading_update(record: GuardRecord, state: InstanceState) -> dict[str, Any]:
    """``idle_reading`` after a look (what was read last stays when nothing was read)."""
    reading = idle_reading_of(state)
    return {} if reading in (None, record.idle_reading) else {"idle_reading": reading}


def seen_stopped_update(record: GuardRecord, state: InstanceState, now: datetime) -> dict[str, Any]:
    """``seen_stopped`` after a look: set when first seen stopped, cleared when billing."""
    stopped = state.status == "exited"
    if stopped and record.seen_stopped is None:
        return {"seen_stopped": now}
    if state.status in BILLED_STATUSES and record.seen_stopped is not None:
        return {"seen_stopped": None}
    return {}
