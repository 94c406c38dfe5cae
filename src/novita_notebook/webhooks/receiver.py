"""The Receiver: a verifying webhook endpoint on loopback, served from a daemon thread, that
answers at once, drops duplicate ids and hands accepted events to a queue, a frame and callbacks.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..errors import ValidationError, WebhookVerificationError
from ._settings import positive
from .signature import DEFAULT_TOLERANCE, MAX_BODY, require_secret, verify_signature

__all__ = ["EVENT_COLUMNS", "Receiver"]

log = logging.getLogger(__name__)

_STOP = object()

EVENT_COLUMNS = ("received_at", "id", "event", "instanceId", "name", "status", "previousStatus")


class _Handler(BaseHTTPRequestHandler):
    """One request to the Receiver; every answer is JSON and nothing here raises out."""

    server: _ReceiverServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms
    timeout = 10  # a client that promises more bytes than it sends cannot hold a thread forever
    server_version = "novita-notebook-webhook"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("webhook receiver: " + format, *args)

    def _answer(self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self) -> str:
        return urlsplit(self.path).path

    def _safely(self, handler: Callable[[], None]) -> None:
        receiver = self.server.receiver
        try:
            handler()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True  # the client went away; nothing left to answer
        except Exception:
            # Spec: never a 500. Anything unexpected is logged and answered as a bad request.
            log.exception("webhook receiver could not handle a request")
            receiver._count_rejection("internal")
            try:
                self._answer(400, {"error": "bad request"})
            except Exception:
                self.close_connection = True

    # -- methods -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._safely(self._get)

    def do_HEAD(self) -> None:
        self._safely(self._get)

    def do_POST(self) -> None:
        self._safely(self._post)

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler answers 501 for unknown methods; the spec wants 405.
        if name.startswith("do_"):
            return lambda: self._safely(self._not_allowed)
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        if self._route() in {self.server.receiver.path, "/health"}:
            allow = "POST" if self._route() == self.server.receiver.path else "GET, HEAD"
            self._answer(405, {"error": "method not allowed"}, {"Allow": allow})
        else:
            self._answer(404, {"error": "not found"})

    def _get(self) -> None:
        route = self._route()
        if route == "/health":
            self._answer(200, {"status": "ok"})
        elif route == self.server.receiver.path:
            self._answer(405, {"error": "method not allowed"}, {"Allow": "POST"})
        else:
            self._answer(404, {"error": "not found"})

    def _read_body(self, receiver: Receiver) -> bytes | None:
        """The request body, or None once a 411/400/413 has been answered instead."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            receiver._count_rejection("length_required")
            self._answer(411, {"error": "Content-Length is required"})
            return None
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            receiver._count_rejection("length_required")
            self._answer(411, {"error": "Content-Length is required"})
            return None
        try:
            length = int(raw_length.strip())
        except ValueError:
            length = -1
        if length < 0:
            receiver._count_rejection("bad_length")
            self._answer(400, {"error": "Content-Length must be a non-negative integer"})
            return None
        if length > receiver.max_body:  # checked before reading a single byte of the body
            receiver._count_rejection("too_large")
            self._answer(413, {"error": f"body larger than {receiver.max_body} bytes"})
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            receiver._count_rejection("truncated")
            self._answer(400, {"error": "body shorter than Content-Length"})
            return None
        return body

    def _post(self) -> None:
        receiver = self.server.receiver
        route = self._route()
        if route != receiver.path:
            self._answer(
                405 if route == "/health" else 404,
                {"error": "method not allowed" if route == "/health" else "not found"},
            )
            return
        body = self._read_body(receiver)
        if body is None:
            return
        try:
            payload = verify_signature(
                body,
                self.headers,
                receiver._secret,
                tolerance=receiver.tolerance,
                max_body=receiver.max_body,
            )
        except WebhookVerificationError as error:
            receiver._count_rejection(error.reason or "invalid")
            self._answer(error.status or 401, {"error": error.message, "reason": error.reason})
            return
        accepted, event_id = receiver._accept(payload, body)
        if accepted:
            self._answer(200, {"ok": True, "id": event_id})
        else:
            self._answer(200, {"ok": True, "id": event_id, "duplicate": True})


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("webhook receiver: connection error from %s", client_address, exc_info=True)


class Receiver:
    """A verifying webhook endpoint on loopback, served from a background daemon thread.

    ``with Receiver(secret) as rx: rx.url`` → ``http://127.0.0.1:PORT/webhook``. Valid events
    get 200 at once and go to ``rx.queue``, ``rx.events`` (a DataFrame) and each callback (on a
    worker thread). Duplicate ids get 200 ``{"duplicate": true}``; bad signatures and replays
    401, bad JSON 400, oversized bodies 413. ``rx.rejected`` counts rejections by reason.
    """

    def __init__(
        self,
        secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = "/webhook",
        tolerance: float = DEFAULT_TOLERANCE,
        max_body: int = MAX_BODY,
        callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
    ) -> None:
        self._secret = require_secret(
            secret if secret is not None else os.environ.get("WEBHOOK_SECRET")
        )
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValidationError("path must start with '/'", field="path")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError("port must be an integer from 0 to 65535", field="port")
        self.host = host
        self.path = path
        self.tolerance = positive(tolerance, "tolerance")
        self.max_body = positive(max_body, "max_body", integer=True)
        self.callbacks: list[Callable[[dict[str, Any]], Any]] = list(callbacks)
        for callback in self.callbacks:
            if not callable(callback):
                raise ValidationError("every callback must be callable", field="callbacks")
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self.callback_errors = 0
        self._requested_port = port
        self._records: list[dict[str, Any]] = []
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._rejected: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._work: queue.Queue[Any] = queue.Queue()
        self._server: _ReceiverServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Receiver:
        if self._server is not None:
            return self
        server = _ReceiverServer((self.host, self._requested_port), _Handler)
        server.receiver = self
        self._server = server
        serve = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="novita-webhook-receiver",
            daemon=True,
        )
        worker = threading.Thread(
            target=self._run_callbacks, name="novita-webhook-callbacks", daemon=True
        )
        self._threads = [serve, worker]
        serve.start()
        worker.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._work.put(_STOP)
        for thread in self._threads:
            thread.join(5)
        self._threads = []

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise ValidationError("the receiver is not running; call start()", field="receiver")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return (
            f"<Receiver {where} secret=*** events={len(self._records)} "
            f"rejected={sum(self._rejected.values())}>"
        )

    # -- results -------------------------------------------------------------------------------
    @property
    def events(self) -> Any:
        """Accepted events as a DataFrame, oldest first (columns: EVENT_COLUMNS)."""
        import pandas as pd

        with self._lock:
            rows = list(self._records)
        frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
        frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
        return frame

    @property
    def rejected(self) -> dict[str, int]:
        """How many requests were rejected, by reason (``bad_signature``, ``replay`` …)."""
        with self._lock:
            return dict(self._rejected)

    def add_callback(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        if not callable(callback):
            raise ValidationError("callback must be callable", field="callback")
        self.callbacks.append(callback)

    # -- internals (called from handler threads) -----------------------------------------------
    def _count_rejection(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def _accept(self, payload: dict[str, Any], body: bytes) -> tuple[bool, str]:
        """Record a verified event; False when its id was already seen."""
        event_id = payload.get("id")
        if not isinstance(event_id, str) or not event_id:
            # Events without an id (older senders) are deduplicated by their exact body.
            event_id = "sha256:" + hashlib.sha256(body).hexdigest()
        now = time.time()
        with self._lock:
            # Ids only need remembering while a replay could still pass the timestamp check.
            horizon = now - 2 * self.tolerance - 60
            while self._seen and next(iter(self._seen.values())) < horizon:
                self._seen.popitem(last=False)
            if event_id in self._seen:
                self._rejected["duplicate"] += 1
                return False, event_id
            self._seen[event_id] = now
            self._records.append(
                {
                    "received_at": datetime.fromtimestamp(now, tz=UTC),
                    "id": event_id,
                    "event": payload.get("event"),
                    "instanceId": payload.get("instanceId"),
                    "name": payload.get("name"),
                    "status": payload.get("status"),
                    "previousStatus": payload.get("previousStatus"),
                }
            )
        self.queue.put(payload)
        self._work.put(payload)
        return True, event_id

    def _run_callbacks(self) -> None:
        while True:
            payload = self._work.get()
            if payload is _STOP:
                return
            for callback in list(self.callbacks):
                try:
                    callback(payload)
                except Exception:
                    self.callback_errors += 1
                    log.exception("webhook callback %r failed", callback)
