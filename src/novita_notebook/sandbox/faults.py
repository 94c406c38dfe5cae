"""Injected faults (errors, latency, rate limiting, dropped connections, ambiguous creates) and
the request log of the sandbox. Both are thread-safe on their own lock.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from .validate import ApiError

FAULT_FIELDS = (
    "errorRate",
    "latencyMs",
    "rateLimitPerMinute",
    "dropRate",
    "ambiguousCreateRate",
    "ambiguousActionRate",
    "listDropRate",
    "stopIgnoreRate",
)
_RATES = (
    "errorRate",
    "dropRate",
    "ambiguousCreateRate",
    "ambiguousActionRate",
    "listDropRate",
    "stopIgnoreRate",
)
RATE_WINDOW_SECONDS = 60.0
MAX_LOGGED_REQUESTS = 100_000
_SECRET_BODY_KEYS = frozenset({"password", "imageAuth"})


@dataclass(frozen=True)
class Decision:
    """What to do with one Novita request before it reaches the world."""

    latency: float = 0.0  # seconds to sleep first
    drop: bool = False  # close the connection without answering
    error: ApiError | None = None  # answer this instead (429 or 5xx), no side effect
    retry_after: int | None = None
    drop_after_create: bool = False  # ambiguous create: do it, then drop
    drop_after_action: bool = False  # ambiguous start/stop/restart/delete: do it, then drop


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"novita-sandbox-faults-{seed}")
        self._settings: dict[str, float] = {}
        self._recent: deque[float] = deque()

    @property
    def settings(self) -> dict[str, float]:
        with self._lock:
            return dict(self._settings)

    def configure(self, settings: Any) -> dict[str, float]:
        """Replace every setting (``{}`` clears); validates names, types and ranges."""
        if not isinstance(settings, dict):
            raise ApiError("VALIDATOR_PARAM", "body: must be a JSON object")
        clean: dict[str, float] = {}
        for key, value in settings.items():
            if key not in FAULT_FIELDS:
                raise ApiError(
                    "VALIDATOR_PARAM", f"{key}: unknown fault (use {', '.join(FAULT_FIELDS)})"
                )
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ApiError("VALIDATOR_PARAM", f"{key}: must be a number")
            if key in _RATES and not 0 <= value <= 1:
                raise ApiError("VALIDATOR_PARAM", f"{key}: must be between 0 and 1")
            if key not in _RATES and value < 0:
                raise ApiError("VALIDATOR_PARAM", f"{key}: must be >= 0")
            if key == "latencyMs" and value > 60_000:
                raise ApiError("VALIDATOR_PARAM", f"{key}: must be at most 60000")
            clean[key] = float(value)
        with self._lock:
            self._settings = clean
            self._recent.clear()
        return dict(clean)

    def decide(
        self, is_create: bool, now: float | None = None, *, is_action: bool = False
    ) -> Decision:
        """Roll the dice for one request of the Novita namespace."""
        with self._lock:
            s = self._settings
            if not s:
                return Decision()
            now = time.monotonic() if now is None else now
            latency = s.get("latencyMs", 0.0) / 1000.0
            if self._rng.random() < s.get("dropRate", 0.0):
                return Decision(latency=latency, drop=True)
            limit = s.get("rateLimitPerMinute")
            if limit is not None:
                while self._recent and now - self._recent[0] >= RATE_WINDOW_SECONDS:
                    self._recent.popleft()
                if len(self._recent) >= limit:
                    wait = RATE_WINDOW_SECONDS - (now - self._recent[0]) if self._recent else 1
                    retry_after = max(1, math.ceil(wait))
                    error = ApiError(
                        "RATE_LIMIT_EXCEEDED",
                        f"rate limit exceeded: at most {int(limit)} requests per minute",
                    )
                    return Decision(latency=latency, error=error, retry_after=retry_after)
                self._recent.append(now)
            if self._rng.random() < s.get("errorRate", 0.0):
                if self._rng.random() < 0.5:
                    error = ApiError(
                        "SERVICE_UNAVAILABLE", "service temporarily unavailable", status=503
                    )
                else:
                    error = ApiError("UNKNOWN", "internal server error", status=500)
                return Decision(latency=latency, error=error)
            ambiguous = is_create and self._rng.random() < s.get("ambiguousCreateRate", 0.0)
            # Rolled only when set, so other faults' seeded sequences stay as they were.
            rate = s.get("ambiguousActionRate", 0.0)
            action = is_action and rate > 0 and self._rng.random() < rate
            return Decision(latency=latency, drop_after_create=ambiguous, drop_after_action=action)

    def thin_listing(self, answer: Any) -> Any:
        """``listDropRate``: each instance of a ``GET /gpu/instances`` answer is left out
        with this chance (and ``total`` counts only those kept): a short answer."""
        with self._lock:
            rate = self._settings.get("listDropRate", 0.0)
            if not rate or not isinstance(answer, dict):
                return answer
            kept = [i for i in answer.get("instances", []) if self._rng.random() >= rate]
        dropped = len(answer.get("instances", [])) - len(kept)
        thinned = {**answer, "instances": kept}
        if isinstance(answer.get("total"), int):
            thinned["total"] = max(0, answer["total"] - dropped)
        return thinned

    def ignore_stop(self) -> bool:
        """``stopIgnoreRate``: a stop answered ``{}`` that never happens (a refused stop)."""
        with self._lock:
            rate = self._settings.get("stopIgnoreRate", 0.0)
            return bool(rate) and self._rng.random() < rate


def redact_body(text: str) -> str:
    """The body as logged: JSON secrets (passwords, inline image auth) blanked."""
    if '"password"' not in text and '"imageAuth"' not in text:
        return text
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ("***" if k in _SECRET_BODY_KEYS and isinstance(v, str) and v else scrub(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return json.dumps(scrub(data))


class RequestLog:
    """Every request the sandbox received (bounded), for tests and demos."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_REQUESTS)

    def add(self, method: str, path: str, query: str, body: str, arrived: float) -> dict[str, Any]:
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "status": 0,
            "time": arrived,
            "body": redact_body(body),
            "ignored": [],  # unknown body fields the sandbox discarded (Novita requests)
        }
        with self._lock:
            self._entries.append(entry)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
