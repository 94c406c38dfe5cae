"""Signed webhooks: sign and verify_signature, the Notifier that sends status changes, and a
verifying loopback Receiver (also the ``novita-notebook webhook-receiver`` command).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import queue
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import MIN_WEBHOOK_SECRET_LENGTH
from .errors import ValidationError, WebhookVerificationError
from .models import Instance, StatusChange, parse_time

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "MAX_BODY",
    "sign",
    "verify_signature",
    "build_payload",
    "Notifier",
    "Receiver",
    "main",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_PREFIX = "sha256="
MAX_BODY = 1_048_576
DEFAULT_TOLERANCE = 300
# Header and payload timestamps come from the same clock reading, but the header is whole seconds.
TIMESTAMP_AGREEMENT_SECONDS = 2
# One rule for the whole package (the config enforces the same minimum).
MIN_SECRET_LENGTH = MIN_WEBHOOK_SECRET_LENGTH


# ---------------------------------------------------------------------------------------------
# Signing and verification
# ---------------------------------------------------------------------------------------------


def _require_secret(secret: Any, field: str = "secret") -> str:
    """The secret as text; missing, non-text or too short secrets are a ValidationError."""
    if hasattr(secret, "get_secret_value"):  # a SecretStr-like wrapper from the config
        secret = secret.get_secret_value()
    if not isinstance(secret, str) or not secret:
        raise ValidationError(
            "a webhook secret is required (pass secret=... or set WEBHOOK_SECRET)", field=field
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(
            f"the webhook secret must be at least {MIN_SECRET_LENGTH} characters long",
            field=field,
        )
    return secret


def _hex_digest(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: float | int | None = None) -> dict[str, str]:
    """Headers authenticating ``body``: ``X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret,
    body)>`` (the predecessor's scheme) and ``X-Webhook-Timestamp: <unix seconds>``.

    The timestamp itself is protected because the payload carries the same instant and the
    receiver requires both to agree.
    """
    if not isinstance(body, bytes | bytearray):
        raise ValidationError("the body to sign must be bytes", field="body")
    secret = _require_secret(secret)
    seconds = int(time.time() if timestamp is None else timestamp)
    return {
        SIGNATURE_HEADER: SIGNATURE_PREFIX + _hex_digest(secret, bytes(body)),
        TIMESTAMP_HEADER: str(seconds),
    }


def _reject(message: str, reason: str, status: int) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason=reason, status=status)


def _lower_headers(headers: Mapping[str, str] | Any) -> dict[str, str]:
    """Case-insensitive view of a header mapping (dicts, requests' or http.server's headers)."""
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(key).lower(): str(value) for key, value in items}


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
    *,
    max_body: int = MAX_BODY,
) -> dict[str, Any]:
    """Check a received webhook and return its parsed payload.

    Raises ``WebhookVerificationError`` (``reason`` and ``status`` set: 413 oversized, 401
    signature or timestamp problems, 400 bodies that are not a JSON object). Signatures are
    compared in constant time; events older than ``tolerance`` seconds, or that far in the
    future, are rejected as replays. The secret never appears in a message.
    """
    secret = _require_secret(secret)
    if not isinstance(body, bytes | bytearray):
        raise ValidationError("the webhook body must be the raw bytes received", field="body")
    if tolerance is None or tolerance <= 0:
        raise ValidationError("tolerance must be a positive number of seconds", field="tolerance")
    if len(body) > max_body:
        raise _reject(f"webhook body is larger than {max_body} bytes", "too_large", 413)
    lowered = _lower_headers(headers)

    given = lowered.get(SIGNATURE_HEADER.lower())
    if not given:
        raise _reject(f"missing {SIGNATURE_HEADER} header", "missing_signature", 401)
    given = given.strip()
    if not given.startswith(SIGNATURE_PREFIX):
        raise _reject(
            f"{SIGNATURE_HEADER} must look like 'sha256=<64 hex digits>'",
            "malformed_signature",
            401,
        )
    digest = given[len(SIGNATURE_PREFIX) :].lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise _reject(
            f"{SIGNATURE_HEADER} must look like 'sha256=<64 hex digits>'",
            "malformed_signature",
            401,
        )
    expected = _hex_digest(secret, bytes(body))
    if not hmac.compare_digest(expected.encode("ascii"), digest.encode("ascii")):
        raise _reject("webhook signature does not match the body", "bad_signature", 401)

    raw_stamp = lowered.get(TIMESTAMP_HEADER.lower())
    if raw_stamp is None or not raw_stamp.strip():
        raise _reject(f"missing {TIMESTAMP_HEADER} header", "missing_timestamp", 401)
    try:
        header_time = float(raw_stamp.strip())
    except ValueError:
        raise _reject(
            f"{TIMESTAMP_HEADER} must be unix seconds", "malformed_timestamp", 401
        ) from None
    if header_time != header_time or header_time in (float("inf"), float("-inf")):
        raise _reject(f"{TIMESTAMP_HEADER} must be unix seconds", "malformed_timestamp", 401)

    try:
        payload = json.loads(bytes(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _reject("webhook body is not valid UTF-8 JSON", "bad_json", 400) from None
    if not isinstance(payload, dict):
        raise _reject("webhook body must be a JSON object", "bad_json", 400)

    payload_time = parse_time(payload.get("timestamp"))
    if payload_time is None:
        raise _reject(
            "webhook payload has no valid 'timestamp' (ISO 8601)", "malformed_timestamp", 401
        )
    if abs(payload_time.timestamp() - header_time) > TIMESTAMP_AGREEMENT_SECONDS:
        raise _reject(
            f"payload 'timestamp' and {TIMESTAMP_HEADER} disagree", "timestamp_mismatch", 401
        )
    current = time.time() if now is None else float(now)
    for stamp in (header_time, payload_time.timestamp()):
        if current - stamp > tolerance:
            raise _reject(f"webhook is older than {tolerance:g} s (possible replay)", "replay", 401)
        if stamp - current > tolerance:
            raise _reject(
                f"webhook timestamp is more than {tolerance:g} s in the future", "future", 401
            )
    return payload


# ---------------------------------------------------------------------------------------------
# Payloads
# ---------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _connection_info(change: StatusChange) -> dict[str, Any]:
    """What a receiver needs to connect — and nothing secret (no SSH password, no raw data)."""
    inst: Instance | None = change.instance
    if inst is None:
        return {"id": change.instance_id, "name": change.name, "status": change.new_status}
    return {
        "id": inst.id,
        "name": inst.name,
        "status": inst.status,
        "phase": inst.phase,
        "region": inst.region,
        "product": inst.product_name,
        "gpuNum": inst.gpu_num,
        "portMappings": [
            {"port": p.port, "type": p.type, "endpoint": p.endpoint} for p in inst.port_mappings
        ],
        "sshCommand": inst.ssh_command,
        "jupyterUrl": inst.jupyter_url,
        "statusError": (
            {"state": inst.status_error.state, "message": inst.status_error.message}
            if inst.status_error is not None
            else None
        ),
    }


def build_payload(
    change: StatusChange, *, event_id: str | None = None, timestamp: float | None = None
) -> dict[str, Any]:
    """The JSON object sent for one status change; ``timestamp`` is the send time (unix s)."""
    seconds = int(time.time() if timestamp is None else timestamp)
    return {
        "id": event_id or uuid.uuid4().hex,
        "event": f"instance.{change.new_status}",
        "instanceId": change.instance_id,
        "name": change.name,
        "status": change.new_status,
        "previousStatus": change.old_status,
        "timestamp": _iso(datetime.fromtimestamp(seconds, tz=UTC)),
        "observedAt": _iso(change.time) if isinstance(change.time, datetime) else None,
        "instance": _connection_info(change),
    }


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Notifier
# ---------------------------------------------------------------------------------------------


def _user_agent() -> str:
    # Imported here: the package root imports the client, which may import this module.
    from . import __version__

    return f"novita-notebook/{__version__}"


def _redact_url(url: str) -> str:
    """The URL without userinfo or query string (they may carry tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _validate_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(
            "a webhook URL is required (pass url=... or set WEBHOOK_URL)", field="url"
        )
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError(
            "the webhook URL must be an absolute http:// or https:// URL", field="url"
        )
    return url


def _positive(value: Any, field: str, *, integer: bool = False) -> Any:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValidationError(f"{field} must be {what}", field=field)
    return value


_STOP = object()


class Notifier:
    """Sends each ``StatusChange`` it is called with as a signed JSON POST.

    ``notifier(change)`` sends now (or queues it when ``background=True``, so a watcher tick
    never waits on a slow receiver); ``notifier.send(change) -> bool`` always sends now.
    5xx answers and network errors are retried with exponential backoff and jitter, 4xx never.
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
        client: Any = None,
    ) -> None:
        self.url = _validate_url(url if url is not None else os.environ.get("WEBHOOK_URL"))
        self._secret = _require_secret(
            secret if secret is not None else os.environ.get("WEBHOOK_SECRET")
        )
        self.timeout = _positive(timeout, "timeout")
        self.max_attempts = _positive(max_attempts, "max_attempts", integer=True)
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
            raise ValidationError("backoff must be a number of seconds >= 0", field="backoff")
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.background = bool(background)
        # List views (what watchers poll) carry no SSH/Jupyter details; with a client the
        # notifier fetches them once for "running" events so the receiver can connect.
        self._client = client
        if session is None:
            import requests

            session = requests.Session()
            self._owns_session = True
        else:
            self._owns_session = False
        self._session = session
        self.failures: list[dict[str, Any]] = []
        self.sent = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_positive(queue_size, "queue_size"))
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_client(cls, novita: Any, **kwargs: Any) -> Notifier:
        """A Notifier using the client's configured ``webhook_url`` and ``webhook_secret``."""
        config = novita.config
        kwargs.setdefault("client", novita)
        return cls(
            kwargs.pop("url", None) or getattr(config, "webhook_url", None),
            kwargs.pop("secret", None) or getattr(config, "webhook_secret", None),
            **kwargs,
        )

    def __repr__(self) -> str:
        mode = "background" if self.background else "inline"
        return (
            f"<Notifier {_redact_url(self.url)} secret=*** {mode} "
            f"sent={self.sent} failures={len(self.failures)}>"
        )

    # -- sending -------------------------------------------------------------------------------
    def __call__(self, change: StatusChange) -> bool | None:
        """Deliver one change: queued (returns None) in background mode, else sent now."""
        if not self.background:
            return self.send(change)
        self._ensure_sender()
        try:
            self._queue.put_nowait(change)
        except queue.Full:
            self._record_failure(change, None, 0, "sender queue is full; event dropped")
        return None

    def send(self, change: StatusChange) -> bool:
        """POST one change now, retrying 5xx and network errors; True once a 2xx answered."""
        if not isinstance(change, StatusChange):
            raise ValidationError("Notifier expects a models.StatusChange", field="change")
        change = self._with_connection_info(change)
        event_id = uuid.uuid4().hex
        last_error = "not sent"
        status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            # A fresh timestamp per attempt keeps retries inside the receiver's replay window;
            # the event id stays the same so a receiver drops duplicates.
            body = _encode(build_payload(change, event_id=event_id))
            headers = sign(body, self._secret)
            headers["Content-Type"] = "application/json"
            headers["User-Agent"] = _user_agent()
            retryable = False
            try:
                response = self._session.post(
                    self.url,
                    data=body,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
                status = response.status_code
                response.close()
                if 200 <= status < 300:
                    with self._lock:
                        self.sent += 1
                    return True
                last_error = f"HTTP {status}"
                retryable = status >= 500
            except Exception as exc:  # requests' network errors and anything the socket raises
                status = None
                last_error = self._scrub(f"{type(exc).__name__}: {exc}")
                retryable = True
            if not retryable or attempt == self.max_attempts:
                break
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            time.sleep(delay * random.uniform(0.5, 1.5))
        self._record_failure(change, status, attempt, last_error, event_id=event_id)
        return False

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
        change: StatusChange,
        status: int | None,
        attempts: int,
        error: str,
        *,
        event_id: str | None = None,
    ) -> None:
        failure = {
            "time": datetime.now(UTC),
            "id": event_id,
            "event": f"instance.{change.new_status}",
            "instanceId": change.instance_id,
            "name": change.name,
            "url": _redact_url(self.url),
            "status": status,
            "attempts": attempts,
            "error": self._scrub(error),
            "change": change,
        }
        with self._lock:
            self.failures.append(failure)
        log.warning(
            "webhook %s for %s not delivered to %s after %d attempt(s): %s",
            failure["event"],
            change.instance_id,
            failure["url"],
            attempts,
            failure["error"],
        )

    # -- background sender ---------------------------------------------------------------------
    def _ensure_sender(self) -> None:
        with self._lock:
            if self._closed:
                raise ValidationError("this Notifier is closed", field="notifier")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run_sender, name="novita-webhook-sender", daemon=True
                )
                self._thread.start()

    def _run_sender(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self.send(item)
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
        """Send what is queued (up to ``timeout`` s), stop the sender and close the session."""
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


# ---------------------------------------------------------------------------------------------
# Receiver
# ---------------------------------------------------------------------------------------------

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

    def _post(self) -> None:
        receiver = self.server.receiver
        route = self._route()
        if route != receiver.path:
            self._answer(
                405 if route == "/health" else 404,
                {"error": "method not allowed" if route == "/health" else "not found"},
            )
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            receiver._count_rejection("length_required")
            self._answer(411, {"error": "Content-Length is required"})
            return
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            receiver._count_rejection("length_required")
            self._answer(411, {"error": "Content-Length is required"})
            return
        try:
            length = int(raw_length.strip())
        except ValueError:
            length = -1
        if length < 0:
            receiver._count_rejection("bad_length")
            self._answer(400, {"error": "Content-Length must be a non-negative integer"})
            return
        if length > receiver.max_body:  # checked before reading a single byte of the body
            receiver._count_rejection("too_large")
            self._answer(413, {"error": f"body larger than {receiver.max_body} bytes"})
            return
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            receiver._count_rejection("truncated")
            self._answer(400, {"error": "body shorter than Content-Length"})
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
        self._secret = _require_secret(
            secret if secret is not None else os.environ.get("WEBHOOK_SECRET")
        )
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValidationError("path must start with '/'", field="path")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError("port must be an integer from 0 to 65535", field="port")
        self.host = host
        self.path = path
        self.tolerance = _positive(tolerance, "tolerance")
        self.max_body = _positive(max_body, "max_body", integer=True)
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


# ---------------------------------------------------------------------------------------------
# CLI: novita-notebook webhook-receiver
# ---------------------------------------------------------------------------------------------


def _print_event(payload: dict[str, Any]) -> None:
    previous = payload.get("previousStatus") or "-"
    print(
        f"{payload.get('timestamp')}  {payload.get('event')}  {payload.get('name')} "
        f"({payload.get('instanceId')})  {previous} -> {payload.get('status')}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """``novita-notebook webhook-receiver [--host H] [--port N] [--secret-env NAME] ...``."""
    parser = argparse.ArgumentParser(
        prog="novita-notebook webhook-receiver",
        description="Run a verifying webhook receiver and print each accepted event.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    parser.add_argument(
        "--secret-env",
        default="WEBHOOK_SECRET",
        help="environment variable holding the secret (default WEBHOOK_SECRET)",
    )
    parser.add_argument("--path", default="/webhook", help="path events are POSTed to")
    parser.add_argument(
        "--tolerance", type=float, default=DEFAULT_TOLERANCE, help="replay window in seconds"
    )
    args = parser.parse_args(argv)
    secret = os.environ.get(args.secret_env)
    if not secret:
        print(
            f"webhook-receiver: environment variable {args.secret_env} is not set",
            file=sys.stderr,
        )
        return 2
    try:
        receiver = Receiver(
            secret,
            host=args.host,
            port=args.port,
            path=args.path,
            tolerance=args.tolerance,
            callbacks=[_print_event],
        )
        receiver.start()
    except (ValidationError, OSError) as error:
        print(f"webhook-receiver: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    print(f"Listening on {receiver.url} (health: GET /health). Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        receiver.stop()
        rejected = receiver.rejected
        print(
            f"Stopped: {len(receiver.events)} event(s) accepted, "
            f"{sum(rejected.values())} rejected {rejected or ''}".rstrip(),
            flush=True,
        )
    return 0
