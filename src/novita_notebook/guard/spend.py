"""What a guarded instance has cost since its total budget was set, across stops and starts:
the guard's ticks see each billed stretch begin and end, and closed stretches add up in the store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..models import BILLED_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    from .records import GuardRecord, InstanceState

__all__ = ["SEEN_EVERY", "billing_update", "counting_start", "recorded_spend", "spent_since_budget"]

#: A stretch still billing is noted again at most this often: a store write on every tick of
#: every guard would be churn, and a stretch that ends unseen loses at most this much.
SEEN_EVERY = timedelta(seconds=60)


def counting_start(record: GuardRecord) -> datetime:
    """When the total budget began counting: when it was first set (or set again with
    ``replace=True``); records stored before that was kept count from their rules' ``set_at``."""
    return record.budget_since or record.rules.set_at


def _hours(span: timedelta) -> float:
    return max(span.total_seconds(), 0.0) / 3600.0


def _price(record: GuardRecord, state: InstanceState) -> float:
    return state.price_per_hour or record.price_per_hour or 0.0


def _restarted(record: GuardRecord, state: InstanceState) -> bool:
    """Stopped and started again between two looks at a stretch still open: the API's start
    is newer than the last look that saw it billing."""
    seen = record.billed_seen
    return (
        record.billed_since is not None
        and state.started_at is not None
        and seen is not None
        and state.started_at > seen
    )


def _stretch_start(record: GuardRecord, state: InstanceState, now: datetime) -> datetime:
    """When the billing seen now began: the API's start time, else the instance's creation
    for the first stretch, else this look; never before counting started, nor before the
    end of the stretch counted last (clocks that disagree must not count a moment twice)."""
    first = record.spent == 0 and record.billed_seen is None
    begun = state.started_at or (state.created_at if first else None) or now
    floors = [counting_start(record), *filter(None, [record.billed_seen])]
    return min(max(begun, *floors), now)


def _stretch_end(
    record: GuardRecord, state: InstanceState, since: datetime, now: datetime
) -> datetime:
    """When a stretch that is over ended: the API's stop time when it falls after the last
    look that saw it billing (and before the restart, if any), else that look (at most
    ``SEEN_EVERY`` plus a tick early)."""
    seen = record.billed_seen or since
    latest = state.started_at if _restarted(record, state) else now
    stopped = state.stopped_at
    if stopped is not None and latest is not None and seen < stopped <= latest:
        return stopped
    return seen


def spent_since_budget(record: GuardRecord, state: InstanceState, now: datetime) -> float:
    """USD billed since the total budget began counting: the closed stretches the store
    holds, plus the one billing now (from its start up to ``now``)."""
    total = record.spent
    if state.status in BILLED_STATUSES:
        open_since = record.billed_since
        if open_since is None or _restarted(record, state):
            open_since = _stretch_start(record, state, now)
        total += _price(record, state) * _hours(now - open_since)
    return total


def billing_update(record: GuardRecord, state: InstanceState, now: datetime) -> dict[str, Any]:
    """The record's bookkeeping after seeing ``state`` at ``now``: ``spent``,
    ``billed_since`` and ``billed_seen`` (the stretch billing now, or the end of the one
    counted last); {} when nothing changed (no write needed)."""
    original = record
    spent, since, seen = record.spent, record.billed_since, record.billed_seen
    billed = state.status in BILLED_STATUSES
    if since is not None and (not billed or _restarted(record, state)):
        seen = _stretch_end(record, state, since, now)  # counted up to here
        spent += _price(record, state) * _hours(seen - since)
        record = replace(record, spent=spent, billed_since=None, billed_seen=seen)
        since = None
    if billed and since is None:
        since, seen = _stretch_start(record, state, now), now
    elif billed and (seen is None or now - seen >= SEEN_EVERY):
        seen = now
    new = {"spent": spent, "billed_since": since, "billed_seen": seen}
    return {name: value for name, value in new.items() if value != getattr(original, name)}


def recorded_spend(record: GuardRecord, now: datetime) -> float:
    """USD counted against the total budget as the store knows it: the stretches that are
    over, plus the one the last look saw billing, up to ``now`` (no listing needed)."""
    total = record.spent
    if record.billed_since is not None:
        total += (record.price_per_hour or 0.0) * _hours(now - record.billed_since)
    return total
