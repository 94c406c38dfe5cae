"""RateLimiter: a reservation token bucket shared by the threads of one client (one lock, no
background thread, sleeping outside the lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import errors

__all__ = ["RateLimiter"]


class RateLimiter:
    """A token bucket shared by all threads of a client: ``rate`` requests per second on
    average, bursts up to ``burst`` (default: one second's worth, at least 1)."""

    def __init__(
        self,
        rate_per_second: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(rate_per_second, bool) or not rate_per_second > 0:
            raise errors.ValidationError(
                f"rate_per_second must be > 0, got {rate_per_second!r}", field="rate_per_second"
            )
        self.rate = float(rate_per_second)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        if self.burst < 1:
            raise errors.ValidationError("burst must be >= 1", field="burst")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token now (possibly going into debt); return how long to wait before use."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            # Negative tokens are a queue of reservations: each waits for its own refill.
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until a request may be sent; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def __repr__(self) -> str:
        return f"<RateLimiter {self.rate:g}/s burst {self.burst:g}>"
