"""A poll schedule that expects transitions from the phase history, and the ETA people see.
Sparse while the expected arrival is far, dense around it, then today's proportional ``Backoff``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from ..errors import ValidationError
from .backoff import Backoff, positive_number
from .history import PATHS, Estimate, PhaseHistory, path_for, prior_estimate, step_of

__all__ = [
    "LearnedSchedule",
    "format_eta",
    "eta_text",
    "history_of",
    "instance_eta",
    "live_schedule",
    "prior_scale",
]

log = logging.getLogger(__name__)

#: Share of the expected provisioning time between two polls past the expected arrival. Tuned
#: in benchmarks/figures_learned.py (+-20 % phase jitter, 5 earlier runs; wait() takes a fresh
#: create() handle as its first poll): at 10 s 0.14 gave 5.7x fewer calls than 1-s polling but
#: 15 % lag on the sandbox; 0.08 costs ~0.25 call more and cuts the lag by a fifth (simulated
#: 8.8 -> 7.2 %); 30 and 90 s stay far past 4x either way.
DENSE_FRACTION = 0.08
#: The dense polls start this share of the lower band before the expected arrival: a history
#: of five is often off by a band, and an arrival before the first poll costs its whole gap.
#: Simulated at 10 s (benchmarks/figures_learned.py, measured waits on one frozen history):
#: 0.1 with CENSORED_WIDTH takes the lag from 7.0 to 5.6 % for +0.5 call.
DENSE_LEAD = 0.1
#: A status the first look in the band already found began at some unknown time since the
#: look before. Its estimate is taken from a band this many times as wide below the
#: expectation: from the band itself, a history that expects too late records its own
#: expectation, never learns that the arrivals got faster, and misses them by a third (see
#: tests/waiting/test_learned.py::test_a_history_that_expects_too_late_learns_the_faster_arrivals).
CENSORED_WIDTH = 3.0


class LearnedSchedule:
    """Drop-in for ``Backoff`` in ``wait()`` and the watcher, for one instance on the way to
    ``target`` (running).

    From the ``history`` of its (product, region, image) it expects each phase's duration.
    While the expected arrival is far it polls every ``sparse`` seconds at most (default: the
    fallback's cap); from a low quantile of the expected arrival to a high one it polls every
    ``dense_fraction`` of the expected provisioning time (less when the history is sharp);
    past the high quantile, or without learned history for every phase ahead, it is exactly
    ``fallback`` (today's proportional ``Backoff``). ``observe`` keeps a timeline of the
    phases seen; ``finish`` (or observing the target) records it into the history once, where
    a surprise widens that key's next estimate. ``next_delay(not_before=...)`` never returns
    a pause ending before ``not_before`` (a Retry-After or an open breaker, on ``clock``).
    ``started_at`` (on ``clock``): when the transition began (the create or start call), so a
    wait whose first poll already sees ``creating`` or ``pulling`` still knows where it is.
    """

    def __init__(
        self,
        history: PhaseHistory | None = None,
        product: str | None = None,
        region: str | None = None,
        image: str | None = None,
        *,
        fallback: Backoff | None = None,
        target: str = "running",
        dense_fraction: float = DENSE_FRACTION,
        sparse: float | None = None,
        image_gb: float | None = None,
        scale: float = 1.0,
        record: bool = True,
        started_at: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if history is not None and not isinstance(history, PhaseHistory):
            raise ValidationError("history must be a PhaseHistory", field="history")
        if fallback is not None and not isinstance(fallback, Backoff):
            raise ValidationError("fallback must be a Backoff", field="fallback")
        self.history = history
        self.key = (str(product or ""), str(region or ""), str(image or ""))
        self.fallback = (
            fallback.fresh() if fallback is not None else Backoff(clock=clock or time.monotonic)
        )
        self.clock = clock or self.fallback.clock
        if self.fallback.clock is not self.clock:
            self.fallback.clock = self.clock
            self.fallback.reset()
        self.target = target
        self.dense_fraction = positive_number(dense_fraction, "dense_fraction")
        self.sparse = positive_number(sparse, "sparse") if sparse is not None else None
        self.image_gb = image_gb
        self.scale = positive_number(scale, "scale")
        self.record = bool(record)
        self.started_at = started_at
        self._estimates: dict[str, Estimate] | None = None
        self._timeline: list[tuple[str, float]] = []
        # per timeline entry: how far its estimated start may be off (before, after)
        self._spread: list[tuple[float, float]] = []
        self._status: str | None = None
        self._last_seen = 0.0
        self._first_is_entry = False
        self._urgent = False
        self._recorded: dict[str, float] | None = None

    @classmethod
    def for_instance(
        cls, instance: Any, history: PhaseHistory | None = None, **options: Any
    ) -> LearnedSchedule:
        """The schedule for an ``Instance`` (its product, region and image form the key)."""
        return cls(
            history,
            getattr(instance, "product_id", None) or getattr(instance, "product_name", None),
            getattr(instance, "region", None) or getattr(instance, "cluster_id", None),
            getattr(instance, "image_url", None),
            **options,
        )

    def _options(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "dense_fraction": self.dense_fraction,
            "sparse": self.sparse,
            "image_gb": self.image_gb,
            "scale": self.scale,
            "record": self.record,
            "started_at": self.started_at,
            "clock": self.clock,
        }

    # -- the Backoff interface -----------------------------------------------------------------
    @property
    def initial(self) -> float:
        return self.fallback.initial

    @property
    def cap(self) -> float:
        return self.fallback.cap

    def fresh(self) -> LearnedSchedule:
        """A new schedule for the same key (history re-read on first use), no timeline."""
        return LearnedSchedule(self.history, *self.key, fallback=self.fallback, **self._options())

    def scaled(self, ratio: float) -> LearnedSchedule:
        """The same on a faster (ratio < 1) clock: the fallback, the sparse pace and the prior
        scale; learned durations are already in observed seconds."""
        ratio = positive_number(ratio, "ratio")
        options = self._options()
        options["scale"] = self.scale * ratio
        if self.sparse is not None:
            options["sparse"] = self.sparse * ratio
        return LearnedSchedule(
            self.history, *self.key, fallback=self.fallback.scaled(ratio), **options
        )

    def reset(self) -> None:
        self.fallback.reset()

    def ceiling_for(self, status: str | None, *, urgent: bool = False) -> float:
        return self.fallback.ceiling_for(status, urgent=urgent)

    def observe(
        self, status: str | None, *, urgent: bool = False, elapsed: float | None = None
    ) -> bool:
        """Tell the schedule what the instance reports (as ``Backoff.observe``). ``elapsed``:
        seconds it has already spent in this status, when known. Without it (or ``started_at``
        given to the constructor), a first sighting outside ``queued`` is not taken as the
        phase's start. Reaching ``target`` records the timeline (see ``finish``)."""
        changed = self.fallback.observe(status, urgent=urgent)
        self._urgent = urgent
        now = self.clock()
        if status is None:
            return changed
        if not self._timeline and self.started_at is not None and elapsed is None:
            # the transition began at started_at: its first phase, whatever is seen now
            first = "toStart" if path_for(status) == PATHS["start"] else "toCreate"
            self._timeline.append((first, min(self.started_at, now)))
            self._spread.append((0.0, 0.0))
            self._first_is_entry = True
            self._status, self._last_seen = first, min(self.started_at, now)
        if not self._timeline:
            entry = now - max(0.0, elapsed) if elapsed is not None else now
            self._first_is_entry = elapsed is not None or step_of(status) == "queued"
            self._timeline.append((status, entry))
            self._spread.append((0.0, 0.0))
        elif status != self._status and (
            step_of(status) is None or step_of(status) != step_of(self._status)
        ):
            entry, half = self._entry_estimate(status, now)
            self._timeline.append((status, entry))
            self._spread.append((half, half))
        self._status = status
        self._last_seen = now
        if status == self.target:
            self.finish()
        return changed

    @property
    def current_step(self) -> float:
        """The pause ``next_delay`` would return now (the fallback's step without history)."""
        planned = self._planned(self.clock())
        return self.fallback.current_step if planned is None else planned

    def next_delay(self, *, not_before: float | None = None) -> float:
        """The next pause in seconds; never ends before ``not_before`` (a ``clock`` time)."""
        now = self.clock()
        planned = self._planned(now)
        delay = self.fallback.next_delay() if planned is None else planned
        if not_before is not None:
            delay = max(delay, not_before - now)
        return delay

    # -- learning ------------------------------------------------------------------------------
    def finish(self, status: str | None = None) -> dict[str, float]:
        """Record the timeline into the history once (when ``record`` and a history are set);
        returns the per-phase durations recorded. Pass the final status if not observed."""
        if status is not None and status != self._status:
            self.observe(status)  # records when status is the target
        if self._recorded is not None:
            return self._recorded
        self._recorded = {}
        if self.history is not None and self.record and len(self._timeline) >= 2:
            medians = {phase: e.median for phase, e in self._get_estimates().items()}
            try:
                self._recorded = self.history.record_transitions(
                    *self.key,
                    self._timeline,
                    first_is_entry=self._first_is_entry,
                    expected=medians,
                )
            except (OSError, TimeoutError) as error:  # a full disk never breaks a wait
                log.warning("phase history not recorded: %s", error)
        return self._recorded

    @property
    def timeline(self) -> list[tuple[str, float]]:
        """(status, estimated entry time on ``clock``) for each phase seen so far."""
        return list(self._timeline)

    def _get_estimates(self) -> dict[str, Estimate]:
        if self._estimates is None:
            if self.history is None:
                self._estimates = {
                    phase: prior_estimate(
                        phase, self.key[2], image_gb=self.image_gb, scale=self.scale
                    )
                    for phase in ("queued", "creating", "pulling", "starting")
                }
            else:
                self._estimates = self.history.estimates(
                    *self.key, image_gb=self.image_gb, scale=self.scale
                )
        return self._estimates

    def _ahead(self, status: str | None) -> list[str]:
        """The phases from ``status``'s (included) to the target along this transition."""
        phase = step_of(status)
        path = path_for(self._timeline[0][0] if self._timeline else status)
        return list(path[path.index(phase) :]) if phase in path else []

    def _entry_estimate(self, status: str, now: float) -> tuple[float, float]:
        """When ``status`` began: somewhere between the last sighting of the old status and
        now; the middle of the part of that gap the expected durations allow (the whole gap
        when they allow none of it). Not the expected time itself: then a sparse schedule
        would record its own expectation and never learn the spread. Returns the estimate
        and its uncertainty (half the width it was taken from)."""
        previous_status, previous_entry = self._timeline[-1]
        estimates = self._get_estimates()
        upcoming = set(self._ahead(status)) if step_of(status) is not None else set()
        passed = [estimates[p] for p in self._ahead(previous_status) if p not in upcoming]
        expected = previous_entry + sum(e.median for e in passed)
        down = math.sqrt(sum((e.median - e.low) ** 2 for e in passed))
        up = math.sqrt(sum((e.high - e.median) ** 2 for e in passed))
        if self._last_seen < expected - down and all(e.learned for e in passed):
            down *= CENSORED_WIDTH  # no look inside the band before this one: censored
        low, high = max(self._last_seen, expected - down), min(now, expected + up)
        if low > high:
            low, high = self._last_seen, now
        return (low + high) / 2, (high - low) / 2

    def _window(self) -> tuple[float, float, float, float] | None:
        """(low, median, high, provisioning horizon) of the expected arrival at the target, on
        ``clock``; None when the fallback should decide (no full history ahead, urgent, or the
        current phase's start unknown)."""
        if self._urgent or not self._timeline or self._status == self.target:
            return None
        ahead = self._ahead(self._status)
        if not ahead or (len(self._timeline) == 1 and not self._first_is_entry):
            return None
        estimates = self._get_estimates()
        chosen = [estimates[p] for p in ahead]
        if not all(e.learned for e in chosen):
            return None
        entry = self._timeline[-1][1]
        before, after = self._spread[-1]
        median = entry + sum(e.median for e in chosen)
        down = math.sqrt(sum((e.median - e.low) ** 2 for e in chosen) + before**2)
        up = math.sqrt(sum((e.high - e.median) ** 2 for e in chosen) + after**2)
        horizon = max(median - self._timeline[0][1], 1e-6)
        return median - down, median, median + up, horizon

    def _planned(self, now: float) -> float | None:
        """The learned pause, or None to let the fallback decide. Polls fall on the grid
        start, start + step, ... up to the high quantile, where start is a little before the
        median (``DENSE_LEAD``): a first poll at the median finds about half the arrivals, so
        a grid from the low quantile would mostly poll in vain."""
        window = self._window()
        if window is None:
            return None
        low, median, high, horizon = window
        step = min(self.dense_fraction * horizon, max((high - low) / 2, self.fallback.initial))
        step = max(step, self.fallback.floor, 1e-3)
        start = median - DENSE_LEAD * (median - low)
        index = 0 if now < start else math.floor((now - start) / step) + 1
        # a status seen inside the band moves the median a little: not a reason to poll again
        # at once, so polls there stay a step apart
        point = max(start + index * step, self._last_seen + step)
        if point > high + step:
            return None  # past the expected band: today's proportional schedule
        sparse = self.sparse if self.sparse is not None else self.fallback.cap
        return max(self.fallback.floor, min(point - now, sparse))

    def has_history(self, status: str | None) -> bool:
        """Whether every phase ahead of ``status`` has learned history (not the prior)."""
        ahead = self._ahead(status)
        estimates = self._get_estimates()
        return bool(ahead) and all(estimates[phase].learned for phase in ahead)

    # -- ETA -----------------------------------------------------------------------------------
    def eta(
        self, status: str | None = None, elapsed_in_phase: float | None = None
    ) -> tuple[float, dict[str, float], bool]:
        """(seconds until ``target``, {phase: seconds left in it}, whether every phase ahead
        has history). Defaults: the status last observed, the time since its phase began, and
        the phases that are expected to have passed since that poll. At the target (or off
        the way to it) the answer is ``(0.0, {}, has_history)``; ``0.0`` also when overdue."""
        estimates = self._get_estimates()
        now = self.clock()
        if status is None and elapsed_in_phase is None and self._timeline:
            status, entry, seen = self._status, self._timeline[-1][1], self._last_seen
        else:
            status = self._status if status is None else status
            seen = now
            entry = now - (elapsed_in_phase or 0.0)
        ahead = self._ahead(status)
        if not ahead:
            learned = bool(self._timeline) and all(e.learned for e in estimates.values())
            return 0.0, {}, learned
        # expected end of each phase ahead: the current one from what the last poll knew
        end = seen + estimates[ahead[0]].remaining(seen - entry)
        per_phase: dict[str, float] = {}
        start = now
        for index, phase in enumerate(ahead):
            if index:
                end += estimates[phase].median
            per_phase[phase] = max(0.0, end - max(start, now))
            start = max(start, end)
        has_history = all(estimates[p].learned for p in ahead)
        return sum(per_phase.values()), per_phase, has_history

    def __repr__(self) -> str:
        product, region, image = self.key
        return f"LearnedSchedule({product!r}, {region!r}, {image!r}, fallback={self.fallback!r})"


def format_eta(status: str | None, eta: tuple[float, dict[str, float], bool]) -> str:
    """``"pulling, ready in ~40 s"``, or ``"pulling, no history yet (~1 min by the docs)"``."""
    total, _, has_history = eta
    label = status or "unknown"
    if total <= 0:
        return f"{label}, due any moment" if has_history else label
    seconds = max(1, round(total))
    amount = f"~{seconds} s" if total < 90 else f"~{max(1, round(total / 60))} min"
    if has_history:
        return f"{label}, ready in {amount}"
    return f"{label}, no history yet ({amount} by the documented times)"


def eta_text(eta: tuple[float, dict[str, float], bool]) -> str:
    """The ETA without the status: ``"ready in ~40 s (creating ~3 s, pulling ~37 s)"``, or
    ``"no history yet: ~1 min by the documented times"``; "" when nothing is ahead."""
    total, per_phase, has_history = eta
    if not per_phase:
        return ""
    if total <= 0:
        return "due any moment"
    if not has_history:
        return f"no history yet: {_amount(total)} by the documented times"
    ahead = [(phase, seconds) for phase, seconds in per_phase.items() if seconds >= 0.5]
    detail = ", ".join(f"{phase} {_amount(seconds)}" for phase, seconds in ahead)
    return f"ready in {_amount(total)}" + (f" ({detail})" if len(ahead) > 1 else "")


def _amount(seconds: float) -> str:
    return f"~{max(1, round(seconds))} s" if seconds < 90 else f"~{max(1, round(seconds / 60))} min"


# ---------------------------------------------------------------------------------------------
# One history per API, and the schedules of the waits and watchers in progress (for ETAs)
# ---------------------------------------------------------------------------------------------

_histories: dict[str, PhaseHistory] = {}
# (history scope, instance id): ids are unique within one API, not across sandboxes
_live: dict[tuple[str, str], LearnedSchedule] = {}
_registry_lock = threading.Lock()

#: A wait started this long after the instance's createdAt takes createdAt as the start of
#: the transition; sooner, createdAt's whole-second resolution is too coarse to anchor on.
ANCHOR_MIN_AGE = 20.0
ANCHOR_MAX_AGE = 3600.0


class HasSettings(Protocol):
    """What the history needs of a client: its settings (``api_url`` scopes the history)."""

    config: Any


def history_of(client: HasSettings | object) -> PhaseHistory | None:
    """The phase history a client's waits and watchers share (one per API URL, in the ledger
    dir); None when the client has no config (a bare test double) or ``learn_waits`` is
    False in it."""
    config = getattr(client, "config", None)
    scope = getattr(config, "api_url", None)
    if not isinstance(scope, str) or getattr(config, "learn_waits", True) is False:
        return None
    with _registry_lock:
        history = _histories.get(scope)
        if history is None:
            history = _histories[scope] = PhaseHistory(scope=scope)
        return history


def prior_scale(client: object) -> float:
    """How much shorter than the documented times a client's cloud runs: ``1 / speed`` for a
    client bound to its own sandbox (``Novita.sandbox(speed=50)`` boots in a fiftieth of the
    time, so its ETA without history says ~1 s, not ~1 min), else 1."""
    speed = getattr(getattr(client, "sandbox_server", None), "speed", None)
    if isinstance(speed, int | float) and not isinstance(speed, bool) and speed > 0:
        return 1.0 / float(speed)
    return 1.0


def _live_key(instance_id: str, schedule: LearnedSchedule) -> tuple[str, str]:
    return (schedule.history.scope if schedule.history is not None else "", instance_id)


def track(instance_id: str, schedule: LearnedSchedule) -> bool:
    """Make ``schedule`` the one ``instance_eta`` reads for ``instance_id`` (within its
    history's scope); False (and no change) when another wait or watcher already tracks it
    (that one records the history)."""
    key = _live_key(instance_id, schedule)
    with _registry_lock:
        if _live.get(key, schedule) is not schedule:
            return False
        _live[key] = schedule
        return True


def untrack(instance_id: str, schedule: LearnedSchedule) -> None:
    key = _live_key(instance_id, schedule)
    with _registry_lock:
        if _live.get(key) is schedule:
            del _live[key]


def live_schedule(instance_id: str, scope: str = "") -> LearnedSchedule | None:
    """The schedule of a wait or watcher following ``instance_id`` now, if any; ``scope``:
    its history's (the API URL for the client's own history, "" for a history by path)."""
    with _registry_lock:
        return _live.get((scope, instance_id))


def anchor_of(instance: Any, clock: Callable[[], float] = time.monotonic) -> float | None:
    """When the instance's create began, on ``clock``, from its ``created_at``, for a wait
    that starts late (see ``ANCHOR_MIN_AGE``); None otherwise, or on a start path."""
    created = getattr(instance, "created_at", None)
    status = getattr(instance, "status", None)
    if not isinstance(created, datetime) or step_of(status) is None:
        return None
    if path_for(status) != PATHS["create"]:
        return None
    age = (datetime.now(UTC) - created).total_seconds()
    if not ANCHOR_MIN_AGE <= age <= ANCHOR_MAX_AGE:
        return None
    return clock() - age


def instance_eta(instance: Any) -> tuple[float, dict[str, float], bool] | None:
    """(seconds to running, {phase: seconds}, has history) for an instance on its way to
    running, else None. A wait or watcher following it answers from what it has seen; else
    the client's history (or the prior) with the time since ``created_at`` for a create."""
    status = getattr(instance, "status", None)
    if step_of(status) is None or getattr(instance, "failed", False):
        return None
    client = getattr(instance, "_client", None)
    history = history_of(client)
    scale = prior_scale(client)
    scope = history.scope if history is not None else ""
    schedule = live_schedule(getattr(instance, "id", ""), scope)
    if schedule is not None:
        if step_of(schedule._status) is None:
            return None
        return schedule.eta()
    schedule = LearnedSchedule.for_instance(instance, history, record=False, scale=scale)
    anchor = anchor_of(instance)
    elapsed = 0.0 if anchor is None else time.monotonic() - anchor
    if anchor is not None and step_of(status) != "queued":
        # only the create's start is known: count down from there along the whole path
        schedule = LearnedSchedule.for_instance(
            instance, history, record=False, started_at=anchor, scale=scale
        )
        schedule.observe(status)
        return schedule.eta()
    return schedule.eta(status, elapsed)
