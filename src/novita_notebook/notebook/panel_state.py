"""What the live panel knows besides its rows: spend, whether its data is live, paused or
disconnected (and since when), and the guard warnings still open (gone once resolved).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .. import html, views
from ..models import BILLED_STATUSES, GONE_STATUSES, Instance, parse_time

_NOTICES = 4  # guard and spot facts shown, newest last
#: Guard events that report an action done (the warning before it is then resolved).
ACTIONS = ("guard.stopped", "guard.deleted", "guard.migrated", "guard.recreated")


class Spend(NamedTuple):
    """Spend over live instances: USD per hour now, USD so far over the instances whose start
    is known (None when none is), and the names of billed instances whose start is unknown."""

    per_hour: float
    so_far: float | None
    unknown: tuple[str, ...]


def spend_of(
    instances: list[Instance],
    now: datetime | None = None,
    starts: dict[str, datetime] | None = None,
) -> tuple[float, float]:
    """(USD per hour now, USD spent so far) over live instances: billed statuses count their
    price per hour; time so far runs from the last start (or creation, or ``starts[id]``, e.g.
    the ledger's creation time) to now. Instances with no known start add nothing."""
    spend = spend_detail(instances, now=now, starts=starts)
    return spend.per_hour, spend.so_far or 0.0


def spend_detail(
    instances: list[Instance],
    now: datetime | None = None,
    starts: dict[str, datetime] | None = None,
) -> Spend:
    """Like spend_of, but says which billed instances have no known start (cost unknown)."""
    now = now or datetime.now(UTC)
    starts = starts or {}
    per_hour = 0.0
    so_far: float | None = None
    unknown: list[str] = []
    for inst in instances:
        if inst.status not in BILLED_STATUSES:
            continue
        per_hour += inst.price_per_hour or 0.0
        spent = views.spent_so_far(inst, now=now, since=starts.get(inst.id))
        if spent is None:
            unknown.append(inst.name or inst.id)
        else:
            so_far = (so_far or 0.0) + spent
    return Spend(per_hour, so_far, tuple(unknown))


def summary_text(spend: Spend, live: int, current: bool = True) -> str:
    """``2 live · $0.72/h now · ≈$0.05 so far`` (+ which costs are unknown); "at the last
    read" instead of "now" when the data is not ``current`` (paused, disconnected)."""
    if spend.so_far is None:
        so_far = "so far: unknown" if spend.unknown else "nothing billed now"
    else:
        so_far = f"{html.approx_money(spend.so_far)} so far"
        if spend.unknown:
            so_far += f" (+ unknown for {', '.join(spend.unknown)})"
    when = "now" if current else "at the last read"
    return f"{live} live · {html.format_money(spend.per_hour, per_hour=True)} {when} · {so_far}"


class LedgerStarts:
    """Creation times the ledger recorded (the list view has none): each id is looked up
    once, so instances created elsewhere stay unknown cheaply."""

    def __init__(self, ledger: Callable[[], Any]) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._starts: dict[str, datetime] = {}
        self._looked: set[str] = set()

    def of(self, ids: list[str]) -> dict[str, datetime]:
        with self._lock:
            new = [i for i in ids if i not in self._looked]
            if new:
                self._looked.update(new)
                try:
                    entries = self._ledger().entries()
                except Exception:  # noqa: BLE001 - no ledger: costs stay unknown
                    entries = []
                for entry in entries:
                    created = parse_time(entry.get("created_at"))
                    if entry.get("id") in new and created is not None:
                        self._starts[entry["id"]] = created
            return dict(self._starts)


# -- live, paused, disconnected ---------------------------------------------------------------


class Connection:
    """Where the panel's data comes from now: ``live`` (the watcher's last look worked),
    ``paused`` (stopped by ``panel.stop()``; ``panel.start()`` resumes), ``disconnected``
    (the watcher's looks fail), or ``waiting`` (no look yet); with the last good read."""

    def __init__(self) -> None:
        self.last_read: datetime | None = None
        self.paused = False

    def read(self, now: datetime | None = None) -> None:
        """A look at the API worked (the watcher's tick hook)."""
        self.last_read = now or datetime.now(UTC)

    def state(self, watcher: Any) -> tuple[str, str]:
        """(state, the sentence that goes with it)."""
        last = (
            f"last good read {html.clock_time(self.last_read)}"
            if self.last_read is not None
            else "no good read yet"
        )
        if self.paused or watcher is None:
            return "paused", f"paused: not updating ({last}); panel.start() resumes"
        failing = getattr(watcher, "consecutive_errors", 0)
        if failing:
            error = getattr(watcher, "last_error", None)
            since = getattr(watcher, "last_error_time", None)
            why = getattr(error, "message", None) or str(error or "no answer")
            when = f" at {html.clock_time(since)}" if since is not None else ""
            return (
                "disconnected",
                f"disconnected: the API did not answer{when} ({why}); retrying; the rows show "
                f"the {last.replace('last good read', 'last good read at')}",
            )
        if self.last_read is None:
            return "waiting", "waiting for the first read"
        return "live", f"live: {last}"

    def badge(self, watcher: Any) -> str:
        state, words = self.state(watcher)
        phase = {"live": "running", "paused": "stopped", "disconnected": "failed"}.get(
            state, "provisioning"
        )
        return (
            f"<span class='novita-connection' data-state='{state}'>{html.badge(state, phase)} "
            f"<span style='color:{html.MUTED}'>{html.text(words.split(': ', 1)[-1])}</span></span>"
        )


# -- guard warnings and notices ----------------------------------------------------------------


class GuardNotices:
    """The guard and spot events a panel shows: open warnings (each until it is resolved: the
    warned action happened, the deadline was extended, the rule removed, the instance gone)
    and the latest facts (actions done, reclaim notices)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.warnings: dict[tuple[str, str], dict[str, Any]] = {}  # (id, rule) -> payload
        self.facts: deque[tuple[str, dict[str, Any]]] = deque(maxlen=_NOTICES)
        self.reclaims: dict[str, str] = {}  # id -> announced spot reclaim time

    def add(self, event_type: str, payload: dict[str, Any]) -> None:
        instance_id = str(payload.get("instanceId") or "")
        with self._lock:
            if event_type == "guard.warning":
                self.warnings[(instance_id, str(payload.get("rule") or ""))] = dict(payload)
                return
            if event_type in ACTIONS:
                self.resolve(instance_id)  # the warned action happened
            if event_type == "spot.reclaim_notice":
                when = payload.get("reclaim_time") or "soon"
                moment = _time(when)
                self.reclaims[instance_id] = html.clock_time(moment) if moment else str(when)
            self.facts.append((event_type, dict(payload)))

    def resolve(self, instance_id: str, rule: str | None = None) -> None:
        """The warnings of ``instance_id`` (of ``rule`` only, when given) are answered."""
        with self._lock:
            for key in [k for k in self.warnings if k[0] == instance_id]:
                if rule is None or key[1] == rule:
                    del self.warnings[key]

    def forget(self, instance_id: str) -> None:
        """The instance is gone: nothing about its future is worth showing."""
        with self._lock:
            self.resolve(instance_id)
            self.reclaims.pop(instance_id, None)
            kept = [(k, p) for k, p in self.facts if not _about(p, instance_id, k)]
            self.facts = deque(kept, maxlen=_NOTICES)

    def current(self) -> dict[str, Any] | None:
        """The newest open warning (what the Extend and Cancel buttons answer)."""
        with self._lock:
            return next(reversed(self.warnings.values()), None)

    def settle(self, instances: dict[str, Instance], rules_of: Callable[[str], Any]) -> bool:
        """Drop the warnings that no longer hold: the instance is gone or already stopped
        (for a stop), its rule removed, or its deadline moved past the warned time (extended
        elsewhere). ``rules_of(id)`` → the instance's GuardRules or None. True if any went."""
        changed = False
        with self._lock:
            for key, payload in list(self.warnings.items()):
                instance = instances.get(key[0])
                if instance is not None and instance.status in GONE_STATUSES:
                    self.forget(key[0])
                    changed = True
                elif _answered(payload, instance, rules_of(key[0])):
                    del self.warnings[key]
                    changed = True
            for instance_id in list(self.reclaims):
                instance = instances.get(instance_id)
                if instance is not None and instance.status in GONE_STATUSES:
                    self.forget(instance_id)
                    changed = True
        return changed

    def html(self, say: Callable[[str, dict[str, Any]], str]) -> str:
        with self._lock:
            shown = [("guard.warning", p) for p in self.warnings.values()] + list(self.facts)
        return "".join(views.notice(kind, say(kind, _readable(data))) for kind, data in shown)


def _about(payload: dict[str, Any], instance_id: str, kind: str) -> bool:
    """A fact about an instance's future (a reclaim notice) of a gone instance."""
    return kind == "spot.reclaim_notice" and str(payload.get("instanceId")) == instance_id


def _answered(payload: dict[str, Any], instance: Instance | None, rules: Any) -> bool:
    rule = str(payload.get("rule") or "")
    if rules is None:
        return True  # no longer guarded
    if payload.get("action") == "stop" and instance is not None and instance.phase == "stopped":
        return True
    attribute = {"idle": "idle_stop", "budget": "budget_total"}.get(rule, rule)
    if attribute and getattr(rules, attribute, "missing") is None:
        return True  # this rule was removed
    if rule in ("stop_after", "delete_after"):
        deadline = getattr(rules, rule, None)
        due = _time(payload.get("action_due") or payload.get("due"))
        return deadline is not None and due is not None and deadline > due
    return False


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _readable(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its times to the second (no microseconds in what people read)."""
    out = dict(payload)
    for key in ("action_due", "due", "reclaim_time"):
        if out.get(key) and _time(out[key]) is not None:
            out[key] = html.timestamp(out[key])
    return out
