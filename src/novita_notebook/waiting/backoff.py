"""The one poll schedule, ``Backoff``: waits and watchers pace themselves here (retries pace
themselves by retry.py's ``retry_delay``). This module imports only leaves.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from ..errors import ValidationError
from ..models import phase_of

__all__ = ["Backoff", "positive_number", "schedule_from"]

# Statuses after which a running instance is seconds away: poll fast.
_IMMINENT_STATUSES = frozenset(
    {"toStart", "starting", "toRestart", "restarting", "toReset", "resetting", "migrating"}
)
# Short transitions that are not provisioning: poll briskly, not at the cap.
_BRISK_STATUSES = frozenset({"toStop", "stopping", "toRemove", "removing"})


def positive_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{field} must be a positive number, got {value!r}", field=field)
    if value <= 0:
        raise ValidationError(f"{field} must be greater than 0, got {value!r}", field=field)
    return float(value)


class Backoff:
    """Adaptive poll schedule. Starts fast (``initial`` seconds), grows geometrically by
    ``factor``, then keeps each pause to ``proportion`` of the time already spent in the
    current phase, up to ``cap``.

    Why proportional: nobody knows in advance whether an image pulls in 10 s or 10 min. A pause
    that is a fixed share of the time already waited bounds the detection lag to about that
    share of the provisioning time, whatever it is, with calls growing only logarithmically
    (measured in ``benchmarks``: lag under 10% at 10, 30 and 90 s). The geometric ramp
    (``initial``, ``initial*factor``, ... up to ``ramp`` × ``initial``) covers the first
    seconds, when early failures show. ``proportion=0`` gives the plain geometric schedule to
    ``cap`` (used to back off from API errors).

    Jitter: each pause is drawn uniformly from the top ``spread`` of its step (default 20%,
    enough to keep many waiting kernels from polling in lockstep); ``spread=1`` is classic
    full jitter (down to ``floor``), which for one poller halves the mean pause and so roughly
    doubles the calls for the same lag.

    ``observe(status)`` makes it status-aware: a change of phase resets it to fast, and the
    status sets how far it may grow (``starting`` and friends: three times ``initial``, since
    running is seconds away). Every parameter is exposed so tests and benchmarks on a fast
    sandbox shrink the whole schedule: ``Backoff(initial=0.01, cap=0.2)``; ``clock`` lets a
    simulation drive it with virtual time. A ``Backoff`` passed to ``wait`` is a template: each
    wait polls with its own ``fresh()`` copy.
    """

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        *,
        proportion: float = 0.2,
        ramp: float = 4.0,
        jitter: bool = True,
        spread: float = 0.2,
        floor: float | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial = positive_number(initial, "initial")
        self.cap = positive_number(cap, "cap")
        if self.cap < self.initial:
            raise ValidationError(f"cap ({cap}) must be at least initial ({initial})", field="cap")
        self.factor = positive_number(factor, "factor")
        if self.factor < 1:
            raise ValidationError(f"factor must be at least 1, got {factor!r}", field="factor")
        self.proportion = _fraction(proportion, "proportion", upper=10.0)
        self.ramp = positive_number(ramp, "ramp")
        if self.ramp < 1:
            raise ValidationError(f"ramp must be at least 1, got {ramp!r}", field="ramp")
        self.spread = _fraction(spread, "spread", upper=1.0)
        if floor is None:
            # Full jitter down to zero would sometimes poll back to back; a quarter of the
            # fast pace keeps the spread without wasting calls.
            floor = self.initial / 4
        if (
            isinstance(floor, bool)
            or not isinstance(floor, int | float)
            or not 0 <= floor <= self.initial
        ):
            raise ValidationError(
                f"floor must be between 0 and initial ({self.initial}), got {floor!r}",
                field="floor",
            )
        self.floor = float(floor)
        self.jitter = bool(jitter)
        self.seed = seed
        self.clock = clock
        self._rng = random.Random(seed)
        self._attempt = 0
        self._status: str | None = None
        self._ceiling = self.cap
        self._phase_started = clock()

    def _parameters(self) -> dict[str, Any]:
        return {
            "initial": self.initial,
            "cap": self.cap,
            "factor": self.factor,
            "proportion": self.proportion,
            "ramp": self.ramp,
            "jitter": self.jitter,
            "spread": self.spread,
            "floor": self.floor,
            "seed": self.seed,
            "clock": self.clock,
        }

    @classmethod
    def fixed(cls, interval: float) -> Backoff:
        """A constant schedule (no growth, no jitter): the baseline adaptive polling beats."""
        interval = positive_number(interval, "interval")
        return cls(
            initial=interval, cap=interval, factor=1.0, proportion=0, jitter=False, floor=interval
        )

    def fresh(self) -> Backoff:
        """A new schedule with the same parameters and its own state and random stream."""
        return Backoff(**self._parameters())

    def scaled(self, ratio: float) -> Backoff:
        """The same shape on a faster (ratio < 1) or slower clock."""
        ratio = positive_number(ratio, "ratio")
        parameters = self._parameters()
        for name in ("initial", "cap", "floor"):
            parameters[name] *= ratio
        return Backoff(**parameters)

    def reset(self) -> None:
        """Back to the fast pace (the next delay is about ``initial``)."""
        self._attempt = 0
        self._phase_started = self.clock()

    def ceiling_for(self, status: str | None, *, urgent: bool = False) -> float:
        """How far the schedule may grow while the instance sits in ``status``."""
        if urgent or status in _IMMINENT_STATUSES:
            # Measured on the sandbox: 3x initial matches fixed 1-s polling's detection lag
            # through a 10-s start with about as many calls; 2x cost half again more calls.
            limit = self.initial * 3
        elif status in _BRISK_STATUSES:
            limit = self.initial * 4
        else:
            limit = self.cap
        return min(self.cap, max(self.initial, limit))

    def observe(self, status: str | None, *, urgent: bool = False) -> bool:
        """Tell the schedule what the instance reports. Returns True when the status changed
        (a change of phase also sends the schedule back to fast). ``urgent`` asks for the fast
        pace in this status (e.g. running but not reachable yet: the app is seconds away)."""
        changed = status != self._status
        if changed:
            # A new phase means news is likely soon: poll fast again. A step within a phase
            # (creating → pulling) keeps the pace; its ceiling still applies at once.
            if self._status is None or phase_of(status) != phase_of(self._status):
                self.reset()
            self._status = status
        self._ceiling = self.ceiling_for(status, urgent=urgent)
        return changed

    @property
    def current_step(self) -> float:
        """The upper bound of the next delay (before jitter)."""
        geometric = self.initial * self.factor ** min(self._attempt, 64)
        if self.proportion:
            in_phase = max(0.0, self.clock() - self._phase_started)
            step = max(min(geometric, self.initial * self.ramp), self.proportion * in_phase)
        else:
            step = geometric
        return min(self._ceiling, step)

    def next_delay(self) -> float:
        """The next pause, in seconds; each call moves one step along the schedule."""
        step = self.current_step
        if step < self._ceiling:
            self._attempt += 1
        if not self.jitter:
            return step
        low = min(self.floor, step) if self.spread >= 1 else step * (1 - self.spread)
        return self._rng.uniform(low, step)

    def __repr__(self) -> str:
        return (
            f"Backoff(initial={self.initial:g}, cap={self.cap:g}, factor={self.factor:g}, "
            f"proportion={self.proportion:g}, jitter={self.jitter}, spread={self.spread:g})"
        )


def _fraction(value: Any, field: str, *, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= upper:
        raise ValidationError(
            f"{field} must be a number from 0 to {upper:g}, got {value!r}", field=field
        )
    return float(value)


def schedule_from(poll: Backoff | float | int | None) -> Backoff:
    if poll is None:
        return Backoff()
    if isinstance(poll, Backoff):
        return poll.fresh()
    if isinstance(poll, int | float) and not isinstance(poll, bool):
        return Backoff.fixed(poll)
    raise ValidationError(
        f"poll must be a Backoff (e.g. Backoff(initial=0.5, cap=10)) or a number of seconds, "
        f"got {type(poll).__name__}",
        field="poll",
    )
