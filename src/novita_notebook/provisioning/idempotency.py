"""Never a duplicate instance: names claimed before a create, and after an ambiguous failure
(timeout, dropped connection, 5xx) the instance looked up by name and adopted, or sent again.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from ..api import NovitaAPI
from ..errors import (
    CircuitBreakerError,
    NetworkError,
    NovitaError,
    RateLimitError,
    TimeoutError,
    ValidationError,
    is_transient,
    may_have_applied,
    requested_delay,
)
from ..models import GONE_STATUSES
from ..waiting.backoff import retry_delay

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Ambiguous creates: how many creates we send at most, and how we look for the instance.
# Every resend follows lookups proving that nothing was created, so resending is safe; the
# bound only limits how long a failing API is tried.
MAX_CREATE_SENDS = 8
# Lookups after an ambiguous create pace on the one schedule (retry_delay) with this base and
# cap; at least LOOKUP_ROUNDS lookups are made before giving up.
LOOKUP_BASE = 0.25
LOOKUP_CAP = 4.0
LOOKUP_ROUNDS = 5
SETTLE_AFTER_ERROR = 0.25  # a 5xx was answered: the server is done with the request
SETTLE_AFTER_DROP = 1.0  # the connection dropped: the request may still be running
SETTLE_AFTER_TIMEOUT_MAX = 90.0
# Rejections that prove the create was not applied (429, open breaker) are re-sent after the
# server's or breaker's delay, a bounded number of times; a wait longer than MAX_NOT_SENT_WAIT
# is never shortened: the error goes to the caller instead.
MAX_NOT_SENT_RETRIES = 8
MAX_NOT_SENT_WAIT = 30.0
NOT_SENT_BASE = 0.25

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def resend_delay(error: NovitaError, attempt: int) -> float:
    """How long to wait before resending after ``attempt`` (1-based) failures: the one
    schedule, floored by what the server (Retry-After) or the breaker asked for."""
    asked = requested_delay(error)
    return retry_delay(
        attempt - 1, base=NOT_SENT_BASE, cap=MAX_NOT_SENT_WAIT, retry_after=asked or None
    )


def wait_or_raise(error: NovitaError, attempt: int) -> None:
    """Sleep before a resend, or re-raise when the wait asked for is longer than a create
    should block (the error says when to try again)."""
    delay = resend_delay(error, attempt)
    if delay > MAX_NOT_SENT_WAIT:
        raise error
    time.sleep(delay)


def patiently(call: Callable[[], T]) -> T:
    """Run a read, waiting out 429 storms, an open breaker and transient failures a bounded
    number of times (the transport already retried it; reads are safe to repeat)."""
    for attempt in range(1, MAX_NOT_SENT_RETRIES + 1):
        try:
            return call()
        except NovitaError as error:
            if not is_transient(error) or attempt == MAX_NOT_SENT_RETRIES:
                raise
            wait_or_raise(error, attempt)
    raise AssertionError("unreachable")


def _is_live(raw: Mapping[str, Any]) -> bool:
    return str(raw.get("status") or "") not in GONE_STATUSES


class NameClaims:
    """Names are kept as given and unique among live instances: checked against the API, and
    held in this process while a create of that name is in flight."""

    def __init__(self, api: NovitaAPI, read_timeout: Callable[[], float]) -> None:
        self.api = api
        self.read_timeout = read_timeout
        self._lock = threading.Lock()
        self._names: set[str] = set()

    def live_named(self, name: str) -> list[dict[str, Any]]:
        """Live instances whose name is exactly ``name`` (the API's name filter is fuzzy)."""
        return [
            raw
            for raw in self.api.list_instances(name=name)
            if raw.get("name") == name and _is_live(raw)
        ]

    @contextlib.contextmanager
    def in_flight(self, name: str) -> Iterator[None]:
        """Hold ``name`` while it is created; a concurrent create of the same name in this
        process is refused (the API check alone cannot see a create in flight)."""
        with self._lock:
            if name in self._names:
                raise ValidationError(
                    f"name: an instance named {name!r} is being created right now; choose "
                    "another name or pass unique_name=True",
                    field="name",
                )
            self._names.add(name)
        try:
            yield
        finally:
            with self._lock:
                self._names.discard(name)

    def claim(self, name: str, *, unique: bool) -> str:
        """``name`` if no live instance has it (else a ValidationError); with ``unique`` a
        free ``name-xxxxxx``."""
        if unique:
            for _ in range(5):
                suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6))
                if not self.live_named(f"{name}-{suffix}"):
                    return f"{name}-{suffix}"
            raise ValidationError(
                f"name: could not find a free name starting with {name!r}", field="name"
            )
        existing = self.live_named(name)
        if existing:
            ids = ", ".join(str(raw.get("id")) for raw in existing)
            raise ValidationError(
                f"name: a live instance named {name!r} already exists ({ids}); "
                f"choose another name, e.g. {name[:56]}-2, or pass unique_name=True",
                field="name",
                hint="Names are kept exactly as given and must be unique among live instances.",
            )
        return name

    def send_create(self, body: dict[str, Any], name: str) -> tuple[str, bool]:
        """POST the create; after an ambiguous failure, adopt the instance if it exists by
        name, else send again (bounded). Returns (instance id, adopted)."""
        sends = 0
        not_sent = 0
        while True:
            try:
                sends += 1
                return self.api.create_instance(body), False
            except (RateLimitError, CircuitBreakerError) as error:
                # Refused before processing: resending cannot duplicate.
                sends -= 1
                not_sent += 1
                if not_sent > MAX_NOT_SENT_RETRIES:
                    raise
                wait_or_raise(error, not_sent)
            except NovitaError as error:
                if not may_have_applied(error):
                    raise
                found = self.find_after_ambiguous(name, error)
                if found is not None:
                    logger.info("create of %s was ambiguous; adopted %s", name, found)
                    return found, True
                if sends >= MAX_CREATE_SENDS:
                    raise
                time.sleep(retry_delay(sends, base=LOOKUP_BASE, cap=LOOKUP_CAP))

    def find_after_ambiguous(self, name: str, cause: NovitaError) -> str | None:
        """The id of the instance an ambiguous create made, or None once lookups spread over
        the settle window agree there is none. If no lookup succeeds, re-raise ``cause`` with
        a hint naming the instance: resending could duplicate it."""
        window = self.settle_window(cause)
        started = time.monotonic()
        empty_answers = 0
        attempt = 0
        while True:
            try:
                found = self.live_named(name)
            except NovitaError as error:
                logger.info("lookup of %s after ambiguous create failed: %s", name, error.message)
            else:
                if found:
                    newest = max(found, key=lambda raw: str(raw.get("createdAt") or ""))
                    return str(newest.get("id"))
                empty_answers += 1
            elapsed = time.monotonic() - started
            if empty_answers >= 2 and elapsed >= window:
                return None
            if attempt >= LOOKUP_ROUNDS - 1 and elapsed >= window:
                break
            # Back off, but land the last lookups at the end of the window, not far past it.
            delay = max(0.05, retry_delay(attempt, base=LOOKUP_BASE, cap=LOOKUP_CAP))
            if elapsed < window:
                delay = min(delay, max(window - elapsed, 0.05))
            attempt += 1
            time.sleep(delay)
        cause.hint = (
            f"The create may have succeeded: look for an instance named {name!r} before trying "
            "again (Novita.instances())."
        )
        raise cause

    def settle_window(self, cause: NovitaError) -> float:
        """How long an ambiguous create may still land after it failed. A 5xx answer means the
        server finished with it; a dropped connection may hide a request still running; a
        read timeout means the server was still working when we gave up waiting, so give it
        twice the read timeout (bounded) before concluding it never happened."""
        if isinstance(cause, TimeoutError):
            read = self.read_timeout()
            return min(max(2.0 * read, SETTLE_AFTER_DROP), SETTLE_AFTER_TIMEOUT_MAX)
        if isinstance(cause, NetworkError):
            return SETTLE_AFTER_DROP
        return SETTLE_AFTER_ERROR
