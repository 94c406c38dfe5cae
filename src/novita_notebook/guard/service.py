"""The guard as the client composes it: rules at create and on running instances, extend and
unguard, the guard process started by itself, and in-kernel enforcement through a watcher hook.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import NotFoundError, NovitaError, ValidationError
from ..html import timestamp
from ..models import GONE_STATUSES
from ..money import format_money
from .enforcer import default_actor
from .events import event_text
from .host import GuardHost
from .intents import CreateGuard
from .rules import GuardRules, autostart_enabled, rules_from_env
from .spend import recorded_spend
from .spot import SpotWatch, with_spot_details
from .store import GuardRecord, GuardStore

__all__ = ["GuardService", "RULE_ARGS", "GuardStatus"]

log = logging.getLogger(__name__)

#: The rule keywords create(), guard() and the magics take.
RULE_ARGS = (
    "stop_after",
    "delete_after",
    "idle_stop",
    "idle_threshold",
    "budget_per_hour",
    "budget_total",
    "warn_before",
    "on_reclaim",
)
#: create()'s keywords for the rules (``budget`` is the total cap), and the rule each sets.
CREATE_RULE_ARGS = {
    **{name: name for name in RULE_ARGS if name != "budget_total"},
    "budget": "budget_total",
}
#: Seconds between the in-kernel guard's ticks when the client has no poll_interval.
KERNEL_INTERVAL = 15.0
#: Logged actions guard_status() lists as problems: rules lost or rebuilt, actions failed.
PROBLEMS = ("quarantine", "failed")


def rule_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """The rule arguments that were given (None means not given)."""
    return {k: values[k] for k in RULE_ARGS if values.get(k) is not None}


def idle_reading_words(reading: str) -> str:
    """Where the idle rule read the GPU's utilisation, in words (guard_status says it)."""
    if reading == "none":
        return "idle rule: no utilisation reading (neither the metrics nor nvidia-smi)"
    where = "the metrics endpoint" if reading == "metrics" else reading
    return f"idle rule reads {where}"


class GuardStatus(dict):
    """``guard_status()``: the process, the rules per instance (with where the idle rule
    read the GPU's utilisation: ``idle_readings``), the next action with its time and the
    latest actions; a dict with a readable text and HTML form."""

    def lines(self) -> list[str]:
        process = "running" if self.get("running") else "not running"
        if self.get("pid") and self.get("running"):
            process += f" (pid {self['pid']}, last tick {self.get('last_tick') or '-'})"
        elif self.get("reason"):
            process += f" ({self['reason']})"
        out = [f"guard process: {process}"]
        kernel = self.get("kernel")
        out.append(f"in-kernel guard: {kernel or 'off'}")
        rules = self.get("rules") or {}
        names = self.get("names") or {}
        out.append(f"guarded instances: {len(rules)}")
        spent = self.get("spent") or {}
        readings = self.get("idle_readings") or {}
        for instance_id, text in rules.items():
            if instance_id in spent:
                text = f"{text}; {format_money(spent[instance_id])} counted so far"
            if instance_id in readings:
                text = f"{text}; {readings[instance_id]}"
            out.append(f"  {names.get(instance_id) or '?'} ({instance_id}): {text}")
        nxt = self.get("next_action")
        if nxt:
            out.append(
                f"next action: {nxt.get('kind')} {nxt.get('name') or nxt.get('instance_id')} "
                f"at {timestamp(nxt.get('due'))} ({nxt.get('reason')})"
            )
        else:
            out.append("next action: none planned")
        for name in self.get("intents") or ():
            out.append(f"  {name}: create in flight; its rules apply once it exists")
        if self.get("metrics_unit"):
            out.append(f"metrics unit: {self['metrics_unit']}")
        for note in self.get("notes") or ():
            out.append(f"note: {note}")
        for entry in self.get("problems") or ():
            who = entry.get("name") or entry.get("instance_id") or "an unnamed instance"
            out.append(
                f"problem: {timestamp(entry.get('time'))} {entry.get('action')} {who}: "
                f"{entry.get('result')} ({entry.get('reason')})"
            )
        for entry in self.get("actions") or ():
            out.append(
                f"  {entry.get('time')} {entry.get('action')} {entry.get('name') or ''} "
                f"{entry.get('instance_id')}: {entry.get('result')} ({entry.get('reason')}) "
                f"by {entry.get('actor')}"
            )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        from ..views import guard_status_html  # the one rendering of every view lives there

        return guard_status_html(self)


class GuardService:
    """The guard for one client. ``session_defaults`` (rule keywords, set by
    ``%config NovitaMagics.guard_*``) sit between the user's env defaults and the arguments.
    ``listeners`` receive every guard or spot event as ``(event_type, payload)``."""

    def __init__(self, client: GuardHost) -> None:
        self.client = client
        self.session_defaults: dict[str, Any] = {}
        self.autostart: bool | None = None  # None: NOVITA_GUARD_AUTOSTART decides
        self.listeners: list[Callable[[str, dict[str, Any]], Any]] = []
        #: print each event in words (a warning with the call that extends or cancels it)
        self.show = True
        self.events: deque[dict[str, Any]] = deque(maxlen=200)
        self.process: dict[str, Any] | None = None
        self._kernel: Any = None
        self._spot: SpotWatch | None = None
        self._watcher: Any = None
        self._relayed: set[tuple[str, str]] = set()  # notices relayed from another actor
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<GuardService {self.client.config.api_url} events={len(self.events)}>"

    @property
    def store(self) -> GuardStore:
        return GuardStore(api_url=self.client.config.api_url)

    # -- rules ---------------------------------------------------------------------------------
    def rules_for_create(self, guard: Any, given: Mapping[str, Any]) -> GuardRules | None:
        """The rules a new instance gets: env defaults, then session defaults, then ``guard``
        (GuardRules) and the keywords. ``guard=False`` means none. Validates (no HTTP)."""
        if guard is not None and not isinstance(guard, bool | GuardRules):
            raise ValidationError("guard must be True, False or a GuardRules", field="guard")
        given = rule_kwargs(given)
        if guard is False:
            if given:
                raise ValidationError(f"guard=False contradicts {', '.join(given)}", field="guard")
            return None
        rules = rules_from_env()
        layers = [GuardRules.parse(**self.session_defaults)] if self.session_defaults else []
        if isinstance(guard, GuardRules):
            layers.append(guard)
        if given:
            layers.append(GuardRules.parse(**given))
        for layer in layers:
            rules = rules.merged(layer) if rules is not None else layer
        return rules if rules is not None and rules.active else None

    def take_create_rules(self, kwargs: dict[str, Any]) -> GuardRules | None:
        """Pop ``guard`` and the rule keywords (create()'s names) out of ``kwargs`` and make
        the rules a new instance gets (``rules_for_create``): a batch spec's guard."""
        given = {
            rule: kwargs.pop(name) for name, rule in CREATE_RULE_ARGS.items() if name in kwargs
        }
        return self.rules_for_create(kwargs.pop("guard", None), given)

    def create_guard(self, rules: GuardRules | None) -> CreateGuard | None:
        """The guard of one create: its rules are stored before the request is sent and the
        guard is started then (None when the instance gets no rule)."""
        return None if rules is None else CreateGuard(self.store, rules, ensure=self.start)

    def protect(
        self, instance: Any, rules: GuardRules | None, *, start: bool = True
    ) -> GuardRecord | None:
        """Store ``rules`` for a just-created instance and (unless ``start=False``: a batch
        starts once) start enforcing them."""
        if rules is None:
            return None
        record = self.store.set_rules(
            instance.id,
            rules,
            name=instance.name,
            created_at=getattr(instance, "created_at", None),
            price_per_hour=getattr(instance, "price_per_hour", None),
        )
        if start:
            self.start()
        return record

    def guard(self, target: Any, *, replace: bool = False, **rules: Any) -> GuardRecord:
        """Set (merge) rules on an existing instance; see ``Novita.guard``."""
        unknown = sorted(set(rules) - set(RULE_ARGS))
        if unknown:
            raise ValidationError(
                f"unknown guard rule {unknown[0]!r}; rules: {', '.join(RULE_ARGS)}",
                field=unknown[0],
            )
        given = rule_kwargs(rules)
        if not given:
            raise ValidationError(f"give at least one rule ({', '.join(RULE_ARGS)})", field="rules")
        parsed = GuardRules.parse(**given)  # validated before any HTTP call
        instance = self._instance(target)
        record = self.store.set_rules(
            instance.id,
            parsed,
            name=instance.name,
            created_at=instance.created_at,
            price_per_hour=instance.price_per_hour,
            replace=replace,
        )
        self.start()
        return record

    def unguard(self, target: Any, *rules: str) -> GuardRecord | None:
        """Remove all rules (none named) or the named ones (``"idle"``, ``"budget"``,
        ``"stop_after"``…). Returns the remaining record, None when unguarded."""
        instance_id, _ = self._guarded(target)
        if not rules:
            self.store.remove(instance_id)
            return None
        GuardRules.parse().without(*rules)  # unknown names fail before the store changes
        record = self.store.update_rules(instance_id, lambda r: r.without(*rules))
        if not record.rules.active:
            self.store.remove(instance_id)
            return None
        return record

    def forget(self, instance_ids: Iterable[str], reason: str) -> list[str]:
        """Drop the rules of instances that are gone (deleted by this client or its cleanup),
        each confirmed by a read by id (never on one listing's word) and logged in the action
        log; the ids that had rules. A store that cannot be written is only logged: the guard
        drops them itself once a read by id says they are gone."""
        store = self.store
        guarded = {r.id for r in store.records()}
        forgotten = []
        for instance_id in instance_ids:
            if instance_id not in guarded or not self._surely_gone(instance_id):
                continue
            try:
                if store.remove(instance_id):
                    forgotten.append(instance_id)
                    store.log_action(instance_id, "forget", reason, default_actor(), "ok")
            except (OSError, TimeoutError) as error:
                log.warning("guard rules of %s not dropped: %s", instance_id, error)
        return forgotten

    def _surely_gone(self, instance_id: str) -> bool:
        """Does a read by id say the instance is gone (not found, or being removed)?"""
        try:
            raw = self.client.api.get_instance(instance_id)
        except NotFoundError:
            return True
        except NovitaError as error:
            log.warning("guard rules of %s kept: it could not be read (%s)", instance_id,
                        error.message)  # fmt: skip
            return False
        return str(raw.get("status") or "") in GONE_STATUSES

    def extend(self, target: Any, duration: Any, rule: str | None = None) -> GuardRecord:
        """Push the deadlines of a guarded instance back by ``duration`` (and make sure a
        guard runs: this may be a later kernel, after the guard process ended)."""
        instance_id, _ = self._guarded(target)
        record = self.store.extend(instance_id, duration, rule)
        self.start()
        return record

    def _guarded(self, target: Any) -> tuple[str, str]:
        """(id, name) of a guarded instance given an Instance, id or name: the store first
        (no HTTP), the API only for a name the store does not know."""
        if hasattr(target, "id"):
            target = target.id
        if not isinstance(target, str) or not target.strip():
            raise ValidationError("give an instance, its id or its name", field="instance")
        records = self.store.records()
        for record in records:
            if target in (record.id, record.name):
                return record.id, record.name
        instance = self._instance(target)
        if not any(r.id == instance.id for r in records):
            raise ValidationError(f"{target} has no guard rules", field="instance")
        return instance.id, instance.name

    def _instance(self, target: Any) -> Any:
        if hasattr(target, "id") and getattr(target, "id", None):
            target = target.id
        return self.client.instance(target)

    # -- running -------------------------------------------------------------------------------
    def child_key(self) -> str | None:
        """The key for the guard process's environment; None when the child finds it itself
        (the key came from the environment or .env)."""
        source = (self.client.config.sources or {}).get("api_key")
        return None if source in ("environment", ".env") else self.client.transport.api_key

    def autostart_enabled(self) -> bool:
        return autostart_enabled() if self.autostart is None else bool(self.autostart)

    def start(self, *, kernel: bool = True) -> dict[str, Any] | None:
        """Make sure the rules are enforced: the guard process (unless opted out) and, with
        ``kernel``, the in-kernel guard on a watcher of this client."""
        if kernel:
            self.ensure_kernel_guard()
        if not self.autostart_enabled():
            self.process = {"running": False, "reason": "autostart is off"}
            return self.process
        if self.client.sandbox_server is not None:
            # an in-process sandbox ends with this kernel: a process outliving it guards nothing
            self.process = {"running": False, "reason": "the sandbox lives in this kernel"}
            return self.process
        from .process import ensure_guard_running

        with self._start_lock:  # batch threads: one spawn, the others see it running
            self.process = ensure_guard_running(
                self.client.config.api_url, api_key=self.child_key()
            )
        return self.process

    def ensure(self, *, kernel: bool = False) -> dict[str, Any] | None:
        """Start the guard process when guarded instances (or creates in flight) exist and no
        guard answers; with ``kernel`` the in-kernel guard too. What every call that can leave
        a guarded instance billing calls (start, restart), and Novita(), mine(), %load_ext.
        Never raises: a guard that cannot be started is said in the log and in the status."""
        try:
            store = self.store
            if not store.records() and not store.intents():
                return None
            return self.start(kernel=kernel)
        except Exception as error:  # noqa: BLE001 - the caller's own call must go on
            log.warning("could not make sure the guard runs: %s", error)
            return None

    def ensure_kernel_guard(self, interval: float | None = None) -> Any:
        """The in-kernel guard: a hook on a watcher of all instances (started if needed)."""
        with self._lock:
            if self._watcher is not None and self._watcher.running:
                return self._watcher
            interval = interval or getattr(self.client.config, "poll_interval", None)
            watcher = self.client.watch(None, interval or KERNEL_INTERVAL)  # hook attached
            self._watcher = watcher
            return watcher

    def attach(self, watcher: Any) -> Callable[[list[dict[str, Any]]], None]:
        """Enforce the rules and surface spot notices on each tick of ``watcher``."""
        hook = self.kernel_hook(grace=getattr(watcher, "interval", None))
        watcher.tick_hooks.append(hook)
        return hook

    def kernel_hook(self, grace: float | None = None) -> Callable[[list[dict[str, Any]]], None]:
        """A watcher tick hook: spot notices as events, then one enforcement pass."""
        from .backend import metrics_step
        from .kernel import ClientGuardBackend, KernelGuard

        current: dict[str, list[dict[str, Any]]] = {"raw": []}
        backend = ClientGuardBackend(
            self.client,
            self._metrics_key,
            listing=lambda: current["raw"],
            on_event=self.emit,
            metrics_step=metrics_step(grace or KERNEL_INTERVAL),
        )
        spacing = timedelta(seconds=grace or KERNEL_INTERVAL)
        kernel = KernelGuard(backend, self.client.config.api_url, grace=spacing)
        spot = SpotWatch(self.client.api, kernel.store, emit=backend.notify, relay=self._relay)
        self._kernel, self._spot = kernel, spot

        def guard_tick(listing: list[dict[str, Any]]) -> None:
            current["raw"] = spot.enrich(listing)
            spot.announce(current["raw"], kernel.enforcer.actor)
            result = kernel.tick()
            kinds = {r["kind"] for r in (result.results if result else ())}
            if kinds & {"recreate", "migrate"}:  # it bills on, moved: a guard must answer
                self.ensure()

        return guard_tick

    def _metrics_key(self) -> str:
        return self.client.transport.api_key

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """An event for the notebook and panel (the backend posts the webhook)."""
        self.events.append({"event": event_type, **payload})
        if self.show:
            stream = sys.stderr if event_type in ("guard.warning", "guard.failed") else sys.stdout
            print(event_text(event_type, payload), file=stream, flush=True)
        for listener in list(self.listeners):
            try:
                listener(event_type, payload)
            except Exception:  # noqa: BLE001 - a display failing must not stop the guard
                log.exception("guard event listener failed")

    def _relay(self, event_type: str, payload: dict[str, Any]) -> None:
        """A notice the guard process announced, shown here once however many of this
        client's watchers see it."""
        key = (str(payload.get("instanceId")), str(payload.get("reclaim_time")))
        with self._lock:
            if key in self._relayed:
                return
            self._relayed.add(key)
        self.emit(event_type, payload)

    def status(self) -> GuardStatus:
        from . import units
        from .process import guard_status

        status = GuardStatus(guard_status(self.client.config.api_url))
        if self.process and not status.get("running") and self.process.get("reason"):
            status["reason"] = self.process["reason"]
        store = self.store
        records = store.records()
        status["names"] = {r.id: r.name for r in records}
        readings = {r.id: r.idle_reading for r in records if r.idle_reading}
        now = datetime.now(UTC)
        status["spent"] = {
            r.id: recorded_spend(r, now) for r in records if r.rules.budget_total is not None
        }
        status["intents"] = [i.name for i in store.intents()]
        watcher = self._watcher
        if watcher is not None and watcher.running:
            status["kernel"] = f"watching every {watcher.interval:g} s ({watcher.ticks} ticks)"
        actions = store.actions()
        status["actions"] = actions[-5:]
        status["problems"] = [a for a in actions if a.get("action") in PROBLEMS][-5:]
        learned = store.learned(units.LEARNED_KEY) or {}
        with contextlib.suppress(ValidationError):
            status["metrics_unit"] = units.unit_from_env() or learned.get("unit") or "unknown"
        if records and not (status.get("running") and status.get("next_action")):
            with contextlib.suppress(NovitaError, ValueError, OSError):
                plan, sight = self._plan_now(records)
                readings.update(_idle_readings(sight.states.values()))
                action = plan.next_action()
                status["next_action"] = action.to_dict() if action is not None else None
                status["notes"] = list(dict.fromkeys([*status.get("notes", []), *plan.notes]))
        status["idle_readings"] = {key: idle_reading_words(r) for key, r in readings.items()}
        return status

    def _plan_now(self, records: list[GuardRecord]) -> tuple[Any, Any]:
        """The plan a guard would make now and what it saw (one list call; nothing is done or
        written)."""
        from . import units
        from .enforcer import gather
        from .kernel import ClientGuardBackend
        from .policy import decide

        backend = ClientGuardBackend(self.client, self._metrics_key)
        try:
            now = datetime.now(UTC)
            listing = with_spot_details(self.client.api, self.client.api.list_instances())
            learned = self.store.learned(units.LEARNED_KEY) or {}
            known = units.unit_from_env() or learned.get("unit")
            sight = gather(backend, records, now, listing=listing, metrics_unit=known)
            found = units.evidence(sight.states.values()) or {}
            unit = known or found.get("unit")
            plan = decide(now, records, sight.states, gone=sight.gone, metrics_unit=unit)
        finally:
            backend.close()
        return dataclasses.replace(plan, notes=(*plan.notes, *sight.notes)), sight

    def close(self) -> None:
        """Stop the in-kernel guard's watcher (the guard process keeps running)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop(timeout=5)
        if self._kernel is not None:
            self._kernel.enforcer.backend.close()


def _idle_readings(states: Any) -> dict[str, str]:
    """Where each state's idle-rule utilisation came from (for states that read one)."""
    from .records import idle_reading_of

    return {s.id: reading for s in states if (reading := idle_reading_of(s)) is not None}
