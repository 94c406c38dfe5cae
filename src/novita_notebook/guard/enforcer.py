"""The guard's hands: gather what is known (one list call; a read by id for any guarded instance
the listing leaves out; metrics only where an idle rule needs them), decide, and carry out the
plan under claims, confirming every stop and delete by reading the instance again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ..errors import NotFoundError, NovitaError
from ..models import GONE_STATUSES, parse_time
from . import units
from .intents import bind_listed
from .policy import DEFAULT_GRACE, InstanceState, Plan, PlannedAction, decide
from .store import GuardRecord, GuardStore

__all__ = [
    "GuardBackend",
    "Enforcer",
    "TickResult",
    "Sight",
    "read_gpu_utilisation",
    "gather",
    "EVENT_OF_KIND",
]

log = logging.getLogger(__name__)

#: Webhook / notebook event announced after each kind of action succeeds.
EVENT_OF_KIND = {
    "stop": "guard.stopped",
    "delete": "guard.deleted",
    "migrate": "guard.migrated",
    "recreate": "guard.recreated",
}
#: A claim on an action lapses after this long if its holder is stuck or on another host
#: (a holder process found dead on this host loses it at once).
DEFAULT_CLAIM_TTL = 120.0
#: Extra history fetched before the idle window, so a streak can be seen to cover it.
METRICS_MARGIN = timedelta(minutes=2)
#: A guarded id the API does not know this soon after its rules were set may not be listed
#: or readable yet: it is not gone.
UNLISTED_GRACE = timedelta(minutes=2)
#: Statuses that show a stop or a delete took (the instance is on its way).
TAKEN = {
    "stop": frozenset({"toStop", "stopping", "exited"}) | GONE_STATUSES,
    "delete": GONE_STATUSES,
}
#: How often a stop or delete is sent and checked in one tick before it counts as failed.
ACT_ATTEMPTS = 3
#: A failure is announced (``guard.failed``) at most this often per rule occurrence.
FAILED_REPEAT = 600.0


@runtime_checkable
class GuardBackend(Protocol):
    """What the guard needs of the cloud. Raw dicts are the API's own instance objects."""

    def list_instances(self) -> list[dict[str, Any]]: ...

    def get_instance(self, instance_id: str) -> dict[str, Any]: ...

    def stop(self, instance_id: str) -> None: ...

    def delete(self, instance_id: str) -> None: ...

    def migrate(self, instance_id: str) -> None: ...

    def metrics(self, instance_id: str, start: datetime, end: datetime) -> dict[str, Any]: ...

    def recreate(self, instance_id: str) -> str: ...

    def notify(self, event_type: str, data: Mapping[str, Any]) -> None: ...


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is no sample


def _series(items: Any) -> list[tuple[datetime, float]]:
    out = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        try:
            moment = parse_time(item.get("timestamp"))
        except (OverflowError, ValueError, OSError):
            continue
        value = _number(item.get("value"))
        if moment is not None and value is not None:
            out.append((moment, value))
    return out


def read_gpu_utilisation(payload: Any) -> tuple[tuple[datetime, float], ...]:
    """GPU utilisation samples ``(time, value)`` from a metrics response: ``gpuUtilization``
    ``{avg: [{timestamp, value}], gpuIds: [{gpuId, items: [...]}]}``, in the API's unit
    (guard/units.py). Without ``avg`` the per-GPU series are averaged per timestamp. Raises
    ValueError for another shape."""
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), Mapping):
        payload = payload["data"]  # a wrapped variant
    if not isinstance(payload, Mapping) or not isinstance(payload.get("gpuUtilization"), Mapping):
        raise ValueError("the metrics response has no gpuUtilization object")
    gpu = payload["gpuUtilization"]
    average = _series(gpu.get("avg"))
    if not average:
        per_time: dict[datetime, list[float]] = {}
        for entry in gpu.get("gpuIds") or ():
            if isinstance(entry, Mapping):
                for moment, value in _series(entry.get("items")):
                    per_time.setdefault(moment, []).append(value)
        average = [(t, sum(v) / len(v)) for t, v in per_time.items()]
    return tuple(sorted(average))


@dataclass
class Sight:
    """What one look found: the states of the guarded instances, the ids a read by id found
    gone, notes on what could not be seen, and the raw listing (for intents)."""

    states: dict[str, InstanceState] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    raws: list[dict[str, Any]] = field(default_factory=list)


def _guarded_since(record: GuardRecord) -> datetime:
    return max(filter(None, (record.rules.set_at, record.created_at)))


def _state(
    backend: GuardBackend,
    raw: dict[str, Any],
    record: GuardRecord,
    now: datetime,
    grace: timedelta,
    metrics_unit: str | None = None,
) -> InstanceState:
    """The state of one guarded instance, with its GPU utilisation when an idle rule needs it
    (the metrics; the GPU's own reading over SSH when they fail, or while their unit is not
    known and this answer does not prove it) and what keeps it busy."""
    samples, error, peak, source, busy = None, None, None, "metrics", None
    if record.rules.idle_stop is not None and raw.get("status") == "running":
        start = now - record.rules.idle_stop - grace * 2 - METRICS_MARGIN
        try:
            payload = backend.metrics(record.id, start, now)
            samples, peak = read_gpu_utilisation(payload), units.utilisation_peak(payload)
        except (NovitaError, ValueError, OSError) as exc:
            error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        unverified = metrics_unit is None and not (peak is not None and peak > 1.0)
        samples, error, source = _gpu_fallback(
            backend, record.id, samples, error, source, unverified=bool(samples) and unverified
        )
        busy = backend.busy(record.id) if hasattr(backend, "busy") else None
    return InstanceState.from_raw(
        raw, record, utilisation=samples, metrics_error=error, utilisation_peak=peak,
        utilisation_source=source, busy=busy,
    )  # fmt: skip


def _read_unlisted(
    backend: GuardBackend, record: GuardRecord, now: datetime, sight: Sight
) -> dict[str, Any] | None:
    """A guarded instance the listing left out, read by id: its raw object, or None (gone
    once the API says it does not know it, past UNLISTED_GRACE; unseen otherwise)."""
    try:
        return backend.get_instance(record.id)
    except NotFoundError:
        if now - _guarded_since(record) >= UNLISTED_GRACE:
            sight.gone.add(record.id)
        else:
            sight.notes.append(f"{record.id}: not known to the API yet")
    except NovitaError as exc:
        sight.notes.append(f"{record.id}: not listed, and a read by id failed ({exc.message})")
    return None


def gather(
    backend: GuardBackend,
    records: list[GuardRecord],
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    listing: list[dict[str, Any]] | None = None,
    metrics_unit: str | None = None,
) -> Sight:
    """What is known of the guarded instances: ONE list call for all (or ``listing``), one
    read by id per guarded instance the listing leaves out (nothing is taken as gone on one
    listing's word), one metrics call per running instance with an idle rule (and its GPUs
    read over SSH while ``metrics_unit``, the unit known so far, is None). One instance that
    cannot be read never hides the others."""
    sight = Sight()
    if not records:
        return sight
    sight.raws = backend.list_instances() if listing is None else listing
    listed = {str(raw.get("id") or raw.get("Id") or ""): raw for raw in sight.raws}
    for record in records:
        raw = listed.get(record.id)
        if raw is None:
            raw = _read_unlisted(backend, record, now, sight)
        if raw is None:
            continue
        try:
            sight.states[record.id] = _state(backend, raw, record, now, grace, metrics_unit)
        except Exception as exc:  # noqa: BLE001 - one odd instance must not blind the guard
            sight.notes.append(f"{record.id}: could not be read ({type(exc).__name__}: {exc})")
    return sight


def _gpu_fallback(
    backend: Any,
    instance_id: str,
    samples: Any,
    error: str | None,
    source: str,
    *,
    unverified: bool = False,
) -> tuple[Any, str | None, str]:
    """The GPU's own reading over SSH (in percent) when the backend has one: without metric
    samples, or with samples in a unit not yet known (``unverified``; should the reading fail
    then, the samples stay and the policy says the unit is unknown)."""
    if (samples and not unverified) or not hasattr(backend, "gpu_utilisation"):
        return samples, error, source
    try:
        reading = backend.gpu_utilisation(instance_id)
    except (NovitaError, OSError) as exc:
        if unverified:
            return samples, error, source
        return samples, f"{error or 'no metric samples'}; nvidia-smi: {exc}", source
    return reading.samples, None, reading.source


def _remote_notes(api_url: str | None, action: PlannedAction) -> dict[str, str]:
    """A warning before a stop or delete names what would be lost there: the runs and kernel
    cells still going (``busy``) and files written since the last pull (``unpulled``)."""
    if action.kind != "warn" or action.data.get("action") not in ("stop", "delete") or not api_url:
        return {}
    from ..remote.activity import what_keeps_busy
    from ..remote.unpulled import warning

    notes: dict[str, str] = {}
    going = what_keeps_busy(api_url, action.instance_id)
    if going:
        notes["busy"] = f"Still going there, and ended by the {action.data['action']}: {going}."
    text = warning(api_url, action.instance_id, action.name, str(action.data["action"]))
    if text:
        notes["unpulled"] = text
    return notes


@dataclass
class TickResult:
    """One pass: the plan and what was done (``results``: one dict per attempted action)."""

    plan: Plan
    results: list[dict[str, Any]] = field(default_factory=list)


class NotConfirmed(Exception):
    """A stop or delete was sent but a read of the instance shows it did not take."""


def default_actor(kind: str = "kernel") -> str:
    return f"{kind} pid {os.getpid()}"


class Enforcer:
    """Runs plans against a backend. Every action is first claimed in the store, so that
    several kernels and the guard process never act twice on one rule occurrence; a stop or
    delete counts as done only once a read of the instance shows it took. ``pid`` is the
    process holding the claims (a dead holder's claims lapse at once); ``clock``, when
    given, is read again after gathering: the decision is taken at that moment."""

    def __init__(
        self,
        backend: GuardBackend,
        store: GuardStore,
        *,
        actor: str | None = None,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        grace: timedelta = DEFAULT_GRACE,
        confirm_pause: float | None = None,
        pid: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.backend = backend
        self.store = store
        self.actor = actor or default_actor()
        self.claim_ttl = claim_ttl
        self.grace = grace
        default_pause = min(1.0, grace.total_seconds() / 20)
        self.confirm_pause = default_pause if confirm_pause is None else confirm_pause
        self.pid = os.getpid() if pid is None else pid
        # with a clock, a tick decides at the moment gathering ended (a deadline that came
        # while the listing was read is acted on in the same tick)
        self.clock = clock
        self.gather_seconds = 0.0
        self._unit: str | None = None

    def __repr__(self) -> str:
        return f"<Enforcer {self.actor} {self.store!r}>"

    @property
    def unit(self) -> str | None:
        """The metrics unit this enforcer knows (None until known)."""
        return self._unit

    def tick(self, now: datetime | None = None) -> TickResult:
        """Load rules, gather, decide and execute what is due."""
        now = now or datetime.now(UTC)
        return self.execute(self.plan(now, self.store.records()))

    def plan(
        self,
        now: datetime,
        records: list[GuardRecord],
        listing: list[dict[str, Any]] | None = None,
    ) -> Plan:
        """Gather the states of ``records`` (one list call, or ``listing``), bind intents
        the listing resolves, note what the store keeps of each instance and decide."""
        started = time.monotonic()
        intents = self.store.intents()
        if listing is None:
            listing = self.backend.list_instances() if records or intents else []
        known = self.metrics_unit({})
        sight = gather(self.backend, records, now, grace=self.grace, listing=listing,
                       metrics_unit=known)  # fmt: skip
        if intents:
            bound = bind_listed(self.store, intents, listing, now, self.actor)
            if bound:
                extra = gather(self.backend, bound, now, grace=self.grace, listing=listing,
                               metrics_unit=known)  # fmt: skip
                sight.states.update(extra.states)
                sight.gone |= extra.gone
        if self.clock is not None:
            now = max(now, self.clock())
        self.gather_seconds = time.monotonic() - started
        records = self.store.note_states(sight.states, now)
        plan = decide(now, records, sight.states, gone=sight.gone, grace=self.grace,
                      metrics_unit=self.metrics_unit(sight.states))  # fmt: skip
        if sight.notes:
            plan = dataclasses.replace(plan, notes=(*plan.notes, *sight.notes))
        return plan

    def metrics_unit(self, states: Mapping[str, InstanceState]) -> str | None:
        """The unit of utilisation values: the user's word, else what this store learned,
        else the evidence in ``states`` (then learned), else None (unknown)."""
        given = units.unit_from_env()
        if given is not None:
            return given
        if self._unit is None:
            learned = self.store.learned(units.LEARNED_KEY)
            if learned is not None and learned.get("unit") in units.UNITS:
                self._unit = str(learned["unit"])
        if self._unit is None:
            found = units.evidence(states.values())
            if found is not None:
                self.store.learn(units.LEARNED_KEY, found)
                self._unit = str(found["unit"])
        return self._unit

    def execute(self, plan: Plan) -> TickResult:
        result = TickResult(plan)
        for instance_id in plan.gone:
            if self.store.remove(instance_id):
                self.store.log_action(
                    instance_id, "forget", "a read by id: the API no longer knows it",
                    self.actor, "ok",
                )  # fmt: skip
        for instance_id, rule, message in plan.errors:
            self._escalate(instance_id, f"rule:{rule}", rule, f"the {rule} rule failed: {message}")
        for action in plan.due():
            try:
                outcome = self._run(action, plan.now)
            except Exception as exc:  # noqa: BLE001 - one action failing never stops the others
                log.warning("guard: %s %s failed: %r", action.kind, action.instance_id, exc)
                outcome = {"instance_id": action.instance_id, "kind": action.kind,
                           "result": f"failed: {type(exc).__name__}"}  # fmt: skip
            if outcome is not None:
                result.results.append(outcome)
        return result

    # -- one action ----------------------------------------------------------------------------
    def _run(self, action: PlannedAction, now: datetime) -> dict[str, Any] | None:
        claim = f"{action.kind}:{action.key}"
        if not self.store.claim(action.instance_id, claim, self.actor, self.claim_ttl,
                                pid=self.pid):  # fmt: skip
            return None
        if action.kind in ("warn", "notify", "caution"):
            result = self._announce(action, **_remote_notes(self.store.api_url, action))
            if action.kind == "warn":
                self.store.mark_warned(action.instance_id, action.key, now)
            self.store.complete(action.instance_id, claim, self.actor)
        else:
            result = self._act(action, claim)
        self.store.log_action(
            action.instance_id,
            action.kind,
            action.reason,
            self.actor,
            result,
            rule=action.rule,
            key=action.key,
            name=action.name,
        )
        return {"instance_id": action.instance_id, "kind": action.kind, "result": result}

    def _payload(self, action: PlannedAction, **extra: Any) -> dict[str, Any]:
        return {
            "instanceId": action.instance_id,
            "name": action.name,
            "rule": action.rule,
            "reason": action.reason,
            "actor": self.actor,
            **{k: v for k, v in action.data.items()},
            **extra,
        }

    def _announce(self, action: PlannedAction, event: str | None = None, **extra: Any) -> str:
        event = event or action.event or "guard.warning"
        try:
            self.backend.notify(event, self._payload(action, **extra))
        except Exception as exc:  # an announcement failing must not stop the guard
            log.warning("guard: could not announce %s for %s: %s", event, action.instance_id, exc)
            return f"announce failed: {type(exc).__name__}"
        return "announced"

    def _act(self, action: PlannedAction, claim: str) -> str:
        try:
            new_id = self._call(action)
        except NotFoundError:
            self.store.complete(action.instance_id, claim, self.actor)
            return "gone"
        except (NovitaError, NotConfirmed) as exc:
            message = getattr(exc, "message", None) or str(exc)
            # Given back at once: the next tick (of any guard) tries again.
            self.store.release(action.instance_id, claim, self.actor)
            self._escalate(action.instance_id, claim, action.rule,
                           f"{action.kind} failed: {message}", action)  # fmt: skip
            return f"failed: {message}"
        self.store.complete(action.instance_id, claim, self.actor)
        extra = {"newInstanceId": new_id} if new_id else {}
        if new_id:
            self.store.move(action.instance_id, new_id)
        self._announce(action, EVENT_OF_KIND[action.kind], **extra)
        return "done" if not new_id else f"done: {new_id}"

    def _escalate(
        self,
        instance_id: str,
        key: str,
        rule: str,
        message: str,
        action: PlannedAction | None = None,
    ) -> None:
        """Announce a failure: a ``guard.failed`` event and a warning, at most once per
        FAILED_REPEAT per occurrence across guards (a claim that is never completed)."""
        log.warning("guard: %s: %s", instance_id, message)
        if not self.store.claim(instance_id, f"failed:{key}", self.actor, FAILED_REPEAT,
                                pid=self.pid):  # fmt: skip
            return
        payload = {
            "instanceId": instance_id,
            "name": action.name if action else "",
            "rule": rule,
            "reason": message,
            "actor": self.actor,
        }
        try:
            self.backend.notify("guard.failed", payload)
        except Exception as exc:  # noqa: BLE001 - the failure is in the log either way
            log.warning("guard: could not announce a failure for %s: %s", instance_id, exc)
        self.store.log_action(instance_id, "failed", message, self.actor, "announced", rule=rule)

    def _call(self, action: PlannedAction) -> str | None:
        if action.kind in ("stop", "delete"):
            self._confirmed(action)
        elif action.kind == "migrate":
            self.backend.migrate(action.instance_id)
        elif action.kind == "recreate":
            return self.backend.recreate(action.instance_id)
        else:
            raise ValueError(f"unknown action kind {action.kind!r}")
        return None

    def _confirmed(self, action: PlannedAction) -> None:
        """Send a stop or delete and read the instance again until it shows it took; sent
        again up to ACT_ATTEMPTS times. NotFoundError: gone already; NotConfirmed: did not take."""
        send = self.backend.stop if action.kind == "stop" else self.backend.delete
        taken = TAKEN[action.kind]
        problem = ""
        for attempt in range(ACT_ATTEMPTS):
            if attempt:
                time.sleep(self.confirm_pause)
            try:
                send(action.instance_id)
            except NotFoundError:
                raise
            except NovitaError as exc:  # e.g. already stopping: the read below tells
                problem = exc.message
            try:
                status = str(self.backend.get_instance(action.instance_id).get("status") or "")
            except NotFoundError:
                if action.kind == "delete":
                    return
                raise
            except NovitaError as exc:
                problem = f"the {action.kind} could not be checked ({exc.message})"
                continue
            if status in taken:
                return
            problem = f"still {status or 'in an unknown status'} after the {action.kind} request"
            if problem and attempt == ACT_ATTEMPTS - 1:
                break
        raise NotConfirmed(problem)
