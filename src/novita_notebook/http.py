"""Transport: one pooled requests.Session per client with timeouts, retries, a circuit breaker,
a token-bucket rate limiter, request counting and the mapping of every failure to errors.py.

Choices, and why:

- Retries are an own loop, not urllib3's ``Retry`` nor tenacity. The loop has to count every
  attempt (``requests_made``), pass each attempt through the breaker and the rate limiter,
  honour ``Retry-After`` as a *floor* (never send earlier) while using FULL jitter
  (``uniform(0, min(cap, base * 2**n))``) otherwise, and give up early when the server asks for
  a wait longer than the cap. urllib3's Retry sleeps inside the connection pool (invisible to
  the breaker and counter; its jitter is additive, not full), and tenacity would need all of
  the above as callbacks anyway. Twenty lines of loop are easier to read and to test.
- A ``Retry-After`` binds the whole client: every thread waits it out before sending (or fails
  fast with ``RateLimitError`` when it is longer than the retry cap).
- Only idempotent calls are retried (GETs and the instance lifecycle POSTs, which the API
  treats as "set the desired state"). Instance create, template create and registry-auth save
  are sent exactly once: a retry after a lost answer could create a duplicate (the
  predecessor's worst bug).
- The circuit breaker is ``pybreaker`` (a well-kept state machine) used only for its state and
  counters: ``CircuitBreaker.call`` holds a lock for the whole guarded call, which would
  serialize every request of the client, so outcomes are recorded after the fact with instant
  calls, and the gate (open → fail fast with ``retry_at``; half-open → one probe at a time) is
  checked before each attempt. Connection failures, timeouts and 5xx count; 4xx mean the API is
  healthy (they reset the count); 429 is neutral.
- The rate limiter is a reservation token bucket: one lock, no background thread, FIFO-ish
  fairness across threads, sleeping outside the lock.
- ``trust_env`` is off: requests otherwise merges proxy/netrc settings on every call (slow, and
  a ``.netrc`` entry could replace the Authorization header); proxies from the environment are
  resolved once at construction instead.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pybreaker
import requests
import urllib3
from requests.adapters import HTTPAdapter

from . import errors
from .config import is_loopback_host
from .http_answers import (
    SECRET_BODY_KEYS,
    error_from_response,
    network_reason,
    never_connected,
    parse_retry_after,
)
from .ratelimit import RateLimiter
from .waiting.backoff import retry_delay

__all__ = [
    "Transport",
    "RateLimiter",
    "ClientClosedError",
    "parse_retry_after",
    "error_from_response",
    "USER_AGENT",
    "DEFAULT_CALL_DEADLINE",
]

logger = logging.getLogger("novita_notebook")

USER_AGENT = "novita-notebook/0.1"

#: Seconds one ``Transport.request`` may take in all, retries and waits included.
DEFAULT_CALL_DEADLINE = 60.0
#: Attempts at most when the API cannot even be connected to (refused, unresolvable, connect
#: timeout): nothing was sent, and an unreachable host rarely comes back within seconds.
CONNECT_ATTEMPTS = 3


class ClientClosedError(errors.NovitaError):
    """The client was closed (``Novita.close()``); create a new one to talk to the API."""


class _Failure(Exception):
    """Marker fed to pybreaker to record a failed attempt."""


def _succeed() -> None:
    return None


def _fail() -> None:
    raise _Failure()


class Transport:
    """Sends requests to the Novita v1 API on behalf of one client (thread-safe).

    Bounds: one ``request`` takes at most ``call_deadline`` seconds (default 60) with all its
    retries and waits; an API that cannot be connected to at all is tried ``CONNECT_ATTEMPTS``
    times and reported once ("cannot reach the Novita API at HOST: ..."; the error has
    ``unreachable=True``); after ``close()`` every call raises ``ClientClosedError`` at once.
    ``api_key`` reads the key (for the doctor and the guard process); no repr shows it."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_retries: int = 4,
        max_concurrency: int = 8,
        rate_limiter: RateLimiter | None = None,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 60.0,
        breaker_threshold: int = 5,
        breaker_reset_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        call_deadline: float = DEFAULT_CALL_DEADLINE,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        parts = urlsplit(self.api_url)
        self._host = parts.hostname or ""
        self._path_prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate_limiter = rate_limiter
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self._sleep = sleep
        self.call_deadline = float(call_deadline)
        self._key = api_key  # the only place the raw key lives
        self._closed = False
        # Why the API could not be reached (e.g. "connection refused"), until it answers again.
        self._unreachable: str | None = None
        self._count_lock = threading.Lock()
        self._requests_made = 0

        session = requests.Session()
        session.trust_env = False
        if not is_loopback_host(self._host):
            session.proxies.update(requests.utils.get_environ_proxies(self.api_url))
        adapter = HTTPAdapter(
            pool_connections=2, pool_maxsize=max(1, max_concurrency), max_retries=0
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            }
        )
        self._session = session

        self.breaker = pybreaker.CircuitBreaker(
            fail_max=breaker_threshold,
            reset_timeout=breaker_reset_timeout,
            throw_new_error_on_trip=False,
            name="novita-api",
        )
        self._gate_lock = threading.Lock()
        self._probe_in_flight = False
        # A Retry-After applies to the client, not to the one call that received it: no thread
        # sends before this monotonic time.
        self._not_before = 0.0
        self._not_before_lock = threading.Lock()

    # -- public ------------------------------------------------------------------------------
    @property
    def requests_made(self) -> int:
        """HTTP requests actually sent (every attempt counts; fail-fast refusals do not)."""
        return self._requests_made

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return self.breaker.current_state

    @property
    def api_key(self) -> str:
        """The API key this transport sends (read-only; never shown in a repr or log)."""
        return self._key

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def unreachable(self) -> str | None:
        """Why the API could not be connected to at the last attempt, or None."""
        return self._unreachable

    def close(self) -> None:
        """Close the connections; every later ``request`` raises ``ClientClosedError``."""
        self._closed = True
        self._session.close()

    def __repr__(self) -> str:
        return f"<Transport {self.api_url} breaker={self.breaker_state}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one API call and return the decoded JSON (``{}`` for an empty body).

        ``path`` is relative to the API URL (``/gpu/instances``). ``idempotent`` defaults to
        True for GET only; only idempotent calls are retried.
        """
        if self._closed:
            raise ClientClosedError(
                "the client is closed; create a new Novita() to talk to the API",
                method=method.upper(),
                path=self._path_prefix + path,
            )
        method = method.upper()
        if idempotent is None:
            idempotent = method == "GET"
        url = self.api_url + path
        shown_path = self._path_prefix + path  # for errors and logs: no query, no host
        body = jsonlib.dumps(json, separators=(",", ":")) if json is not None else None
        scrub = self._scrubber(json)
        attempts = 1 + (self.max_retries if idempotent else 0)
        last_error: errors.NovitaError | None = None
        deadline = time.monotonic() + self.call_deadline

        for attempt in range(attempts):
            self._honour_retry_after(method, shown_path)
            probe = self._gate(method, shown_path, last_error)
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            started = time.perf_counter()
            try:
                response = self._session.request(
                    method, url, params=params, data=body, timeout=self._timeout_until(deadline)
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                self._count()
                error = self._transport_error(exc, method, shown_path, idempotent)
                self._record(failed=True, probe=probe)
                retry_after = None
                if never_connected(exc):
                    self._unreachable = network_reason(exc)
                    error.unreachable = True  # nothing was sent: callers need not look for it
                    if attempt + 1 >= min(attempts, CONNECT_ATTEMPTS):
                        raise self._unreachable_error(error, attempt + 1) from None
            except BaseException:
                # Ctrl-C or a bug mid-request: never leave the half-open probe slot taken.
                self._record(failed=None, probe=probe)
                raise
            else:
                self._count()
                self._unreachable = None
                status = response.status_code
                if status < 400:
                    self._record(failed=False, probe=probe)
                    if logger.isEnabledFor(logging.DEBUG):
                        logger.debug(
                            "%s %s -> %d in %.1f ms",
                            method,
                            shown_path,
                            status,
                            (time.perf_counter() - started) * 1000,
                        )
                    return self._decode(response, method, shown_path)
                error = error_from_response(response, method, shown_path, scrub=scrub)
                if status >= 500:
                    self._record(failed=True, probe=probe)
                elif status == 429:
                    self._record(failed=None, probe=probe)
                else:
                    self._record(failed=False, probe=probe)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if status == 429 and retry_after:
                    with self._not_before_lock:
                        self._not_before = max(self._not_before, time.monotonic() + retry_after)
                response.close()
                if not errors.is_transient(error):  # e.g. a 500 WALLET_NOT_FOUND: a refusal
                    raise error
            last_error = error
            if attempt + 1 >= attempts:
                break
            if retry_after is not None and retry_after > self.retry_backoff_max:
                logger.info(
                    "%s %s: server asks to wait %.1f s (more than the %.0f s cap); giving up",
                    method,
                    shown_path,
                    retry_after,
                    self.retry_backoff_max,
                )
                break
            # The one schedule; Retry-After is a floor: never leave before the server allows.
            delay = retry_delay(
                attempt,
                base=self.retry_backoff,
                cap=self.retry_backoff_max,
                retry_after=retry_after,
            )
            if time.monotonic() + delay >= deadline:
                logger.info(
                    "%s %s: giving up after %d attempt(s); the call deadline is %.0f s",
                    method,
                    shown_path,
                    attempt + 1,
                    self.call_deadline,
                )
                break
            logger.info(
                "retrying %s %s in %.2f s after %s (attempt %d of %d)",
                method,
                shown_path,
                delay,
                _short(error),
                attempt + 2,
                attempts,
            )
            self._sleep(delay)
        assert last_error is not None
        if idempotent and attempts > 1 and isinstance(last_error, errors.NovitaError):
            last_error.attempts = attempts
        raise last_error

    # -- internals ---------------------------------------------------------------------------
    def _timeout_until(self, deadline: float) -> tuple[float, float]:
        """The (connect, read) timeouts of one attempt, cut so the call ends by ``deadline``."""
        left = max(0.5, deadline - time.monotonic())
        connect, read = self.timeout
        return (min(float(connect), left), min(float(read), left))

    def _unreachable_error(self, cause: errors.NovitaError, tries: int) -> errors.NovitaError:
        """One clear error for an API that cannot be connected to at all."""
        cause.message = (
            f"cannot reach the Novita API at {self._host}: {self._unreachable} "
            f"({tries} attempt(s); nothing was sent)"
        )
        cause.hint = (
            "Check the network and api_url (for the sandbox: is it running?); "
            "nothing was created or changed."
        )
        cause.args = (cause.message,)
        return cause

    def _honour_retry_after(self, method: str, path: str) -> None:
        """Wait out a Retry-After another call (or thread) received; fail fast with
        RateLimitError when that wait is longer than the retry cap."""
        wait = self._not_before - time.monotonic()
        if wait <= 0:
            return
        if wait > self.retry_backoff_max:
            raise errors.RateLimitError(
                f"rate limited: the API asked to wait {wait:.0f} s before the next call",
                status=429,
                reason="RATE_LIMIT_EXCEEDED",
                method=method,
                path=path,
                retry_after=wait,
            )
        logger.info("%s %s waits %.2f s: the API asked for it (Retry-After)", method, path, wait)
        self._sleep(wait)

    def _count(self) -> None:
        with self._count_lock:
            self._requests_made += 1

    def _gate(self, method: str, path: str, last_error: errors.NovitaError | None) -> bool:
        """Fail fast while the breaker is open; let one probe through when it may close.
        Returns True when this attempt is the half-open probe."""
        breaker = self.breaker
        if breaker.current_state == pybreaker.STATE_CLOSED:
            return False
        with self._gate_lock:
            state = breaker.current_state
            if state == pybreaker.STATE_CLOSED:
                return False
            opened_at = breaker._state_storage.opened_at  # pybreaker keeps it; no public getter
            retry_at = opened_at.timestamp() + breaker.reset_timeout if opened_at else time.time()
            if state == pybreaker.STATE_OPEN and time.time() >= retry_at:
                breaker.half_open()
                state = pybreaker.STATE_HALF_OPEN
            elif state == pybreaker.STATE_HALF_OPEN and not self._probe_in_flight:
                pass
            else:
                raise self._breaker_error(method, path, retry_at, last_error)
            self._probe_in_flight = True
            return True

    def _breaker_error(
        self,
        method: str,
        path: str,
        retry_at: float,
        last_error: errors.NovitaError | None,
    ) -> errors.CircuitBreakerError:
        wait = max(0.0, retry_at - time.time())
        when = time.strftime("%H:%M:%S UTC", time.gmtime(retry_at))
        why = (
            f"is unreachable ({self._unreachable})"
            if self._unreachable
            else (f"failed {self.breaker.fail_max} times in a row")
        )
        error = errors.CircuitBreakerError(
            f"the Novita API at {self._host} {why}; failing fast until {when} (in {wait:.1f} s)",
            retry_at=retry_at,
            method=method,
            path=path,
            hint="Wait for the API to recover; the next call after retry_at probes it.",
            unreachable=self._unreachable is not None,
        )
        if last_error is not None:
            error.__cause__ = last_error
        return error

    def _record(self, *, failed: bool | None, probe: bool) -> None:
        """Feed one attempt's outcome to the breaker (None: neutral, e.g. a 429)."""
        if failed is not None:
            before = self.breaker.current_state
            with contextlib.suppress(_Failure, pybreaker.CircuitBreakerError):
                self.breaker.call(_fail if failed else _succeed)
            after = self.breaker.current_state
            if after != before:
                # One warning when the API starts failing; a failed probe re-opening the
                # breaker every reset_timeout is the same outage, not news.
                first = after == pybreaker.STATE_OPEN and before == pybreaker.STATE_CLOSED
                log = logger.warning if first else logger.debug
                log("circuit breaker for %s: %s -> %s", self._host, before, after)
        if probe:
            with self._gate_lock:
                self._probe_in_flight = False

    def _transport_error(
        self, exc: BaseException, method: str, path: str, idempotent: bool
    ) -> errors.NovitaError:
        common: dict[str, Any] = {"method": method, "path": path}
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return errors.RequestTimeoutError(
                f"could not connect to {self._host} within {self.timeout[0]:g} s", **common
            )
        if isinstance(exc, requests.exceptions.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
            hint = (
                "The call may still have reached the API; check before repeating it."
                if not idempotent
                else "Raise timeout=(connect, read) if the API is just slow."
            )
            return errors.RequestTimeoutError(
                f"no answer from {self._host} within {self.timeout[1]:g} s", hint=hint, **common
            )
        hint = None
        if not idempotent:
            hint = "The call was not retried (it is not idempotent); check its effect first."
        return errors.NetworkError(
            f"network error talking to {self._host}: {network_reason(exc)}", hint=hint, **common
        )

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        content = response.content
        if not content or not content.strip():
            return {}
        try:
            return jsonlib.loads(content)
        except ValueError:
            raise errors.APIError(
                "the API answered with a body that is not JSON",
                status=response.status_code,
                method=method,
                path=path,
            ) from None

    def _scrubber(self, body: Any) -> Callable[[str], str]:
        """A function removing the key and any password sent in ``body`` from API messages."""
        secrets = [self._key]
        if isinstance(body, dict):
            _collect_secrets(body, secrets)
        secrets = [s for s in secrets if isinstance(s, str) and len(s) >= 4]

        def scrub(text: str) -> str:
            for secret in secrets:
                if secret in text:
                    text = text.replace(secret, "***")
            return text

        return scrub


def _collect_secrets(data: Any, into: list[str]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in SECRET_BODY_KEYS and isinstance(value, str):
                into.append(value)
                if ":" in value:  # imageAuth "user:password": the password alone too
                    into.append(value.split(":", 1)[1])
            else:
                _collect_secrets(value, into)
    elif isinstance(data, list):
        for item in data:
            _collect_secrets(item, into)


def _short(error: errors.NovitaError) -> str:
    if error.status is not None:
        return f"HTTP {error.status}"
    return type(error).__name__
