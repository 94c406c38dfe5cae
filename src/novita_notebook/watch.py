"""Waiting and watching: adaptive blocking waits, readiness probes and background watchers.
One backoff schedule (``Backoff``) paces every poll here: waits, and a watcher's error recovery.

Design choices:

* ``Novita.wait`` runs on the caller's thread: Ctrl-C lands in it directly, nothing is left
  behind, and the instance keeps going on Novita's side (we say so and how to resume).
* ``Novita.watch`` polls on a **daemon thread**, not an asyncio task. A thread keeps running
  while a later cell blocks (e.g. in ``wait``), needs no running event loop (plain scripts,
  terminals and kernels alike), sleeps on ``threading.Event.wait`` (no busy loop, stops at
  once) and is stopped by ``stop()``, which joins it. Widgets are updated only by the notebook
  layer, through thread-safe trait assignments fed from the watcher's callbacks.
* ``await novita.wait_async(...)`` is the same wait (one generator of steps drives both) with
  ``asyncio.sleep`` pauses and HTTP calls in the loop's executor. It runs *on* the caller's
  loop, never re-enters it, so nest-asyncio is used nowhere in this module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import html as html_blocks
from .errors import (
    APIError,
    CircuitBreakerError,
    InstanceFailedError,
    InvalidStateError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    ValidationError,
)
from .errors import TimeoutError as NovitaTimeoutError
from .models import (
    GONE_STATUSES,
    STATUS_ORDER,
    TERMINAL_STATUSES,
    Instance,
    StatusChange,
    phase_of,
)
from .probes import HttpProbe, Probe, components_running, is_reachable
from .waiting.backoff import Backoff
from .waiting.backoff import positive_number as _positive_number
from .waiting.backoff import schedule_from as _schedule_from
from .waiting.backoff import server_delay as _server_delay

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .client import Novita

logger = logging.getLogger(__name__)

#: What ``Novita.wait(until=...)`` accepts.
WAIT_TARGETS: tuple[str, ...] = ("running", "reachable", "exited", "removed")

# Errors worth waiting out: the API or the network is having a moment, not refusing us.
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    NetworkError,
    RateLimitError,
    CircuitBreakerError,
    NovitaTimeoutError,
)


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, _TRANSIENT_ERRORS):
        return True
    return isinstance(error, APIError) and (error.status is None or error.status >= 500)


# ---------------------------------------------------------------------------------------------
# Progress reporting for wait
# ---------------------------------------------------------------------------------------------

ProgressCallback = Callable[[Instance, float, str], Any]


def _in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel. IPython is looked up only if something imported it."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - a half-installed IPython
        return False
    shell = get_ipython()
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or hasattr(shell, "kernel")


class _Progress:
    """Where a wait's progress goes: a callback, text lines, a live display, or nowhere."""

    def __init__(self, progress: Any) -> None:
        self.callback: ProgressCallback | None = None
        self.mode = "silent"
        self.trail: list[str] = []
        self._handle: Any = None
        if callable(progress):
            self.callback = progress
            self.mode = "callback"
        elif progress is None:
            self.mode = "display" if _in_notebook_kernel() else "silent"
        elif progress is False or progress in ("silent", "off", "none"):
            self.mode = "silent"
        elif progress == "text":
            self.mode = "text"
        elif progress == "display":
            self.mode = "display" if "IPython" in sys.modules or _importable("IPython") else "text"
        else:
            raise ValidationError(
                "progress must be None (live display in notebooks, silent elsewhere), 'text', "
                f"'display', 'silent'/False or a callable(instance, elapsed, phase); got {progress!r}",
                field="progress",
            )

    def update(self, instance: Instance, elapsed: float, note: str | None = None) -> None:
        changed = not self.trail or self.trail[-1] != instance.status
        if changed:
            self.trail.append(instance.status)
        if self.mode == "callback" and self.callback is not None:
            self.callback(instance, elapsed, instance.phase)
        elif self.mode == "text" and changed:
            extra = f"  ({note})" if note else ""
            print(f"{instance.name or instance.id}  {instance.status}  {elapsed:.1f} s{extra}")
        elif self.mode == "display":
            self._show(self._html(instance, elapsed, note))

    def finish(self, instance: Instance, elapsed: float, message: str) -> None:
        if self.mode == "text":
            print(f"{instance.name or instance.id}  {message}  {elapsed:.1f} s")
        elif self.mode == "display":
            self._show(self._html(instance, elapsed, message))

    def _html(self, instance: Instance, elapsed: float, note: str | None) -> str:
        steps = [html_blocks.text(s) for s in self.trail[:-1]]
        steps.append(html_blocks.badge(instance.status or "unknown", instance.phase))
        tail = f" &mdash; {html_blocks.text(note)}" if note else ""
        return (
            f"<div><b>{html_blocks.text(instance.name or instance.id)}</b>&nbsp; "
            f"{' &rarr; '.join(steps)} &nbsp;({elapsed:.0f} s){tail}</div>"
        )

    def _show(self, markup: str) -> None:
        from IPython.display import HTML, display

        if self._handle is None:
            self._handle = display(HTML(markup), display_id=True)
        else:
            self._handle.update(HTML(markup))


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------------------------------------
# The watcher
# ---------------------------------------------------------------------------------------------

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
        client: Novita,
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
    ) -> None:
        self._client = client
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
        timeout = _positive_number(timeout, "timeout")
        target_id = instance.id if isinstance(instance, Instance) else instance
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

            predicate: Callable[[Watcher], bool] = holds
        elif callable(condition):
            predicate = condition
        else:
            raise ValidationError(
                f"condition must be a status, a phase or a callable; got {condition!r}",
                field="condition",
            )
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
        delay = max(self._error_backoff.next_delay(), _server_delay(exc))
        logger.warning(
            "watcher tick failed (%s: %s); retrying in %.1f s",
            type(exc).__name__,
            getattr(exc, "message", exc),
            delay,
        )
        return delay

    def _list_all(self) -> list[dict[str, Any]]:
        """Every instance, one paginated listing (ceil(total / page_size) calls)."""
        items: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            self.calls += 1  # counted when made, failed ones too
            page_items, total = self._client.api.list_instances_page(
                page_num=page, page_size=self.page_size
            )
            for raw in page_items:
                raw_id = str(raw.get("id") or raw.get("Id") or "")
                if raw_id:
                    items[raw_id] = raw
            fetched = (page - 1) * self.page_size + len(page_items)
            # A short page ends the listing; so does the reported total (None: not reported).
            if len(page_items) < self.page_size or (total is not None and fetched >= total):
                break
            if page >= _MAX_PAGES:
                logger.warning("instance listing stopped at %d pages", _MAX_PAGES)
                break
            page += 1
        return list(items.values())

    def _parse(self, raw: dict[str, Any]) -> Instance:
        try:
            return self._client.to_instance(raw)
        except Exception:  # noqa: BLE001 - a price lookup must not blind the watcher
            logger.debug("to_instance failed; using the bare instance", exc_info=True)
            return Instance.from_api(raw, client=self._client)

    def _tick(self) -> None:
        listing = self._list_all()
        now = datetime.now(UTC)
        self.ticks += 1
        seen = {}
        for raw in listing:
            instance = self._parse(raw)
            if self._targets is None or instance.id in self._targets:
                seen[instance.id] = instance
        events: list[StatusChange] = []
        with self._lock:
            # wait_for() must not see this tick's state before its events were delivered.
            self._delivering = True
            for instance_id, instance in seen.items():
                previous = self._latest.get(instance_id)
                self._latest[instance_id] = instance
                self._seen_at[instance_id] = now
                if previous is None or (previous.status, previous.failed) != (
                    instance.status,
                    instance.failed,
                ):
                    self._changed_at[instance_id] = now
                    events.append(
                        StatusChange(
                            instance_id=instance_id,
                            name=instance.name,
                            old_status=previous.status if previous else None,
                            new_status=instance.status,
                            time=now,
                            instance=instance,
                        )
                    )
            # Gone from the listing: removed (also a target that was never there).
            expected = self._targets if self._targets is not None else list(self._latest)
            for instance_id in expected:
                if instance_id in seen:
                    continue
                previous = self._latest.get(instance_id)
                if previous is not None and previous.status == "removed":
                    continue
                template = previous or self._known.get(instance_id)
                gone = (
                    dataclasses.replace(template, status="removed")
                    if template is not None
                    else Instance(id=instance_id, name="", status="removed", _client=self._client)
                )
                self._latest[instance_id] = gone
                self._changed_at[instance_id] = now
                events.append(
                    StatusChange(
                        instance_id=instance_id,
                        name=gone.name,
                        old_status=previous.status if previous else None,
                        new_status="removed",
                        time=now,
                        instance=gone,
                    )
                )
            self._events.extend(events)
            self._event_count += len(events)
        try:
            for event in events:
                self._deliver(event)
        finally:
            with self._changed:
                self._delivering = False
                self._changed.notify_all()

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

    def _repr_html_(self) -> str:
        with self._lock:
            instances = list(self._latest.values())
            changed = dict(self._changed_at)
            events = list(self._events)
            total_events = self._event_count
        by_phase: dict[str, int] = {}
        for event in events:
            by_phase[event.phase] = by_phase.get(event.phase, 0) + 1
        phase_counts = ", ".join(f"{k} {v}" for k, v in sorted(by_phase.items()))
        state_colour = "#d1e7dd" if self.running else "#e2e3e5"
        header = (
            f"<div><b>Watcher</b> <span style='background:{state_colour};padding:1px 6px;"
            f"border-radius:8px'>{html_blocks.text(self.state)}</span> &middot; "
            f"{len(instances)} instances &middot; {total_events} events"
            f"{' (' + html_blocks.text(phase_counts) + ')' if phase_counts else ''} &middot; "
            f"{self.ticks} ticks / {self.calls} list calls &middot; every {self.interval:g} s"
        )
        if self.last_error is not None:
            label = "failing" if self.consecutive_errors else "last error"
            header += (
                f" &middot; {label}: {html_blocks.text(type(self.last_error).__name__)}"
                f" ({html_blocks.text(getattr(self.last_error, 'message', str(self.last_error)))})"
            )
        if self.errors:
            header += f" &middot; {len(self.errors)} callback errors"
        header += "</div>"
        order = {s: i for i, s in enumerate(STATUS_ORDER)}
        instances.sort(key=lambda i: (order.get(i.status, len(order)), i.name))
        columns = (*html_blocks.INSTANCE_COLUMNS, "phase", "changed")
        rows = [
            (
                *html_blocks.instance_cells(i),
                html_blocks.text(i.phase),
                html_blocks.text(changed[i.id].strftime("%H:%M:%S") if i.id in changed else None),
            )
            for i in instances
        ]
        table = html_blocks.table(columns, rows, raw_columns=columns)
        return header + table


_PHASE_NAMES = tuple(dict.fromkeys(phase_of(s) for s in STATUS_ORDER))


# ---------------------------------------------------------------------------------------------
# The mixin
# ---------------------------------------------------------------------------------------------


class WatchMixin:
    """Methods of Novita for waiting on and watching instances."""

    # -- wait ----------------------------------------------------------------------------------
    def wait(
        self: Novita,
        instance: Instance | str,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """Block until ``instance`` (an Instance, id or name) is ``until`` and return it fresh.

        ``until``: ``running``; ``reachable`` (running, SSH/Jupyter components up and every
        http port answering below 500, or ``probe(instance)`` true); ``exited``; ``removed``
        (status removed or gone). Polls adaptively (``poll``: a ``Backoff`` or a fixed number
        of seconds). Raises ``InstanceFailedError`` at once on a statusError or if the instance
        vanishes (unless waiting for ``removed``), ``TimeoutError`` with ``last_status``.
        Ctrl-C stops waiting only: the instance keeps going. ``progress``: None (live display
        in notebooks, silent elsewhere), ``"text"``, ``"silent"`` or a callable
        ``progress(instance, elapsed, phase)``. Runs on the caller's thread, starts none.
        """
        steps = self._wait_steps(instance, until, timeout, progress, probe, poll)
        try:
            action = next(steps)
            while True:
                try:
                    if action[0] == "sleep":
                        time.sleep(action[1])
                        result = None
                    else:
                        result = action[1](*action[2:])
                except BaseException as exc:  # Ctrl-C included: the steps report it
                    action = steps.throw(exc)
                else:
                    action = steps.send(result)
        except StopIteration as done:
            return done.value

    async def wait_async(
        self: Novita,
        instance: Instance | str,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """``await novita.wait_async(...)``: ``wait`` without blocking the event loop (a
        notebook cell can ``await`` it; no nest-asyncio involved). Same arguments and errors.

        Pauses are ``asyncio.sleep``; each HTTP call (and probe) runs in the loop's default
        executor, so cancelling the task stops the wait after the call in flight.
        """
        steps = self._wait_steps(instance, until, timeout, progress, probe, poll)
        try:
            action = next(steps)
            while True:
                try:
                    if action[0] == "sleep":
                        await asyncio.sleep(action[1])
                        result = None
                    else:
                        result = await asyncio.to_thread(action[1], *action[2:])
                except BaseException as exc:  # cancellation included: the steps report it
                    action = steps.throw(exc)
                else:
                    action = steps.send(result)
        except StopIteration as done:
            return done.value

    def _wait_steps(
        self: Novita,
        instance: Instance | str,
        until: str,
        timeout: float | None,
        progress: Any,
        probe: Probe | None,
        poll: Backoff | float | None,
    ) -> Generator[tuple[Any, ...], Any, Instance]:
        """The wait as a generator, shared by ``wait`` and ``wait_async``. It yields
        ``("sleep", seconds)`` or ``("call", function, *args)`` and is sent the result (or
        thrown the exception); the drivers only decide how to sleep and where calls run."""
        if until not in WAIT_TARGETS:
            raise ValidationError(
                f"until must be one of {', '.join(WAIT_TARGETS)}; got {until!r}", field="until"
            )
        limit = None if timeout is None else _positive_number(timeout, "timeout")
        schedule = _schedule_from(poll)
        reporter = _Progress(progress)
        if probe is not None and not callable(probe):
            raise ValidationError("probe must be a callable probe(instance) -> bool", field="probe")
        if until == "reachable" and probe is None:
            probe = HttpProbe()

        started = time.monotonic()
        # Until the lookup answers, name the instance as the caller did (for Ctrl-C).
        instance_id = instance.id if isinstance(instance, Instance) else str(instance)
        label = _label(instance) if isinstance(instance, Instance) else repr(instance)
        last: Instance | None = instance if isinstance(instance, Instance) else None
        last_status: str | None = None
        last_error: BaseException | None = None

        # Monotonic time before which the server (Retry-After) or the breaker asked us not to
        # call: the schedule never polls earlier than that.
        not_before = 0.0

        def pause(elapsed: float) -> float:
            delay = max(schedule.next_delay(), not_before - time.monotonic())
            return delay if limit is None else min(delay, max(0.0, limit - elapsed))

        try:
            while True:  # the lookup, retried on API blips: a wait started in one should wait
                try:
                    known = yield ("call", self._wait_subject, instance, until)
                    break
                except Exception as exc:
                    if not _is_transient(exc):
                        raise
                    not_before = max(not_before, time.monotonic() + _server_delay(exc))
                    elapsed = time.monotonic() - started
                    if limit is not None and elapsed >= limit:
                        raise NovitaTimeoutError(
                            f"could not look up {instance!r} within {limit:g} s: "
                            f"{getattr(exc, 'message', exc)}",
                            last_status=None,
                        ) from exc
                    yield ("sleep", pause(elapsed))
            if isinstance(known, str):  # already gone while waiting for removed
                return Instance(id=known, name="", status="removed", _client=self)
            instance_id, label = known.id, _label(known)
            # A name or id was just looked up: that answer is the first poll. A handle the
            # caller passed may be stale, so it is fetched again.
            pending: Instance | None = known if not isinstance(instance, Instance) else None
            last = known
            while True:
                note: str | None = None
                current: Instance | None = None
                if pending is not None:
                    current, pending = pending, None
                elif time.monotonic() < not_before:
                    note = "waiting as the API asked (Retry-After)"
                else:
                    try:
                        current = yield ("call", self._fetch_instance, instance_id)
                    except NotFoundError as exc:
                        if until == "removed":
                            gone = dataclasses.replace(last, status="removed")
                            reporter.finish(gone, time.monotonic() - started, "is removed")
                            return gone
                        raise InstanceFailedError(
                            f"instance {label} disappeared while waiting for it to be {until} "
                            f"(last status: {last_status or 'unknown'})",
                            instance_id=instance_id,
                            last_status=last_status,
                            status_error=None,
                        ) from exc
                    except Exception as exc:
                        if not _is_transient(exc):
                            raise
                        last_error = exc
                        not_before = max(not_before, time.monotonic() + _server_delay(exc))
                        note = f"API trouble, retrying: {type(exc).__name__}"
                        logger.info(
                            "wait for %s: %s; retrying", label, getattr(exc, "message", exc)
                        )
                if current is not None:
                    last, last_status = current, current.status
                    verdict, note = self._wait_verdict(current, until, label)
                    if verdict == "probe":
                        assert probe is not None
                        if (yield ("call", is_reachable, current, probe)):
                            verdict = "yes"
                        else:
                            reason = getattr(probe, "last_reason", None)
                            note = (
                                f"waiting for ports: {reason}"
                                if reason
                                else "waiting for the probe"
                            )
                    if verdict == "yes":
                        elapsed = time.monotonic() - started
                        reporter.update(current, elapsed)
                        reporter.finish(current, elapsed, f"is {until}")
                        return current
                    urgent = until == "reachable" and current.status == "running"
                    schedule.observe(current.status, urgent=urgent)
                elapsed = time.monotonic() - started
                if last_status is not None and last is not None:
                    reporter.update(last, elapsed, note)
                if limit is not None and elapsed >= limit:
                    detail = f" ({note})" if note else ""
                    if last_error is not None and last_status is None:
                        detail = f" (API errors: {type(last_error).__name__})"
                    raise NovitaTimeoutError(
                        f"instance {label} was not {until} after {limit:g} s; last status: "
                        f"{last_status or 'unknown'}{detail}",
                        last_status=last_status,
                        hint=(
                            f"It may still get there: novita.wait({instance_id!r}, "
                            f"until={until!r}) again, or novita.watch([{instance_id!r}])."
                        ),
                    )
                yield ("sleep", pause(elapsed))
        except (KeyboardInterrupt, asyncio.CancelledError):
            elapsed = time.monotonic() - started
            message = (
                f"Stopped waiting for {label} to be {until} after {elapsed:.0f} s "
                f"(last status: {last_status or 'unknown'}). The instance keeps running on "
                f"Novita (and is billed while it runs); wait again with "
                f"novita.wait({instance_id!r}, until={until!r}) or watch it with "
                f"novita.watch([{instance_id!r}])."
            )
            logger.info(message)
            print(message, file=sys.stderr)
            if last is not None:
                try:
                    reporter.finish(last, elapsed, "stopped waiting (the instance keeps running)")
                except Exception:  # noqa: BLE001 - the interrupt matters more than the display
                    logger.debug("progress display failed after Ctrl-C", exc_info=True)
            raise

    def _fetch_instance(self: Novita, instance_id: str) -> Instance:
        return self.to_instance(self.api.get_instance(instance_id))

    def _wait_subject(self: Novita, instance: Instance | str, until: str) -> Instance | str:
        """The Instance to wait on; the bare id when it is already gone and ``until`` is removed."""
        if isinstance(instance, Instance):
            if not instance.id:
                raise ValidationError("instance has no id", field="instance")
            return instance
        if not isinstance(instance, str) or not instance.strip():
            raise ValidationError(
                f"instance must be an Instance, an id or a name; got {instance!r}",
                field="instance",
            )
        try:
            return self.resolve(instance)
        except NotFoundError:
            if until == "removed":
                return instance
            raise

    def _wait_verdict(
        self: Novita, current: Instance, until: str, label: str
    ) -> tuple[str, str | None]:
        """``("yes" | "no" | "probe", note)``: reached, not yet, or ask the readiness probe.
        Raises on a dead end (a failure, or removal while waiting for anything else)."""
        if until == "removed":
            # Deleting a failed instance is the usual cleanup: its statusError is no news.
            return ("yes" if current.status == "removed" else "no"), None
        if current.failed:
            error = current.status_error
            assert error is not None
            raise InstanceFailedError(
                f"instance {label} failed while waiting for it to be {until}: "
                f"{error.state or 'error'}: {error.message or 'no message'} "
                f"(status {current.status})",
                instance_id=current.id,
                last_status=current.status,
                status_error=error,
            )
        if current.status in GONE_STATUSES:
            raise InstanceFailedError(
                f"instance {label} is {current.status}: it will never be {until}",
                instance_id=current.id,
                last_status=current.status,
                status_error=None,
            )
        if until in ("running", "exited"):
            return ("yes" if current.status == until else "no"), None
        # reachable
        if current.status != "running":
            return "no", None
        if not components_running(current):
            return "no", "waiting for SSH/Jupyter to come up"
        return "probe", None

    # -- watch ---------------------------------------------------------------------------------
    def watch(
        self: Novita,
        instances: Iterable[Instance | str] | Instance | str | None = None,
        interval: float | None = 5.0,
        *,
        callbacks: Iterable[EventCallback] | EventCallback = (),
        notify: EventCallback | None = None,
        stop_when_terminal: bool = False,
        page_size: int = 100,
        error_backoff: Backoff | None = None,
    ) -> Watcher:
        """Watch instances in the background (a daemon thread) and return the running Watcher.

        ``instances``: None for all of your instances, or ids / names (resolved once) /
        Instances. Each tick makes one paginated list call (``page_size`` per page), never one
        GET per instance. Status changes go to ``callbacks``, to ``notify`` (e.g. a
        ``webhooks.Notifier``) and to ``watcher.events``; first sightings are events too
        (``old_status`` None). ``interval`` None uses the configured poll interval.
        """
        if interval is None:
            interval = getattr(self.config, "poll_interval", None) or 5.0
        interval = _positive_number(interval, "interval")
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= 100
        ):
            raise ValidationError(
                f"page_size must be an integer from 1 to 100, got {page_size!r}", field="page_size"
            )
        if callable(callbacks):
            callbacks = [callbacks]
        callback_list = list(callbacks)
        for index, callback in enumerate(callback_list):
            if not callable(callback):
                raise ValidationError(
                    f"callbacks[{index}] must be callable(event), got {callback!r}",
                    field="callbacks",
                )
        if notify is not None and not callable(notify):
            raise ValidationError(f"notify must be callable(event), got {notify!r}", field="notify")
        if error_backoff is not None and not isinstance(error_backoff, Backoff):
            raise ValidationError("error_backoff must be a Backoff", field="error_backoff")
        ids = None if instances is None else self._watch_ids(instances)
        watcher = Watcher(
            self,
            ids,
            interval=interval,
            callbacks=callback_list,
            notify=notify,
            stop_when_terminal=bool(stop_when_terminal),
            page_size=page_size,
            error_backoff=error_backoff,
            known=[i for i in _as_list(instances) if isinstance(i, Instance)],
        )
        return watcher.start()

    def _watch_ids(self: Novita, instances: Iterable[Instance | str] | Instance | str) -> list[str]:
        """Ids of what to watch. Strings are resolved once, all together, against ONE listing
        (exact id, else the one live instance with that exact name), never one GET each."""
        items = _as_list(instances)
        for index, item in enumerate(items):
            if isinstance(item, Instance):
                if not item.id:
                    raise ValidationError(f"instances[{index}] has no id", field="instances")
            elif not isinstance(item, str) or not item.strip():
                raise ValidationError(
                    f"instances[{index}] must be an Instance, an id or a name; got {item!r}",
                    field="instances",
                )
        if not items:
            raise ValidationError(
                "instances is empty; pass None to watch all of your instances", field="instances"
            )
        listing = self.api.list_instances() if any(isinstance(i, str) for i in items) else []
        by_id = {str(raw.get("id")): raw for raw in listing}
        ids: list[str] = []
        for item in items:
            if isinstance(item, Instance):
                ids.append(item.id)
                continue
            ref = item.strip()
            if ref in by_id:
                ids.append(ref)
                continue
            named = [
                str(raw.get("id"))
                for raw in listing
                if raw.get("name") == ref and raw.get("status") not in GONE_STATUSES
            ]
            if len(named) > 1:
                raise ValidationError(
                    f"{len(named)} live instances are named {ref!r} (ids: {', '.join(named)}); "
                    "pass an id",
                    field="instances",
                )
            if not named:
                raise NotFoundError(
                    f"no instance has the id or name {ref!r}",
                    hint="novita.instances() lists them (names are matched exactly).",
                )
            ids.append(named[0])
        return ids


def _as_list(instances: Any) -> list[Any]:
    if instances is None:
        return []
    if isinstance(instances, Instance | str):
        return [instances]
    return list(instances)


def _label(instance: Instance) -> str:
    return f"{instance.name} ({instance.id})" if instance.name else instance.id
