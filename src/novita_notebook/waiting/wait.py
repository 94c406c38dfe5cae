"""The wait: poll one instance on the adaptive schedule until it is running, reachable, exited
or removed; argument checks, the verdicts that end a wait early, and the two drivers.

``wait`` runs on the caller's thread: Ctrl-C lands in it directly, nothing is left behind, and
the instance keeps going on Novita's side (we say so and how to resume). ``wait_async`` is the
same wait (one generator of steps drives both) with ``asyncio.sleep`` pauses and HTTP calls in
the loop's executor; it runs *on* the caller's loop and never re-enters it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any, Protocol

from ..errors import (
    InstanceFailedError,
    NotFoundError,
    ValidationError,
    is_transient,
    requested_delay,
)
from ..errors import TimeoutError as NovitaTimeoutError
from ..models import GONE_STATUSES, Instance, set_instance_eta
from ..validation import WAIT_TARGETS, check_progress
from ..vocabulary import target_word
from .backoff import Backoff, positive_number, schedule_from
from .history import step_of
from .learned import (
    LearnedSchedule,
    anchor_of,
    eta_text,
    history_of,
    instance_eta,
    prior_scale,
    track,
    untrack,
)
from .probes import HttpProbe, Probe, components_running, is_reachable
from .progress import ProgressSink, progress_sink

logger = logging.getLogger(__name__)

Step = tuple[Any, ...]

#: A create() handle younger than this (by its createdAt, whole seconds) counts as a poll.
FRESH_SECONDS = 10.0

#: Targets a learned schedule knows the way to (stop and delete phases are not learned).
LEARNED_TARGETS = ("running", "reachable")

#: Seconds a statusError may stand on an instance still on its way before the wait counts it
#: as a failure. No public source says when Novita sets statusError (a retried pull may leave
#: one behind), so one seen before the instance comes to rest is a warning on the progress
#: line until it has lasted this long; on a rested instance (exited) it fails at once.
STATUS_ERROR_WINDOW = 120.0

# Instance.eta asks this (models never import waiting/): the live wait's or watcher's view.
set_instance_eta(lambda instance: (eta := instance_eta(instance)) and eta[0])


@dataclasses.dataclass
class WaitPlan:
    """A wait's checked arguments: everything is validated before anything is drawn or sent."""

    until: str
    limit: float | None
    schedule: Backoff | LearnedSchedule
    progress: Any
    probe: Probe | None
    #: build a LearnedSchedule around ``schedule`` once the instance is known (adaptive
    #: waits for running/reachable; a fixed pace, explicit or from the config, never learns)
    learn: bool = False
    #: seconds a statusError may last on an instance on its way before it is a failure
    error_window: float = dataclasses.field(default_factory=lambda: STATUS_ERROR_WINDOW)


def plan_wait(
    until: str,
    timeout: float | None,
    progress: Any,
    probe: Probe | None,
    poll: Backoff | LearnedSchedule | float | None,
    default_interval: float | None = None,
) -> WaitPlan:
    """Check every wait argument. ``poll`` None falls back to ``default_interval`` (the
    client's ``poll_interval``, a fixed pace), else to the adaptive ``Backoff()``, which
    learns from the phase history on the way to running (``LearnedSchedule``)."""
    if until not in WAIT_TARGETS:
        raise ValidationError(
            f"until must be one of {', '.join(WAIT_TARGETS)}; got {until!r}", field="until"
        )
    limit = None if timeout is None else positive_number(timeout, "timeout")
    if poll is None and default_interval is not None:
        poll = default_interval
    adaptive = poll is None or isinstance(poll, Backoff | LearnedSchedule)
    schedule = poll.fresh() if isinstance(poll, LearnedSchedule) else schedule_from(poll)
    check_progress(progress)
    if probe is not None and not callable(probe):
        raise ValidationError("probe must be a callable probe(instance) -> bool", field="probe")
    if until == "reachable" and probe is None:
        probe = HttpProbe()
    return WaitPlan(until, limit, schedule, progress, probe, adaptive and until in LEARNED_TARGETS)


class WaitSource(Protocol):
    """What a wait polls: the service that looks instances up and fetches them."""

    owner: Any

    def poll_interval(self) -> float | None: ...

    def subject(self, instance: Instance | str, until: str) -> Instance | str: ...

    def fetch(self, instance_id: str) -> Instance: ...


def run_blocking(steps: Generator[Step, Any, Instance]) -> Instance:
    """Drive a wait on the caller's thread: ``time.sleep`` pauses, calls made in place."""
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


async def run_async(steps: Generator[Step, Any, Instance]) -> Instance:
    """Drive a wait on the running loop: ``asyncio.sleep`` pauses, each call (and probe) in
    the loop's default executor, so cancelling stops the wait after the call in flight."""
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


def wait_steps(
    source: WaitSource,
    instance: Instance | str,
    until: str,
    timeout: float | None,
    progress: Any,
    probe: Probe | None,
    poll: Backoff | LearnedSchedule | float | None,
) -> Generator[Step, Any, Instance]:
    """The wait as a generator, shared by ``wait`` and ``wait_async``. It yields
    ``("sleep", seconds)`` or ``("call", function, *args)`` and is sent the result (or
    thrown the exception); the drivers only decide how to sleep and where calls run."""
    plan = plan_wait(until, timeout, progress, probe, poll, source.poll_interval())
    run = _WaitRun(source, instance, plan, progress_sink(plan.progress, until))
    try:
        known = yield from run.lookup()
        if isinstance(known, str):  # already gone while waiting for removed
            gone = Instance(id=known, name="", status="removed", _client=source.owner)
            run.reporter.update(gone, run.elapsed())
            run.reporter.finish(gone, run.elapsed(), f"is {target_word('removed')}")
            return gone
        return (yield from run.poll(known))
    except (KeyboardInterrupt, asyncio.CancelledError):
        run.interrupted()
        raise
    finally:
        run.release()


class _WaitRun:
    """The state of one wait: what was last seen, the schedule, and how to report it."""

    def __init__(
        self, service: WaitSource, instance: Instance | str, plan: WaitPlan, reporter: ProgressSink
    ) -> None:
        self.service = service
        self.instance = instance
        self.plan = plan
        self.reporter = reporter
        self.started = time.monotonic()
        # Until the lookup answers, name the instance as the caller did (for Ctrl-C).
        self.instance_id = instance.id if isinstance(instance, Instance) else str(instance)
        self.label = label_of(instance) if isinstance(instance, Instance) else repr(instance)
        self.last: Instance | None = instance if isinstance(instance, Instance) else None
        self.last_status: str | None = None
        self.last_error: BaseException | None = None
        # Monotonic time before which the server (Retry-After) or the breaker asked us not to
        # call: the schedule never polls earlier than that.
        self.not_before = 0.0
        self.tracked: LearnedSchedule | None = None
        # Monotonic time a statusError was first seen on the instance on its way (None: none).
        self.warning_since: float | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def learn(self, known: Instance) -> None:
        """Swap the plan's Backoff for a LearnedSchedule of this instance's key (the Backoff
        stays its fallback). A caller's handle still queued means the transition began just
        before this wait; a late wait anchors on ``created_at``; else the schedule learns
        only from transitions it sees."""
        schedule = self.plan.schedule
        if not isinstance(schedule, LearnedSchedule):
            history = history_of(getattr(self.service, "owner", None))
            if history is None:
                history = history_of(self.service)
            if history is None:
                return
            started_at = anchor_of(known)
            if isinstance(self.instance, Instance) and step_of(self.instance.status) == "queued":
                started_at = self.started
            schedule = LearnedSchedule.for_instance(
                known,
                history,
                fallback=schedule,
                started_at=started_at,
                scale=prior_scale(getattr(self.service, "owner", None)),
            )
        if not track(known.id, schedule):
            schedule.record = False  # a watcher (or another wait) records this one
        else:
            self.tracked = schedule
        self.plan.schedule = schedule

    def fresh_from_create(self, known: Instance) -> bool:
        """A handle create() just returned (it carries the fallback report, is still queued
        and was created seconds ago) says what a first poll would: the instance cannot be
        further than queued. Only for learned schedules with history, whose first pause
        aims at the expected arrival; without history the wait is today's (fetch first)."""
        schedule = self.plan.schedule
        created = known.created_at
        if (
            not isinstance(schedule, LearnedSchedule)
            or known.fallback_report is None
            or step_of(known.status) != "queued"
            or created is None
        ):
            return False
        age = (datetime.now(UTC) - created).total_seconds()
        return abs(age) <= FRESH_SECONDS and schedule.has_history(known.status)

    def release(self) -> None:
        if self.tracked is not None:
            untrack(self.instance_id, self.tracked)
            self.tracked = None

    def eta_note(self, note: str | None) -> str | None:
        """The note with the expected remaining time appended (learned waits only)."""
        schedule = self.plan.schedule
        if not isinstance(schedule, LearnedSchedule) or step_of(self.last_status) is None:
            return note
        text = eta_text(schedule.eta())
        if not text:
            return note
        return text if note is None else f"{note}; {text}"

    def pause(self, elapsed: float) -> float:
        delay = max(self.plan.schedule.next_delay(), self.not_before - time.monotonic())
        limit = self.plan.limit
        return delay if limit is None else min(delay, max(0.0, limit - elapsed))

    def backoff_from(self, exc: BaseException) -> None:
        self.not_before = max(self.not_before, time.monotonic() + requested_delay(exc))

    def lookup(self) -> Generator[Step, Any, Instance | str]:
        """The lookup, retried on API blips: a wait started in one should wait it out."""
        while True:
            try:
                return (yield ("call", self.service.subject, self.instance, self.plan.until))
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.backoff_from(exc)
                elapsed = self.elapsed()
                if self.plan.limit is not None and elapsed >= self.plan.limit:
                    raise NovitaTimeoutError(
                        f"could not look up {self.instance!r} within {self.plan.limit:g} s: "
                        f"{getattr(exc, 'message', exc)}",
                        last_status=None,
                    ) from exc
                yield ("sleep", self.pause(elapsed))

    def poll(self, known: Instance) -> Generator[Step, Any, Instance]:
        self.instance_id, self.label, self.last = known.id, label_of(known), known
        if self.plan.learn:
            self.learn(known)
        # A name or id was just looked up: that answer is the first poll. A handle the
        # caller passed may be stale, so it is fetched again, unless it is fresh from
        # create() and the history knows the way ahead (see ``fresh_from_create``).
        pending: Instance | None = known if not isinstance(self.instance, Instance) else None
        if pending is None and self.fresh_from_create(known):
            pending = known
        while True:
            note: str | None = None
            current: Instance | None = None
            if pending is not None:
                current, pending = pending, None
            elif time.monotonic() < self.not_before:
                note = "waiting as the API asked (Retry-After)"
            else:
                current, note = yield from self.fetch_once()
            if current is not None:
                done, note = yield from self.judge(current)
                if done:
                    return current
            elapsed = self.elapsed()
            if self.last_status is not None and self.last is not None:
                self.reporter.update(self.last, elapsed, self.eta_note(note))
            if self.plan.limit is not None and elapsed >= self.plan.limit:
                raise self.timed_out(note)
            yield ("sleep", self.pause(elapsed))

    def fetch_once(self) -> Generator[Step, Any, tuple[Instance | None, str | None]]:
        """One GET. A vanished instance is removed (the goal, or a failure); a transient error
        is noted and waited out."""
        try:
            return (yield ("call", self.service.fetch, self.instance_id)), None
        except NotFoundError as exc:
            if self.plan.until == "removed":
                assert self.last is not None
                return dataclasses.replace(self.last, status="removed"), None
            raise InstanceFailedError(
                f"instance {self.label} disappeared while waiting for it to be "
                f"{self.plan.until} (last status: {self.last_status or 'unknown'})",
                instance_id=self.instance_id,
                last_status=self.last_status,
                status_error=None,
            ) from exc
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.last_error = exc
            self.backoff_from(exc)
            logger.info("wait for %s: %s; retrying", self.label, getattr(exc, "message", exc))
            return None, f"API trouble, retrying: {type(exc).__name__}"

    def judge(self, current: Instance) -> Generator[Step, Any, tuple[bool, str | None]]:
        """Whether ``current`` ends the wait; asks the probe when the verdict needs it."""
        until = self.plan.until
        self.last, self.last_status = current, current.status
        verdict, note = verdict_of(current, until, self.label)
        if verdict != "yes" and until != "removed":
            note = self.judge_warning(current) or note
        if verdict == "probe":
            probe = self.plan.probe
            assert probe is not None
            if (yield ("call", is_reachable, current, probe)):
                verdict = "yes"
            else:
                reason = getattr(probe, "last_reason", None)
                note = f"waiting for ports: {reason}" if reason else "waiting for the probe"
        if verdict == "yes":
            if isinstance(self.plan.schedule, LearnedSchedule):
                # a sample only when the way to running was completed (not on failures)
                self.plan.schedule.finish("running")
            elapsed = self.elapsed()
            self.reporter.update(current, elapsed)
            self.reporter.finish(current, elapsed, f"is {target_word(until)}")
            return True, note
        urgent = until == "reachable" and current.status == "running"
        self.plan.schedule.observe(current.status, urgent=urgent)
        return False, note

    def judge_warning(self, current: Instance) -> str | None:
        """A statusError on an instance still on its way: the progress line's warning while
        it is young, a failure once it has stood ``error_window`` seconds."""
        warning = current.warning
        if warning is None:
            self.warning_since = None
            return None
        now = time.monotonic()
        if self.warning_since is None:
            self.warning_since = now
        lasted, window = now - self.warning_since, self.plan.error_window
        if lasted >= window:
            raise InstanceFailedError(
                f"instance {self.label} failed while waiting for it to be {self.plan.until}: "
                f"{warning} (status {current.status}; the statusError stood {lasted:.1f} s, "
                f"longer than the {window:g} s it is given to clear)",
                instance_id=current.id,
                last_status=current.status,
                status_error=warning,
            )
        return f"warning: statusError {warning} ({lasted:.0f} s; a failure after {window:g} s)"

    def timed_out(self, note: str | None) -> NovitaTimeoutError:
        detail = f" ({note})" if note else ""
        if self.last_error is not None and self.last_status is None:
            detail = f" (API errors: {type(self.last_error).__name__})"
        until, instance_id = self.plan.until, self.instance_id
        return NovitaTimeoutError(
            f"instance {self.label} was not {until} after {self.plan.limit:g} s; last status: "
            f"{self.last_status or 'unknown'}{detail}",
            last_status=self.last_status,
            hint=(
                f"It may still get there: novita.wait({instance_id!r}, "
                f"until={until!r}) again, or novita.watch([{instance_id!r}])."
            ),
        )

    def interrupted(self) -> None:
        """Ctrl-C or cancellation: say that only the waiting stopped, and how to resume."""
        elapsed, until, instance_id = self.elapsed(), self.plan.until, self.instance_id
        message = (
            f"Stopped waiting for {self.label} to be {until} after {elapsed:.0f} s "
            f"(last status: {self.last_status or 'unknown'}). The instance keeps running on "
            f"Novita (and is billed while it runs); wait again with "
            f"novita.wait({instance_id!r}, until={until!r}) or watch it with "
            f"novita.watch([{instance_id!r}])."
        )
        logger.info(message)
        print(message, file=sys.stderr)
        if self.last is not None:
            try:
                self.reporter.finish(
                    self.last, elapsed, "stopped waiting (the instance keeps running)"
                )
            except Exception:  # noqa: BLE001 - the interrupt matters more than the display
                logger.debug("progress display failed after Ctrl-C", exc_info=True)


def verdict_of(current: Instance, until: str, label: str) -> tuple[str, str | None]:
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


def label_of(instance: Instance) -> str:
    return f"{instance.name} ({instance.id})" if instance.name else instance.id
