"""The guard's hands: gather what is known (one list call, metrics only where an idle rule needs
them), decide, and carry out a plan under claims, logging and announcing every action.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ..errors import NotFoundError, NovitaError
from ..models import parse_time
from .policy import DEFAULT_GRACE, InstanceState, Plan, PlannedAction, decide
from .store import GuardRecord, GuardStore

__all__ = [
    "GuardBackend",
    "Enforcer",
    "TickResult",
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
#: A claim on an action lapses after this long (a crashed actor's claim is retried).
DEFAULT_CLAIM_TTL = 120.0
#: Extra history fetched before the idle window, so a streak can be seen to cover it.
METRICS_MARGIN = timedelta(minutes=2)


@runtime_checkable
class GuardBackend(Protocol):
    """What the guard needs of the cloud. Raw dicts are the API's own instance objects."""

    def list_instances(self) -> list[dict[str, Any]]: ...

    def stop(self, instance_id: str) -> None: ...

    def delete(self, instance_id: str) -> None: ...

    def migrate(self, instance_id: str) -> None: ...

    def metrics(self, instance_id: str, start: datetime, end: datetime) -> dict[str, Any]: ...

    def recreate(self, instance_id: str) -> str: ...

    def notify(self, event_type: str, data: Mapping[str, Any]) -> None: ...


def _percent(value: Any) -> float | None:
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
        moment, value = parse_time(item.get("timestamp")), _percent(item.get("value"))
        if moment is not None and value is not None:
            out.append((moment, value))
    return out


def read_gpu_utilisation(payload: Any) -> tuple[tuple[datetime, float], ...]:
    """GPU utilisation samples ``(time, percent)`` from a metrics response: ``gpuUtilization``
    ``{avg: [{timestamp, value}], gpuIds: [{gpuId, items: [...]}]}``. Without ``avg`` the
    per-GPU series are averaged per timestamp. Raises ValueError for another shape."""
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


def gather(
    backend: GuardBackend,
    records: list[GuardRecord],
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> dict[str, InstanceState]:
    """States of the guarded instances: ONE list call for all, plus one metrics call per
    running instance with an idle rule. A metrics failure becomes ``metrics_error``."""
    if not records:
        return {}
    by_id = {r.id: r for r in records}
    states: dict[str, InstanceState] = {}
    for raw in backend.list_instances():
        instance_id = str(raw.get("id") or raw.get("Id") or "")
        record = by_id.get(instance_id)
        if record is None:
            continue
        samples, error, source, busy = None, None, "metrics", None
        if record.rules.idle_stop is not None and raw.get("status") == "running":
            start = now - record.rules.idle_stop - grace * 2 - METRICS_MARGIN
            try:
                samples = read_gpu_utilisation(backend.metrics(instance_id, start, now))
            except (NovitaError, ValueError, OSError) as exc:
                error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            samples, error, source = _gpu_fallback(backend, instance_id, samples, error, source)
            busy = backend.busy(instance_id) if hasattr(backend, "busy") else None
        states[instance_id] = InstanceState.from_raw(
            raw, record, utilisation=samples, metrics_error=error, utilisation_source=source,
            busy=busy,
        )  # fmt: skip
    return states


def _gpu_fallback(
    backend: Any, instance_id: str, samples: Any, error: str | None, source: str
) -> tuple[Any, str | None, str]:
    """Without metric samples, the GPU's own reading over SSH when the backend has one."""
    if samples or not hasattr(backend, "gpu_utilisation"):
        return samples, error, source
    try:
        reading = backend.gpu_utilisation(instance_id)
    except (NovitaError, OSError) as exc:
        return samples, f"{error or 'no metric samples'}; nvidia-smi: {exc}", source
    return reading.samples, None, reading.source


def _files_note(api_url: str | None, action: PlannedAction) -> dict[str, str]:
    """A warning before a stop or delete names files written there since the last pull."""
    if action.kind != "warn" or action.data.get("action") not in ("stop", "delete") or not api_url:
        return {}
    from ..remote.unpulled import warning

    text = warning(api_url, action.instance_id, action.name, str(action.data["action"]))
    return {"unpulled": text} if text else {}


@dataclass
class TickResult:
    """One pass: the plan and what was done (``results``: one dict per attempted action)."""

    plan: Plan
    results: list[dict[str, Any]] = field(default_factory=list)


def default_actor(kind: str = "kernel") -> str:
    return f"{kind} pid {os.getpid()}"


class Enforcer:
    """Runs plans against a backend. Every action is first claimed in the store, so that
    several kernels and the guard process never act twice on one rule occurrence."""

    def __init__(
        self,
        backend: GuardBackend,
        store: GuardStore,
        *,
        actor: str | None = None,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        self.backend = backend
        self.store = store
        self.actor = actor or default_actor()
        self.claim_ttl = claim_ttl
        self.grace = grace

    def __repr__(self) -> str:
        return f"<Enforcer {self.actor} {self.store!r}>"

    def tick(self, now: datetime | None = None) -> TickResult:
        """Load rules, gather, decide and execute what is due."""
        now = now or datetime.now(UTC)
        records = self.store.records()
        return self.execute(self.plan(now, records))

    def plan(self, now: datetime, records: list[GuardRecord]) -> Plan:
        """Gather the states of ``records`` (one list call), note what each has cost so far
        (the total budget's count, in the store) and decide."""
        states = gather(self.backend, records, now, grace=self.grace)
        if any(r.rules.budget_total is not None for r in records):
            records = self.store.note_billing(states, now)
        return decide(now, records, states, grace=self.grace)

    def execute(self, plan: Plan) -> TickResult:
        result = TickResult(plan)
        for instance_id in plan.gone:
            if self.store.remove(instance_id):
                self.store.log_action(
                    instance_id, "forget", "the API no longer lists it", self.actor, "ok"
                )
        for action in plan.due():
            outcome = self._run(action, plan.now)
            if outcome is not None:
                result.results.append(outcome)
        return result

    # -- one action ----------------------------------------------------------------------------
    def _run(self, action: PlannedAction, now: datetime) -> dict[str, Any] | None:
        claim = f"{action.kind}:{action.key}"
        if not self.store.claim(action.instance_id, claim, self.actor, self.claim_ttl):
            return None
        if action.kind in ("warn", "notify"):
            result = self._announce(action, **_files_note(self.store.api_url, action))
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
        except NovitaError as exc:
            # The claim stays until it expires: the retry waits claim_ttl, not one tick.
            log.warning("guard: %s %s failed: %s", action.kind, action.instance_id, exc.message)
            return f"failed: {exc.message}"
        self.store.complete(action.instance_id, claim, self.actor)
        extra = {"newInstanceId": new_id} if new_id else {}
        if new_id:
            self.store.move(action.instance_id, new_id)
        self._announce(action, EVENT_OF_KIND[action.kind], **extra)
        return "done" if not new_id else f"done: {new_id}"

    def _call(self, action: PlannedAction) -> str | None:
        if action.kind == "stop":
            self.backend.stop(action.instance_id)
        elif action.kind == "delete":
            self.backend.delete(action.instance_id)
        elif action.kind == "migrate":
            self.backend.migrate(action.instance_id)
        elif action.kind == "recreate":
            return self.backend.recreate(action.instance_id)
        else:
            raise ValueError(f"unknown action kind {action.kind!r}")
        return None
