"""The guard's pure decision logic: from the time, the rules and what is known of each instance,
a Plan of warnings and actions (stop, delete, migrate, recreate, notify) and the next wake-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..models import BILLED_STATUSES, GONE_STATUSES
from ..money import format_money
from .records import GuardRecord, InstanceState
from .rules import MAX_SPAN
from .spend import spent_since_budget

__all__ = [
    "InstanceState",
    "PlannedAction",
    "Plan",
    "decide",
    "DEFAULT_GRACE",
    "STOPPABLE_STATUSES",
    "KEEP_STOPPED",
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
#: How long the guard keeps watching a stopped guarded instance (it may be started again by
#: anyone, even from the web console): a stopped instance keeps its data 7 days at most.
KEEP_STOPPED = timedelta(days=7)
#: Order in which actions due at the same moment run: announcements before acts.
KIND_ORDER = {
    "notify": 0,
    "caution": 1,
    "warn": 1,
    "migrate": 2,
    "stop": 3,
    "delete": 4,
    "recreate": 5,
}
#: What the idle rule says while it cannot act because the metrics unit is not known.
UNIT_UNKNOWN = (
    "the unit of GPU utilisation is not known yet (every value seen lies within 0-1: "
    "fractions, or percentages of an idle GPU), so the idle rule warns and does not stop"
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
    next wake-up, instances still needing a guard (``live``), those confirmed gone, and the
    rules that failed (``errors``: instance id, rule, why)."""

    now: datetime
    actions: tuple[PlannedAction, ...] = ()
    notes: tuple[str, ...] = ()
    next_wake: datetime | None = None
    live: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    errors: tuple[tuple[str, str, str], ...] = ()

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
    errors: list[tuple[str, str, str]] = field(default_factory=list)

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


def _idle(
    b: _Builder,
    state: InstanceState,
    record: GuardRecord,
    stale: timedelta,
    unit: str | None,
) -> None:
    rules = record.rules
    if rules.idle_stop is None or state.status != "running":
        return
    if state.busy:  # a remote kernel running a cell, a run still running: never idle
        b.notes.append(f"{state.id}: idle rule not acting: busy ({state.busy})")
        return
    samples = state.utilisation
    if samples is None:
        why = state.metrics_error or "no metrics"
        b.notes.append(f"{state.id}: idle rule not acting: GPU metrics unavailable ({why})")
        return
    if state.utilisation_source != "metrics":
        unit = "percent"  # the GPU's own report (nvidia-smi over SSH) is in percent
    if unit not in ("percent", "fraction"):
        b.notes.append(f"{state.id}: idle rule not acting: {UNIT_UNKNOWN}")
        b.add(state, "caution", "idle", UNIT_UNKNOWN, b.now, "idle-unit", "guard.warning",
              action="none")  # fmt: skip
        return
    scale = 100.0 if unit == "fraction" else 1.0
    samples = tuple(sorted((t, v * scale) for t, v in samples if t <= b.now))
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
                reason = (
                    f"hourly spend over the {format_money(cap, per_hour=True)} budget "
                    "(newest stopped first)"
                )
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
    # never further ahead than a rule can reach: no price or cap makes the time overflow
    hours = min(max(cap - spent, 0.0) / rate, MAX_SPAN.total_seconds() / 3600)
    crossing = b.now + timedelta(hours=hours)
    reason = (
        f"total spend reaches the {format_money(cap)} budget ({format_money(spent)} spent so far)"
    )
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


def _may_act_when_started(record: GuardRecord, now: datetime) -> bool:
    """Could a rule act if the (stopped) instance were started again now?"""
    rules = record.rules
    if rules.stop_after is not None and rules.stop_after > now:
        return True
    return any(
        value is not None for value in (rules.idle_stop, rules.budget_per_hour, rules.budget_total)
    ) or (rules.on_reclaim != "notify")


def _keeps_guard(state: InstanceState, record: GuardRecord, now: datetime) -> bool:
    """Does this instance keep the guard process running? While it bills or provisions; while
    a delete deadline is pending; and while it is stopped, for KEEP_STOPPED after it was
    first seen stopped, if a rule could act once anyone starts it again."""
    if state.status in GONE_STATUSES:
        return False
    if record.rules.delete_after is not None:
        return True
    if state.status != "exited":
        return True
    recent = record.seen_stopped is None or now - record.seen_stopped < KEEP_STOPPED
    return recent and _may_act_when_started(record, now)


def _isolated(b: _Builder, instance_id: str, rule: str, step: Callable[[], None]) -> None:
    """Run one rule of one instance; if it fails, say which and why and go on with the rest."""
    try:
        step()
    except Exception as error:  # noqa: BLE001 - one bad rule must never disable the others
        message = f"{type(error).__name__}: {error}"
        b.notes.append(f"{instance_id}: the {rule} rule failed ({message}); not enforced")
        b.errors.append((instance_id, rule, message))


def decide(
    now: datetime,
    records: Iterable[GuardRecord],
    states: Mapping[str, InstanceState],
    *,
    gone: Iterable[str] = (),
    grace: timedelta = DEFAULT_GRACE,
    metrics_stale_after: timedelta = DEFAULT_METRICS_STALE,
    metrics_unit: str | None = None,
) -> Plan:
    """The plan for ``now``. ``states`` maps instance id → InstanceState; ``gone`` holds the
    ids a read by id found gone (a guarded id missing from both is unseen: kept, never
    forgotten). ``metrics_unit`` is ``percent``, ``fraction`` or None (unknown: the idle
    rule warns and does not stop; samples the GPU itself reported over SSH are percentages
    whatever it is). Each rule of each instance is decided on its own: one that fails is
    named in ``notes``/``errors`` and the others still act. Pure: no I/O, no clock."""
    b = _Builder(now=now, grace=grace)
    confirmed_gone = set(gone)
    live: list[str] = []
    gone_ids: list[str] = []
    pairs: list[tuple[InstanceState, GuardRecord]] = []
    for record in records:
        state = states.get(record.id)
        if record.id in confirmed_gone or (state is not None and state.status == "removed"):
            gone_ids.append(record.id)
            continue
        if state is None:
            # Not seen (a listing left it out and no read by id answered): keep its rules.
            live.append(record.id)
            b.notes.append(f"{record.id}: not seen this tick; its rules are kept")
            b.wake(now + grace)
            continue
        if _keeps_guard(state, record, now):
            live.append(record.id)
        if state.status in GONE_STATUSES:
            continue
        pairs.append((state, record))
        _isolated(b, record.id, "deadline", lambda s=state, r=record: _deadlines(b, s, r))
        _isolated(b, record.id, "idle", lambda s=state, r=record: _idle(
            b, s, r, metrics_stale_after, metrics_unit))  # fmt: skip
        _isolated(b, record.id, "spot", lambda s=state, r=record: _spot(b, s, r))
    _isolated(b, "budget", "budget_per_hour", lambda: _hourly_budget(b, pairs))
    _isolated(b, "budget", "budget_total", lambda: _total_budget(b, pairs))
    actions = sorted(b.actions, key=lambda a: (a.due, KIND_ORDER.get(a.kind, 9)))
    return Plan(
        now=now,
        actions=tuple(actions),
        notes=tuple(b.notes),
        next_wake=min(b.wakes, default=None),
        live=tuple(live),
        gone=tuple(gone_ids),
        errors=tuple(b.errors),
    )
