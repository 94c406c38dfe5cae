"""The Watcher: a daemon thread that polls all watched instances with one paginated list call
per tick, records status changes and hands them to callbacks; plus starting one (``watch``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..api import collect_pages
from ..errors import InvalidStateError, ValidationError, requested_delay
from ..errors import TimeoutError as NovitaTimeoutError
from ..models import (
    STATUS_ORDER,
    TERMINAL_STATUSES,
    Instance,
    StatusChange,
    phase_of,
)
from .backoff import Backoff, positive_number
from .history import step_of
from .learned import LearnedSchedule, anchor_of, history_of, prior_scale, track, untrack

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

logger = logging.getLogger(__name__)

EventCallback = Callable[[StatusChange], Any]

_MAX_PAGES = 1000  # 100k instances: a guard against a listing that never ends

_EVENT_COLUMNS = ["time", "instance_id", "name", "old_status", "new_status", "phase"]
_FRAME_COLUMNS = [
    "instance_id",
    "name",
    "status",
    "phase",
    "region",
    "product_name",
    "price_per_hour",
    "changed_at",
    "seen_at",
]


def _callable_name(func: Any) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


class Watcher:
    """Watches instances on a daemon thread: one paginated list call per tick, however many.

    ``events`` (DataFrame of status changes), ``frame`` (latest state, one row per instance),
    ``latest`` (id → Instance), ``errors`` (failed callbacks), ``last_error`` (last API error),
    ``ticks`` (completed polls) and ``calls`` (list calls made, failed ones included; the
    transport's own retries are in ``client.api.requests_made``). ``stop()`` joins the thread;
    use it as a context manager too.
    """

    def __init__(
        self,
        api: Any,
        instance_ids: list[str] | None,
        *,
        interval: float,
        callbacks: Iterable[EventCallback] = (),
        notify: EventCallback | None = None,
        stop_when_terminal: bool = False,
        page_size: int = 100,
        error_backoff: Backoff | None = None,
        max_events: int = 10_000,
        known: Iterable[Instance] = (),
        to_instance: Callable[[dict[str, Any]], Instance] | None = None,
        owner: Any = None,
    ) -> None:
        self._api = api
        self._to_instance = to_instance
        self._owner = owner
        # Instances the caller handed us: their names label a "removed" event if they are
        # already gone at the first tick.
        self._known = {i.id: i for i in known}
        self._targets = list(dict.fromkeys(instance_ids)) if instance_ids is not None else None
        self.interval = interval
        self.callbacks = list(callbacks)
        self.notify = notify
        self.stop_when_terminal = stop_when_terminal
        self.page_size = page_size
        # API trouble: back off from the tick interval up to a few minutes at most.
        self._error_backoff = (
            error_backoff.fresh()
            if error_backoff is not None
            else Backoff(
                initial=interval, cap=max(interval, min(interval * 8, 300.0)), proportion=0
            )
        )
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._delivering = False  # a tick's events are being handed to callbacks
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: dict[str, Instance] = {}
        self._seen_at: dict[str, datetime] = {}
        self._changed_at: dict[str, datetime] = {}
        self._events: deque[StatusChange] = deque(maxlen=max_events)
        self._event_count = 0
        #: callbacks (and notify) that raised: dicts with time, source, event, error (the
        #: latest thousand, so a callback failing on every event cannot grow it forever)
        self.errors: deque[dict[str, Any]] = deque(maxlen=1000)
        #: the last API error (kept after recovery); ``consecutive_errors`` is 0 once healthy
        self.last_error: BaseException | None = None
        self.last_error_time: datetime | None = None
        self.consecutive_errors = 0
        self.error_count = 0
        self.ticks = 0
        self.calls = 0
        self.started_at: datetime | None = None
        self.stopped_reason: str | None = None
        #: called after each successful tick with that tick's raw listing (the guard's
        #: in-kernel enforcement uses it: no extra list call); failures go to ``errors``
        self.tick_hooks: list[Callable[[list[dict[str, Any]]], Any]] = []
        # The phase history every transition seen here adds to (and ETAs read), and one
        # schedule per instance on its way to running (it only keeps the timeline: the
        # watcher's own pace stays ``interval``, it serves every instance at once).
        self._history = history_of(owner)
        self._learning: dict[str, LearnedSchedule] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Watcher:
        with self._lock:
            if self._thread is not None:
                raise InvalidStateError("this watcher was already started; create a new one")
            self.started_at = datetime.now(UTC)
            self._thread = threading.Thread(target=self._run, name="novita-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> Watcher:
        """Stop polling and join the thread (at most ``timeout`` seconds; a tick in flight
        finishes its HTTP call first)."""
        self._stop_event.set()
        with self._changed:
            self._changed.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self.stopped_reason is None:
            self.stopped_reason = "stopped"
        return self

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop_event.is_set()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Watcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Joining may wait for a tick's HTTP call: do it off the event loop.
        await asyncio.to_thread(self.stop)

    # -- state ---------------------------------------------------------------------------------
    @property
    def latest(self) -> dict[str, Instance]:
        """id → the latest Instance seen (a copy of the mapping)."""
        with self._lock:
            return dict(self._latest)

    @property
    def event_list(self) -> list[StatusChange]:
        with self._lock:
            return list(self._events)

    @property
    def events(self) -> pd.DataFrame:
        """Every status change seen: time, instance_id, name, old_status, new_status, phase."""
        import pandas as pd

        rows = [
            (e.time, e.instance_id, e.name, e.old_status, e.new_status, e.phase)
            for e in self.event_list
        ]
        return pd.DataFrame(rows, columns=_EVENT_COLUMNS)

    @property
    def frame(self) -> pd.DataFrame:
        """The latest state: one row per watched instance."""
        import pandas as pd

        with self._lock:
            rows = [
                (
                    inst.id,
                    inst.name,
                    inst.status,
                    inst.phase,
                    inst.region,
                    inst.product_name,
                    inst.price_per_hour,
                    self._changed_at.get(inst.id),
                    self._seen_at.get(inst.id),
                )
                for inst in self._latest.values()
            ]
        return pd.DataFrame(rows, columns=_FRAME_COLUMNS)

    def all_terminal(self) -> bool:
        """True when every watched instance rests in a terminal state (or failed)."""
        with self._lock:
            if not self._latest:
                return False
            if self._targets is not None and any(t not in self._latest for t in self._targets):
                return False
            return all(i.status in TERMINAL_STATUSES or i.failed for i in self._latest.values())

    def wait_for(
        self,
        condition: str | Callable[[Watcher], bool],
        timeout: float = 60.0,
        *,
        instance: str | Instance | None = None,
    ) -> dict[str, Instance]:
        """Block until ``condition`` holds, then return ``latest``. Returns only after the
        callbacks and notifier of the tick that made it hold have run.

        ``condition`` is a status or phase name (every watched instance, or just ``instance``,
        must be in it) or a predicate called with this watcher after each tick.
        Raises ``TimeoutError`` (with ``last_status`` when one instance is meant) or
        ``InvalidStateError`` if the watcher stops first.
        """
        timeout = positive_number(timeout, "timeout")
        target_id = instance.id if isinstance(instance, Instance) else instance
        predicate = _predicate_for(condition, target_id)
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._delivering or not predicate(self):
                if self._stop_event.is_set() or (
                    self._thread is not None and not self._thread.is_alive()
                ):
                    raise InvalidStateError(
                        f"the watcher stopped ({self.stopped_reason}) before the condition held"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = self._latest.get(target_id) if target_id else None
                    raise NovitaTimeoutError(
                        f"condition {condition if isinstance(condition, str) else _callable_name(condition)!s} "
                        f"did not hold within {timeout:g} s",
                        last_status=last.status if last else None,
                    )
                self._changed.wait(remaining)
        return self.latest

    # -- polling -------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop_event.is_set():
                delay = self.interval
                try:
                    self._tick()
                except Exception as exc:  # noqa: BLE001 - a watcher must survive anything
                    delay = self._record_api_error(exc)
                else:
                    if self.consecutive_errors:
                        logger.info(
                            "watcher recovered after %d failed tick(s)", self.consecutive_errors
                        )
                    self.consecutive_errors = 0
                    self._error_backoff.reset()
                with self._changed:
                    self._changed.notify_all()
                if self.stop_when_terminal and self.all_terminal():
                    self.stopped_reason = "all watched instances are terminal"
                    self._stop_event.set()
                    break
                self._stop_event.wait(delay)
        finally:
            for instance_id in list(self._learning):
                self._forget(instance_id)
            if self.stopped_reason is None:
                self.stopped_reason = "stopped"
            with self._changed:
                self._changed.notify_all()

    def _record_api_error(self, exc: Exception) -> float:
        self.last_error = exc
        self.last_error_time = datetime.now(UTC)
        self.consecutive_errors += 1
        self.error_count += 1
        # Never earlier than the server (Retry-After) or the breaker asked, even past the cap.
        delay = max(self._error_backoff.next_delay(), requested_delay(exc))
        logger.warning(
            "watcher tick failed (%s: %s); retrying in %.1f s",
            type(exc).__name__,
            getattr(exc, "message", exc),
            delay,
        )
        return delay

    def _list_all(self) -> list[dict[str, Any]]:
        """Every instance, one paginated listing (api.collect_pages: whatever the page base)."""

        def count() -> None:
            self.calls += 1  # counted when made, failed ones too

        def fetch(page: int) -> tuple[list[dict[str, Any]], int | None]:
            return self._api.list_instances_page(page_num=page, page_size=self.page_size)

        return collect_pages(fetch, on_call=count, max_pages=_MAX_PAGES)

    def _parse(self, raw: dict[str, Any]) -> Instance:
        if self._to_instance is not None:
            try:
                return self._to_instance(raw)
            except Exception:  # noqa: BLE001 - a price lookup must not blind the watcher
                logger.debug("to_instance failed; using the bare instance", exc_info=True)
        return Instance.from_api(raw, client=self._owner)

    def _tick(self) -> None:
        listing = self._list_all()
        now = datetime.now(UTC)
        self.ticks += 1
        seen = {}
        for raw in listing:
            instance = self._parse(raw)
            if self._targets is None or instance.id in self._targets:
                seen[instance.id] = instance
        with self._lock:
            # wait_for() must not see this tick's state before its events were delivered.
            self._delivering = True
            events = []
            for instance in seen.values():
                self._seen_at[instance.id] = now
                event = self._record(instance, now)
                if event is not None:
                    events.append(event)
            # Gone from the listing: removed (also a target that was never there).
            expected = self._targets if self._targets is not None else list(self._latest)
            for instance_id in expected:
                previous = self._latest.get(instance_id)
                if instance_id in seen or (previous is not None and previous.status == "removed"):
                    continue
                template = previous or self._known.get(instance_id)
                gone = (
                    dataclasses.replace(template, status="removed")
                    if template is not None
                    else Instance(id=instance_id, name="", status="removed", _client=self._owner)
                )
                event = self._record(gone, now)
                if event is not None:
                    events.append(event)
            self._events.extend(events)
            self._event_count += len(events)
            learned = list(seen.values()) if self._history is not None else []
        self._learn(learned, set(expected) - set(seen))
        try:
            for event in events:
                self._deliver(event)
        finally:
            with self._changed:
                self._delivering = False
                self._changed.notify_all()
        self._run_tick_hooks(listing)

    def _learn(self, instances: Iterable[Instance], gone: Iterable[str] = ()) -> None:
        """Follow each instance on its way to running: a schedule per instance observes each
        tick's status and records the phase durations into the history on arrival (never
        for a failed or vanished one). Outside the lock: recording writes a file."""
        for instance_id in gone:
            self._forget(instance_id)
        for instance in instances:
            schedule = self._learning.get(instance.id)
            on_way = step_of(instance.status) is not None and not instance.failed
            if schedule is None and on_way:
                schedule = LearnedSchedule.for_instance(
                    instance,
                    self._history,
                    started_at=anchor_of(instance),
                    scale=prior_scale(self._owner),
                )
                # a wait following the same instance already records it
                schedule.record = track(instance.id, schedule)
                self._learning[instance.id] = schedule
            if schedule is None:
                continue
            if instance.failed:
                self._forget(instance.id)
                continue
            try:
                schedule.observe(instance.status)  # running records the timeline
            except Exception:  # noqa: BLE001 - learning must never stop the watcher
                logger.debug("phase history: could not observe", exc_info=True)
            if not on_way:
                self._forget(instance.id)

    def _forget(self, instance_id: str) -> None:
        schedule = self._learning.pop(instance_id, None)
        if schedule is not None:
            untrack(instance_id, schedule)

    def eta(self, instance: str | Instance) -> tuple[float, dict[str, float], bool] | None:
        """(seconds to running, {phase: seconds}, has history) for a watched instance on its
        way to running, else None (see ``waiting.learned.LearnedSchedule.eta``)."""
        instance_id = instance.id if isinstance(instance, Instance) else instance
        schedule = self._learning.get(instance_id)
        return None if schedule is None else schedule.eta()

    def _run_tick_hooks(self, listing: list[dict[str, Any]]) -> None:
        for hook in list(self.tick_hooks):
            try:
                hook(listing)
            except Exception as exc:  # noqa: BLE001 - a hook must not stop the watcher
                logger.exception("watcher tick hook %s failed", _callable_name(hook))
                with self._lock:
                    self.errors.append(
                        {
                            "time": datetime.now(UTC),
                            "source": _callable_name(hook),
                            "event": None,
                            "error": exc,
                        }
                    )

    def _record(self, instance: Instance, now: datetime) -> StatusChange | None:
        """Store the latest ``instance``; the status change it makes, if any (lock held)."""
        previous = self._latest.get(instance.id)
        self._latest[instance.id] = instance
        if previous is not None and (previous.status, previous.failed) == (
            instance.status,
            instance.failed,
        ):
            return None
        self._changed_at[instance.id] = now
        return StatusChange(
            instance_id=instance.id,
            name=instance.name,
            old_status=previous.status if previous else None,
            new_status=instance.status,
            time=now,
            instance=instance,
        )

    def _deliver(self, event: StatusChange) -> None:
        receivers = list(self.callbacks)
        if self.notify is not None:
            receivers.append(self.notify)
        for receiver in receivers:
            try:
                receiver(event)
            except Exception as exc:  # noqa: BLE001 - one bad callback must not stop the rest
                logger.exception(
                    "watcher callback %s failed on %s %s→%s",
                    _callable_name(receiver),
                    event.instance_id,
                    event.old_status,
                    event.new_status,
                )
                with self._lock:
                    self.errors.append(
                        {
                            "time": datetime.now(UTC),
                            "source": _callable_name(receiver),
                            "event": event,
                            "error": exc,
                        }
                    )

    # -- display -------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.running:
            return "running"
        if self._thread is None:
            return "not started"
        return "stopped"

    def __repr__(self) -> str:
        with self._lock:
            count = len(self._latest)
            events = self._event_count
        error = ""
        if self.consecutive_errors and self.last_error is not None:
            error = f", failing: {type(self.last_error).__name__}"
        return (
            f"<Watcher {self.state}, {count} instances, {events} events, "
            f"{self.ticks} ticks, {self.calls} calls, every {self.interval:g} s{error}>"
        )

    @property
    def event_count(self) -> int:
        """Status changes seen since the start (``events`` keeps the latest ``max_events``)."""
        return self._event_count

    def _repr_html_(self) -> str:
        from .render import watcher_html

        with self._lock:
            instances = list(self._latest.values())
            changed = dict(self._changed_at)
            events = list(self._events)
        return watcher_html(self, instances, changed, events)


def _predicate_for(
    condition: str | Callable[[Watcher], bool], target_id: str | None
) -> Callable[[Watcher], bool]:
    """``wait_for``'s condition as a predicate on the watcher (checked: a status, a phase or
    a callable)."""
    if isinstance(condition, str):
        if condition not in STATUS_ORDER and condition not in ("failed", *_PHASE_NAMES):
            raise ValidationError(
                f"condition must be a status ({', '.join(STATUS_ORDER)}), a phase "
                f"({', '.join(_PHASE_NAMES)}) or a callable; got {condition!r}",
                field="condition",
            )
        wanted = condition

        def holds(watcher: Watcher) -> bool:
            latest = watcher.latest
            if target_id is not None:
                items = [latest[target_id]] if target_id in latest else []
            else:
                items = list(latest.values())
            return bool(items) and all(wanted in (i.status, i.phase) for i in items)

        return holds
    if callable(condition):
        return condition
    raise ValidationError(
        f"condition must be a status, a phase or a callable; got {condition!r}",
        field="condition",
    )


_PHASE_NAMES = tuple(dict.fromkeys(phase_of(s) for s in STATUS_ORDER))
