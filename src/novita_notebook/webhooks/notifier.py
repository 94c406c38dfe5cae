"""The Notifier: sends each status change (or other event) as a signed JSON POST, inline or
from a background sender thread, retrying what is worth retrying and recording what failed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import requests

from .._version import __version__
from ..errors import (
    APIError,
    NetworkError,
    NovitaError,
    RequestTimeoutError,
    ServerError,
    ValidationError,
    is_transient,
)
from ..models import Instance, StatusChange
from ..retry import retry_delay
from ._settings import positive, redact_url, validate_url
from .payload import WebhookEvent, build_payload, encode, event_name
from .signature import require_secret, sign

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class InstanceSource(Protocol):
    """What a notifier asks of a client: one instance, fresh (SSH and Jupyter details)."""

    def instance(self, instance: str) -> Instance: ...


def _user_agent() -> str:
    return f"novita-notebook/{__version__}"


_STOP = object()
_CLOSED = "the Notifier is closed; event dropped"


def _check_event(event: Any) -> None:
    if not isinstance(event, StatusChange | WebhookEvent):
        raise ValidationError(
            "Notifier expects a models.StatusChange or a webhooks.WebhookEvent", field="change"
        )


class Notifier:
    """Sends each ``StatusChange`` (or ``WebhookEvent``) it is called with as a signed JSON POST.

    ``notifier(change)`` sends now (or queues it when ``background=True``, so a watcher tick
    never waits on a slow receiver); ``notifier.send(change) -> bool`` always sends now.
    5xx answers, timeouts and network errors are retried (``errors.is_transient`` decides) on
    the one schedule, ``retry.retry_delay`` (full jitter), a 4xx never.
    Undelivered events are logged (without the secret) and kept in ``notifier.failures``.
    With ``client`` (``from_client`` sets it), "running" events seen only in a list view get
    the instance's SSH/Jupyter details fetched once before sending.
    """

    def __init__(
        self,
        url: str | None = None,
        secret: str | None = None,
        *,
        timeout: float = 5,
        max_attempts: int = 4,
        session: Any = None,
        background: bool = False,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        queue_size: int = 1000,
        client: InstanceSource | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = validate_url(url if url is not None else os.environ.get("WEBHOOK_URL"))
        self._secret = require_secret(
            secret if secret is not None else os.environ.get("WEBHOOK_SECRET")
        )
        self.timeout = positive(timeout, "timeout")
        self.max_attempts = positive(max_attempts, "max_attempts", integer=True)
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
            raise ValidationError("backoff must be a number of seconds >= 0", field="backoff")
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._rng = rng  # a seeded Random makes the jitter reproducible
        self.background = bool(background)
        # List views (what watchers poll) carry no SSH/Jupyter details; with a client the
        # notifier fetches them once for "running" events so the receiver can connect.
        self._client = client
        if session is None:
            session = requests.Session()
            self._owns_session = True
        else:
            self._owns_session = False
        self._session = session
        self.failures: list[dict[str, Any]] = []
        self.sent = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=positive(queue_size, "queue_size"))
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_client(cls, novita: Any, **kwargs: Any) -> Notifier:
        """A Notifier using the client's configured ``webhook_url`` and ``webhook_secret``."""
        config = novita.config
        kwargs.setdefault("client", novita)
        return cls(
            kwargs.pop("url", None) or config.webhook_url,
            kwargs.pop("secret", None) or config.webhook_secret,
            **kwargs,
        )

    def __repr__(self) -> str:
        mode = "background" if self.background else "inline"
        return (
            f"<Notifier {redact_url(self.url)} secret=*** {mode} "
            f"sent={self.sent} failures={len(self.failures)}>"
        )

    # -- sending -------------------------------------------------------------------------------
    def __call__(self, event: StatusChange | WebhookEvent) -> bool | None:
        """Deliver one event: queued (returns None) in background mode, else sent now.

        A closed Notifier drops the event, logs why and records it in ``failures``.
        """
        if not self.background:
            return self.send(event)
        _check_event(event)
        with self._lock:  # held from the closed check to the put: nothing lands after _STOP
            problem = _CLOSED if self._closed else self._enqueue(event)
        if problem:
            self._record_failure(event, None, 0, problem)
        return None

    def send(self, event: StatusChange | WebhookEvent) -> bool:
        """POST one event now, retrying what ``errors.is_transient`` calls transient (5xx,
        network errors, timeouts); True once a 2xx answered, False when it was not delivered
        (or the Notifier is closed)."""
        _check_event(event)
        if self._closed:
            self._record_failure(event, None, 0, _CLOSED)
            return False
        return self._deliver(event)

    def send_event(
        self,
        type: str,  # noqa: A002 - the payload's own word for it
        *,
        instance_id: str | None = None,
        name: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> bool | None:
        """Deliver an event other than a status change, e.g. ``send_event("guard.warning",
        instance_id="inst-1", name="demo-1", data={"action": "stop", "in_seconds": 600})``.
        Queued or sent now like ``notifier(event)``; see ``webhooks.payload`` for the shape."""
        return self(WebhookEvent(type, instance_id, name, dict(data or {})))

    def _deliver(self, event: StatusChange | WebhookEvent) -> bool:
        if isinstance(event, StatusChange):
            event = self._with_connection_info(event)
        event_id = uuid.uuid4().hex
        error: NovitaError = NetworkError("not sent")
        attempt = 0
        while attempt < self.max_attempts:
            if attempt:
                time.sleep(
                    retry_delay(attempt - 1, base=self.backoff, cap=self.max_backoff, rng=self._rng)
                )
            attempt += 1
            failure = self._post_once(event, event_id)
            if failure is None:
                with self._lock:
                    self.sent += 1
                return True
            error = failure
            if not is_transient(error):
                break
        self._record_failure(event, error.status, attempt, error.message, event_id=event_id)
        return False

    def _post_once(self, event: StatusChange | WebhookEvent, event_id: str) -> NovitaError | None:
        """One signed POST; None on a 2xx, else the failure as an error of the one taxonomy."""
        # A fresh timestamp per attempt keeps retries inside the receiver's replay window;
        # the event id stays the same so a receiver drops duplicates.
        body = encode(build_payload(event, event_id=event_id))
        headers = sign(body, self._secret)
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = _user_agent()
        try:
            response = self._session.post(
                self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout as exc:
            return RequestTimeoutError(self._scrub(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # requests' network errors and anything the socket raises
            return NetworkError(self._scrub(f"{type(exc).__name__}: {exc}"))
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return None
        if status >= 500:
            return ServerError(f"HTTP {status}", status=status)
        # A receiver's 4xx (429 included) refuses this event for good: it is not the rate-limited
        # Novita API, and repeating a refused event would only be refused again.
        return APIError(f"HTTP {status}", status=status)

    def _with_connection_info(self, change: StatusChange) -> StatusChange:
        """For a running instance seen only in a list view, fetch its connection details."""
        if self._client is None or change.new_status != "running":
            return change
        inst = change.instance
        if inst is not None and (inst.ssh_command or inst.jupyter_url or inst.http_endpoints):
            return change
        try:
            fresh = self._client.instance(change.instance_id)
        except Exception as exc:  # the event still goes out, just without the details
            log.debug("no connection details for %s: %s", change.instance_id, type(exc).__name__)
            return change
        return dataclasses.replace(change, instance=fresh)

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _record_failure(
        self,
        event: StatusChange | WebhookEvent,
        status: int | None,
        attempts: int,
        error: str,
        *,
        event_id: str | None = None,
    ) -> None:
        failure = {
            "time": datetime.now(UTC),
            "id": event_id,
            "event": event_name(event),
            "instanceId": event.instance_id,
            "name": event.name,
            "url": redact_url(self.url),
            "status": status,
            "attempts": attempts,
            "error": self._scrub(error),
            "change": event,
        }
        with self._lock:
            self.failures.append(failure)
        log.warning(
            "webhook %s for %s not delivered to %s after %d attempt(s): %s",
            failure["event"],
            event.instance_id,
            failure["url"],
            attempts,
            failure["error"],
        )

    # -- background sender ---------------------------------------------------------------------
    def _enqueue(self, event: StatusChange | WebhookEvent) -> str | None:
        """Queue for the sender thread (started if needed); the caller holds ``self._lock``.
        Returns why the event was dropped, or None."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run_sender, name="novita-webhook-sender", daemon=True
            )
            self._thread.start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            return "sender queue is full; event dropped"
        return None

    def _run_sender(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._deliver(item)  # queued before close(), so still delivered
            except Exception:  # never let one bad event kill the sender thread
                log.exception("webhook sender failed on one event")
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        """Events queued but not yet sent (background mode)."""
        return self._queue.unfinished_tasks

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued events are sent (or failed); False if ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float | None = 10) -> None:
        """Send what is queued (up to ``timeout`` s), stop the sender and close the session.
        Safe to call more than once; later events are dropped with a log line."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
