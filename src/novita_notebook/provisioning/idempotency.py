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
from ..ledger import Ledger
from ..models import GONE_STATUSES
from ..pending import PendingCreates, match_intent
from ..retry import retry_delay

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
# Seconds the Ctrl-C handler of a create spends looking the instance up by name.
INTERRUPT_LOOKUP_SECONDS = 3.0
# Waiting out transient failures of one read (patiently) stops after this many seconds.
PATIENT_DEADLINE = 60.0

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


def unreachable(error: BaseException) -> bool:
    """True when the API could not be connected to at all (the transport marks it): waiting
    and asking again would only make the caller hang, so the error goes up at once."""
    return bool(getattr(error, "unreachable", False))


def patiently(call: Callable[[], T], deadline: float = PATIENT_DEADLINE) -> T:
    """Run a read, waiting out 429 storms, an open breaker and transient failures a bounded
    number of times and at most ``deadline`` seconds in all (the transport already retried
    it; reads are safe to repeat). An unreachable API fails at once."""
    ends = time.monotonic() + deadline
    for attempt in range(1, MAX_NOT_SENT_RETRIES + 1):
        try:
            return call()
        except NovitaError as error:
            if not is_transient(error) or attempt == MAX_NOT_SENT_RETRIES or unreachable(error):
                raise
            if time.monotonic() + resend_delay(error, attempt) > ends:
                raise
            wait_or_raise(error, attempt)
    raise AssertionError("unreachable")


def _is_live(raw: Mapping[str, Any]) -> bool:
    return str(raw.get("status") or "") not in GONE_STATUSES


class NameClaims:
    """Names are kept as given and unique among live instances: checked against the API, and
    held while a create of that name is in flight: in this process, and with a ``ledger``
    across the clients and processes of this user on this machine (see ``pending.py``; two
    machines can still race on a name). With a ledger every create is also an intent recorded
    before the POST, so an interrupted create is found later (``mine()``, ``cleanup()``)."""

    def __init__(self, api: NovitaAPI, read_timeout: float, ledger: Ledger | None = None) -> None:
        self.api = api
        self.read_timeout = read_timeout
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self.pending = PendingCreates(ledger) if ledger is not None else None
        self._tokens: dict[str, str] = {}
        self._keep: set[str] = set()  # tokens whose intent must outlive the create call

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
        token = None
        try:
            if self.pending is not None:
                token = self.pending.claim(name)
                self._tokens[name] = token
            yield
        finally:
            with self._lock:
                self._names.discard(name)
                self._tokens.pop(name, None)
            if token is not None and token not in self._keep:
                self._release(token)
            self._keep.discard(token or "")

    def token_for(self, name: str) -> str | None:
        """The ledger intent's token of the create of ``name`` in flight (None without a
        ledger): the guard stores the create's rules under it before the POST."""
        return self._tokens.get(name)

    def _release(self, token: str) -> None:
        assert self.pending is not None
        try:
            self.pending.release(token)
        except Exception:  # the ledger is a convenience; the claim expires by itself
            logger.warning("could not release a name claim in the ledger", exc_info=True)

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
        name, else send again (bounded). Returns (instance id, adopted).

        The intent is in the ledger before the POST. On Ctrl-C the instance is looked up by
        name once (briefly) and the KeyboardInterrupt says what exists; the intent stays until
        found, so ``mine()`` and ``cleanup()`` show the instance even if it appears later."""
        token = self._tokens.get(name)
        if token is not None and self.pending is not None:
            self.pending.mark_sent(token)
        try:
            instance_id, adopted = self._send(body, name)
        except KeyboardInterrupt:
            if token is None:
                raise
            self._keep.add(token)
            raise self._interrupted(name, token) from None
        except NovitaError as error:
            if token is not None and may_have_applied(error) and not unreachable(error):
                self._keep.add(token)  # it may exist: let mine()/cleanup() find it
            raise
        if token is not None and self.pending is not None:
            try:
                self.pending.resolved(token, instance_id, name)
            except Exception:
                logger.warning("could not record %s in the ledger", instance_id, exc_info=True)
        return instance_id, adopted

    def _interrupted(self, name: str, token: str) -> KeyboardInterrupt:
        """Look for the interrupted create's instance (one list call, a few seconds at most)
        and build the KeyboardInterrupt that says what exists."""
        assert self.pending is not None
        pending = self.pending
        found: list[dict[str, Any]] = []

        def look() -> None:
            claim = {"name": name, "sent_at": pending.sent_at(token)}
            raws = self.api.list_instances(name=name)
            chosen = match_intent(claim, raws)
            found.extend(raw for raw in raws if str(raw.get("id")) == chosen)

        looker = threading.Thread(target=look, name="novita-interrupt-lookup", daemon=True)
        looker.start()
        looker.join(INTERRUPT_LOOKUP_SECONDS)
        if found:
            raw = found[0]
            instance_id = str(raw.get("id"))
            with contextlib.suppress(Exception):
                pending.resolved(token, instance_id, name)
            return KeyboardInterrupt(
                f"create interrupted: {name} (id {instance_id}) exists in "
                f"{raw.get('status') or 'creating'}; it is in your ledger: "
                f"novita.delete({name!r}) or %novita cleanup"
            )
        return KeyboardInterrupt(
            f"create interrupted after the request for {name!r} was sent: the instance may "
            "exist. The create is in your ledger; novita.mine() and %novita cleanup will show "
            f"it once the API lists it (or novita.delete({name!r}))."
        )

    def _send(self, body: dict[str, Any], name: str) -> tuple[str, bool]:
        sends = 0
        not_sent = 0
        while True:
            try:
                sends += 1
                return self.api.create_instance(body), False
            except (RateLimitError, CircuitBreakerError) as error:
                # Refused before processing: resending cannot duplicate.
                if unreachable(error):
                    raise
                sends -= 1
                not_sent += 1
                if not_sent > MAX_NOT_SENT_RETRIES:
                    raise
                wait_or_raise(error, not_sent)
            except NovitaError as error:
                if not may_have_applied(error) or unreachable(error):
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
            read = self.read_timeout
            return min(max(2.0 * read, SETTLE_AFTER_DROP), SETTLE_AFTER_TIMEOUT_MAX)
        if isinstance(cause, NetworkError):
            return SETTLE_AFTER_DROP
        return SETTLE_AFTER_ERROR
