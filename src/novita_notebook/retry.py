"""The one retry delay: full jitter under a doubling cap, with what the server asked for as a
floor. http, webhooks and provisioning's resends all wait this long; a leaf (imports errors only).
"""

from __future__ import annotations

import random

from .errors import ValidationError

__all__ = ["retry_delay"]


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to sleep before retry number ``attempt`` (0 for the first retry).

    Full jitter: ``uniform(0, min(cap, base * 2**attempt))``, so many clients that failed
    together do not retry together. ``retry_after`` (what the server or a breaker asked for) is
    a floor: the result is never below it, and ``cap`` never shortens it. Whether to wait that
    long at all is the caller's decision.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValidationError(f"attempt must be an integer >= 0, got {attempt!r}", field="attempt")
    ceiling = min(float(cap), float(base) * 2 ** min(attempt, 64))
    delay = (rng or random).uniform(0.0, max(0.0, ceiling))
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return delay
