"""The guard's pure decision logic: from the time, the rules and what is known of each instance,
a Plan of warnings and actions (stop, delete, migrate, recreate, notify) and the next wake-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..models import BILLED_STATUSES, GONE_STATUSES, parse_time
from .spend import spent_since_budget
from .store import GuardRecord

__all__ = [
    "InstanceState",
    "PlannedAction",
    "Plan",
    "decide",
    "DEFAULT_GRACE",
    "STOPPABLE_STATUSES",
]

#: How long a condition warning (idle, hourly budget) stands before the stop.
DEFAULT_GRACE = timedelta(seconds=30)
#: Utilisation samples older than this say nothing about now.
DEFAULT_METRICS_STALE = timedelta(minutes=5)
#: Statuses a stop request is accepted in (the others are waited out).
STOPPABLE_STATUSES = frozenset(
    {"pulling", "running", "toStart", "starting", "toRestart", "restarting"}
)
#: Statuses that will bill soon: an hourly budget counts them already.
PROVISIONING_STATUSES = frozenset({"pending", "toCreate", "creating"})
SPOT_NOTICE_STATUSES = frozenset({"notified", "reclaiming"})
#: A guarded id missing from the listing this soon after its rules were set is not yet gone.
UNLISTED_GRACE = timedelta(minutes=2)
#: Order in which actions due at the same moment run: announcements before acts.
KIND_ORDER = {"notify": 0, "warn": 1, "migrate": 2, "stop": 3, "delete": 4, "recreate": 5}


@dataclass(frozen=True)
class InstanceState:
    """What is known of an instance now. ``utilisation`` is None when metrics are not known
    (not fetched or unavailable: ``metrics_error`` says why), else ``(time, percent)`` pairs."""

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

    @classmethod
    def from_raw(
        cls,
        raw: Mapping[str, Any],
        record: GuardRecord | None = None,
        *,
        utilisation: Iterable[tuple[datetime, float]] | None = None,
        metrics_error: str | None = None,
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
        )


@dataclass(frozen=True)
class PlannedAction:
    """One step of a plan. ``key`` names this occurrence of the rule (claims and warnings
    use it, so each occurrence acts once); ``event`` is the announcement's event type."""

    instance_id: str
    kind: str
    rule: str
    reason: str
    due: datetime
    key: str
    name: str = ""
    event: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def is_due(self, now: datetime) -> bool:
        return self.due <= now

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "kind": self.kind,
            "rule": self.rule,
            "reason": self.reason,
            "due": self.due.isoformat(),
            "key": self.key,
            "event": self.event,
        }


@dataclass(frozen=True)
class Plan:
    """Actions (due and upcoming, in execution order), notes on rules that cannot act, the
    next wake-up, instances still needing a guard (``live``) and those gone from the API."""

    now: datetime
    actions: tuple[PlannedAction, ...] = ()
    notes: tuple[str, ...] = ()
    next_wake: datetime | None = None
    live: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()

    def due(self) -> list[PlannedAction]:
        return [a for a in self.actions if a.is_due(self.now)]

    def upcoming(self) -> list[PlannedAction]:
        return [a for a in self.actions if not a.is_due(self.now)]

    def next_action(self) -> PlannedAction | None:
        return min(self.actions, key=lambda a: a.due, default=None)


@dataclass
class _Builder:
    now: datetime
    grace: timedelta
    actions: list[PlannedAction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wakes: list[datetime] = field(default_factory=list)

    def add(
        self,
        state: InstanceState,
        kind: str,
        rule: str,
        reason: str,
        due: datetime,
        key: str,
        event: str | None = None,
        **data: Any,
    ) -> None:
        self.actions.append(
            PlannedAction(state.id, kind, rule, reason, due, key, state.name, event, data)
        )

    def wake(self, moment: datetime) -> None:
        if moment > self.now:
            self.wakes.append(moment)


def _episode(record: GuardRecord, rule: str, now: datetime, window: timedelta) -> tuple | None:
    """The latest warning of a condition rule given within ``window``: (key, warned at)."""
    current = [
        (key, at)
        for key, at in record.warned.items()
        if key.startswith(rule + ":") and now - at <= window
    ]
    return max(current, key=lambda item: item[1], default=None)


def _condition(
    b: _Builder,
    state: InstanceState,
    record: GuardRecord,
    rule: str,
    reason: str,
    window: timedelta,
    grace: timedelta,
) -> None:
    """A condition that holds now: warn at once, stop ``grace`` after the warning."""
    episode = _episode(record, rule, b.now, window)
    if episode is None:
        key = f"{rule}:{b.now.isoformat()}"
        b.add(
            state,
            "warn",
            rule,
            reason,
            b.now,
            key,
            "guard.warning",
            action="stop",
            action_due=(b.now + grace).isoformat(),
        )
        b.wake(b.now + grace)
        return
    key, warned_at = episode
    b.add(state, "stop", rule, reason, warned_at + grace, key)
    b.wake(warned_at + grace)


def _deadlines(b: _Builder, state: InstanceState, record: GuardRecord) -> None:
    rules = record.rules
    delete_at = rules.delete_after
    if delete_at is not None:
        lead = rules.warn_lead(delete_at)
        key = f"delete_after:{delete_at.isoformat()}"
        reason = f"delete_after deadline {delete_at:%Y-%m-%d %H:%M:%SZ}"
        _deadline(b, state, record, "delete_after", reason, delete_at, lead, key, "delete")
    stop_at = rules.stop_after
    if stop_at is None or (delete_at is not None and delete_at <= stop_at):
        return
    if state.status not in STOPPABLE_STATUSES:
        if state.status in PROVISIONING_STATUSES and stop_at <= b.now:
            b.notes.append(f"{state.id}: past its stop deadline, stopping once it can be stopped")
            b.wake(b.now + b.grace)
        return
    lead = rules.warn_lead(stop_at)
    key = f"stop_after:{stop_at.isoformat()}"
    reason = f"stop_after deadline {stop_at:%Y-%m-%d %H:%M:%SZ}"
    _deadline(b, state, record, "stop_after", reason, stop_at, lead, key, "stop")


def _deadline(
    b: _Builder,
    state: InstanceState,
    record: GuardRecord,
    rule: str,
    reason: str,
    deadline: datetime,
    lead: timedelta,
    key: str,
    kind: str,
) -> None:
    if key not in record.warned:
        warn_at = deadline - lead
        b.add(
            state,
            "warn",
            rule,
            reason,
            warn_at,
            key,
            "guard.warning",
            action=kind,
            action_due=deadline.isoformat(),
        )
        b.wake(warn_at)
    b.add(state, kind, rule, reason, deadline, key)
    b.wake(deadline)


def _idle(b: _Builder, state: InstanceState, record: GuardRecord, stale: timedelta) -> None:
    rules = record.rules
    if rules.idle_stop is None or state.status != "running":
        return
    if state.busy:
        b.notes.append(f"{state.id}: idle rule not acting: busy ({state.busy})")
        return
    samples = state.utilisation
    if samples is None:
        why = state.metrics_error or "no metrics"
        b.notes.append(f"{state.id}: idle rule not acting: GPU metrics unavailable ({why})")
        return
    samples = tuple(sorted((t, v) for t, v in samples if t <= b.now))
    if not samples or b.now - samples[-1][0] > stale:
        b.notes.append(f"{state.id}: idle rule not acting: no recent GPU utilisation sample")
        return
    threshold = rules.idle_threshold
    if samples[-1][1] >= threshold:
        return  # busy now: never stopped by the idle rule
    streak_start = samples[0][0]
    for (_, earlier), (moment, _) in zip(samples, samples[1:], strict=False):
        if earlier >= threshold:
            streak_start = moment
    since = max(filter(None, (streak_start, state.started_at, rules.set_at)))
    idle_until = since + rules.idle_stop
    if idle_until > b.now:
        b.wake(idle_until)
        return
    minutes = rules.idle_stop.total_seconds() / 60
    reason = f"GPU utilisation below {threshold:g} % for {minutes:g} min"
    _condition(b, state, record, "idle", reason, b.grace * 3 + timedelta(minutes=1), b.grace)


def _spot(b: _Builder, state: InstanceState, record: GuardRecord) -> None:
    status = state.spot_status
    reclaim = state.spot_reclaim_time
    if status not in SPOT_NOTICE_STATUSES and status != "terminated" and reclaim is None:
        return
    stamp = reclaim.isoformat() if reclaim else "unknown"
    key = f"spot:{stamp}"
    policy = record.rules.on_reclaim
    reason = f"spot reclaim notice (reclaim at {stamp}); on_reclaim={policy}"
    if status != "terminated":
        b.add(
            state,
            "notify",
            "spot",
            reason,
            b.now,
            key,
            "spot.reclaim_notice",
            spot_status=status,
            reclaim_time=stamp,
            on_reclaim=policy,
        )
    if policy == "migrate" and status in SPOT_NOTICE_STATUSES - {"reclaiming"}:
        b.add(state, "migrate", "spot", reason, b.now, key)
    elif policy == "recreate":
        if status in {"reclaiming", "terminated"}:
            b.add(state, "recreate", "spot", reason, b.now, key)
        elif reclaim is not None:
            b.add(state, "recreate", "spot", reason, reclaim, key)
            b.wake(reclaim)


def _newest_first(pool: list[tuple[InstanceState, GuardRecord]]) -> list:
    def created(pair: tuple[InstanceState, GuardRecord]) -> datetime:
        state, record = pair
        return state.created_at or record.created_at or record.rules.set_at

    return sorted(pool, key=created, reverse=True)


def _hourly_budget(b: _Builder, pairs: list[tuple[InstanceState, GuardRecord]]) -> None:
    """Hourly spend over the cap: warn, then stop the newest until under it."""
    hourly = [p for p in pairs if p[1].rules.budget_per_hour is not None]
    hourly = [p for p in hourly if p[0].status in BILLED_STATUSES | PROVISIONING_STATUSES]
    for state, _ in hourly:
        if state.price_per_hour is None:
            b.notes.append(f"{state.id}: price unknown, not counted by the hourly budget")
    if hourly:
        cap = min(p[1].rules.budget_per_hour for p in hourly)
        rate = sum(p[0].price_per_hour or 0.0 for p in hourly)
        for state, record in _newest_first(hourly):
            if rate <= cap + 1e-9:
                break
            rate -= state.price_per_hour or 0.0
            if state.status in STOPPABLE_STATUSES:
                reason = f"hourly spend over the {cap:g} USD/h budget (newest stopped first)"
                _condition(
                    b,
                    state,
                    record,
                    "budget_per_hour",
                    reason,
                    b.grace * 3 + timedelta(minutes=1),
                    b.grace,
                )


def _total_budget(b: _Builder, pairs: list[tuple[InstanceState, GuardRecord]]) -> None:
    """Warn ahead of the moment total spend reaches the cap; stop all, newest first, then."""
    total = [p for p in pairs if p[1].rules.budget_total is not None]
    total = [p for p in total if p[0].status in BILLED_STATUSES]
    if not total:
        return
    cap = min(p[1].rules.budget_total for p in total)
    # every stretch billed since the budget was set, not only this run (guard/spend.py)
    spent = sum(spent_since_budget(r, s, b.now) for s, r in total)
    rate = sum(s.price_per_hour or 0.0 for s, _ in total)
    if rate <= 0:
        return
    crossing = b.now + timedelta(hours=max(cap - spent, 0.0) / rate)
    reason = f"total spend reaches the {cap:g} USD budget (spent {spent:.2f} USD so far)"
    for state, record in _newest_first(total):
        if state.status not in STOPPABLE_STATUSES:
            continue
        lead = record.rules.warn_lead(max(crossing, record.rules.set_at + timedelta(seconds=1)))
        episode = _episode(record, "budget_total", b.now, lead + b.grace * 3 + timedelta(minutes=1))
        if episode is None and crossing - lead > b.now:
            b.wake(crossing - lead)
            continue
        if episode is None:
            key = f"budget_total:{b.now.isoformat()}"
            b.add(
                state,
                "warn",
                "budget_total",
                reason,
                b.now,
                key,
                "guard.warning",
                action="stop",
                action_due=max(crossing, b.now).isoformat(),
            )
            b.wake(crossing)
            continue
        b.add(state, "stop", "budget_total", reason, max(crossing, episode[1]), episode[0])
        b.wake(crossing)


def _guarded_since(record: GuardRecord) -> datetime:
    return max(filter(None, (record.rules.set_at, record.created_at)))


def _needs_guard(state: InstanceState, record: GuardRecord) -> bool:
    if state.status in GONE_STATUSES:
        return False
    if record.rules.delete_after is not None:
        return True
    return state.status in BILLED_STATUSES | PROVISIONING_STATUSES | {"toStart", "starting"}


def decide(
    now: datetime,
    records: Iterable[GuardRecord],
    states: Mapping[str, InstanceState],
    *,
    grace: timedelta = DEFAULT_GRACE,
    metrics_stale_after: timedelta = DEFAULT_METRICS_STALE,
) -> Plan:
    """The plan for ``now``. ``states`` maps instance id → InstanceState; a guarded id missing
    from it is gone (the API no longer lists it). Pure: no I/O, no clock of its own."""
    b = _Builder(now=now, grace=grace)
    live: list[str] = []
    gone: list[str] = []
    pairs: list[tuple[InstanceState, GuardRecord]] = []
    for record in records:
        state = states.get(record.id)
        if state is None and now - _guarded_since(record) < UNLISTED_GRACE:
            # A just-created instance may not be listed yet: keep it, do not forget its rules.
            live.append(record.id)
            b.notes.append(f"{record.id}: not listed yet")
            b.wake(now + grace)
            continue
        if state is None or state.status == "removed":
            gone.append(record.id)
            continue
        if _needs_guard(state, record):
            live.append(record.id)
        if state.status in GONE_STATUSES:
            continue
        pairs.append((state, record))
        _deadlines(b, state, record)
        _idle(b, state, record, metrics_stale_after)
        _spot(b, state, record)
    _hourly_budget(b, pairs)
    _total_budget(b, pairs)
    actions = sorted(b.actions, key=lambda a: (a.due, KIND_ORDER.get(a.kind, 9)))
    return Plan(
        now=now,
        actions=tuple(actions),
        notes=tuple(b.notes),
        next_wake=min(b.wakes, default=None),
        live=tuple(live),
        gone=tuple(gone),
    )
