"""The sandbox's HTTP layer: an HTTP/1.1 keep-alive server on loopback whose handler does
auth, faults, routing of both Novita namespaces, control endpoints and the pretend app pages.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import json
import re
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from . import control
from .routes import API_PREFIX, OPENAPI_PATHS, OPENAPI_PREFIX, OPENAPI_ROUTES, PATHS, ROUTES
from .validate import ApiError, collecting_ignored

if TYPE_CHECKING:
    from .app import Sandbox

MAX_BODY_BYTES = 2 * 1024 * 1024
_PROXY = re.compile(r"^/_sandbox/proxy/([^/]+)/(\d{1,5})(/.*)?$")
_TERMINAL = re.compile(r"^/_sandbox/terminal/([^/]+)/?$")
_LOGS = re.compile(r"^/_sandbox/logs/([^/]+)/(system|instance)$")
#: The lifecycle POSTs an ``ambiguousActionRate`` fault applies, then drops the answer of.
LIFECYCLE_ROUTES = frozenset(
    ("POST", f"/gpu/instance/{action}") for action in ("start", "stop", "restart", "delete")
)


def _parse_json(text: str) -> Any:
    """A request body: empty means ``{}``; anything unparsable is VALIDATOR_PARAM."""
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        detail = getattr(exc, "msg", "invalid")
        raise ApiError("VALIDATOR_PARAM", f"body: malformed JSON ({detail})") from None
    except RecursionError:  # absurdly deep nesting
        raise ApiError("VALIDATOR_PARAM", "body: JSON nested too deeply") from None


def _namespace(path: str) -> tuple[str, dict[tuple[str, str], Any], frozenset[str]] | None:
    """(prefix, routes, known paths) of the Novita namespace serving ``path``, if any."""
    for prefix, routes, paths in (
        (API_PREFIX, ROUTES, PATHS),
        (OPENAPI_PREFIX, OPENAPI_ROUTES, OPENAPI_PATHS),
    ):
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, routes, paths
    return None


class _BadRequest(Exception):
    """The request itself is unreadable (length, encoding): answer 400 and close."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Sandbox) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn): slow and pointless here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        # Between requests (every poll interval): start serving an instance's SSH port
        # once a connection waits on it, so no SSH thread runs before one is needed.
        self.app.machines.serve_waiting()

    def close_connections(self) -> None:
        """Cut every open keep-alive connection (stop means stop)."""
        with self.connections_lock:
            connections = list(self.connections)
            self.connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "NovitaSandbox/1.0"
    sys_version = ""
    # The request-log entry of the request being answered (None for control endpoints).
    _log_entry: dict[str, Any] | None = None
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: a request log lives in the sandbox, nothing goes to stderr."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    # -- plumbing ------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BadRequest("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BadRequest("Content-Length must be an integer") from None
        if size < 0 or size > MAX_BODY_BYTES:
            raise _BadRequest(f"body must be at most {MAX_BODY_BYTES} bytes")
        return self.rfile.read(size)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        method: str = "GET",
    ) -> None:
        # One write per response: headers and body together (no Nagle/delayed-ACK stalls).
        reason = self.responses.get(status, ("",))[0]
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        for key, value in (headers or {}).items():
            lines.append(f"{key}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # Log the status before the client can see the answer, so a test reading the request
        # log right after a response never sees 0 (the mark of a dropped connection).
        if self._log_entry is not None:
            self._log_entry["status"] = status
        try:
            self.wfile.write(head if method == "HEAD" else head + body)
        except OSError:
            self.close_connection = True

    def _send_json(self, status: int, payload: Any, **kw: Any) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode("utf-8"), **kw)

    def _send_error(self, error: ApiError, **kw: Any) -> None:
        self._send_json(error.status, error.envelope(), **kw)

    def _drop(self) -> None:
        """Close the connection without writing a single byte."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- dispatch ------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        arrived = time.time()
        app = self.server.app
        path, _, query_string = self.path.partition("?")
        entry: dict[str, Any] | None = None
        self._log_entry = None
        status = 0
        try:
            try:
                raw = self._read_body()
                text = raw.decode("utf-8")
            except (_BadRequest, UnicodeDecodeError) as exc:
                self.close_connection = True
                rule = "must be UTF-8 JSON" if isinstance(exc, UnicodeDecodeError) else str(exc)
                raise ApiError("VALIDATOR_PARAM", f"body: {rule}") from None
            if path in control.CONTROL_PATHS:
                body: Any = _parse_json(text) if method == "POST" else {}
                self._send_json(200, control.handle(app, method, path, body), method=method)
                status = 200
                return
            entry = self._log_entry = app.log.add(method, path, query_string, text, arrived)
            namespace = _namespace(path)
            if namespace is not None:
                status = self._novita(app, method, namespace, path, query_string, text)
            elif path.startswith("/_sandbox/"):
                status = self._sandbox_pages(app, method, path)
            else:
                raise ApiError("RESOURCE_NOT_FOUND", f"path: {path} not found", status=404)
        except ApiError as error:
            status = error.status
            self._send_error(error, method=method)
        except Exception:  # noqa: BLE001 - never a traceback in a response; keep serving
            status = 500
            self._send_error(ApiError("UNKNOWN", "internal sandbox error"), method=method)
        finally:
            if entry is not None:
                entry["status"] = status
            self._log_entry = None

    def _novita(
        self,
        app: Sandbox,
        method: str,
        namespace: tuple[str, dict[tuple[str, str], Any], frozenset[str]],
        path: str,
        query_string: str,
        text: str,
    ) -> int:
        prefix, routes, paths = namespace
        rel = path[len(prefix) :] or "/"
        route = (method, rel)
        decision = app.faults.decide(
            is_create=route == ("POST", "/gpu/instance/create"),
            is_action=route in LIFECYCLE_ROUTES,
        )
        if decision.latency:
            time.sleep(decision.latency)
        if decision.drop:
            self._drop()
            return 0
        if decision.error is not None:
            headers = None
            if decision.retry_after and app.world.switches.retryAfter:
                headers = {"Retry-After": str(decision.retry_after)}
            self._send_error(decision.error, headers=headers, method=method)
            return decision.error.status
        if not self._authorised(app):
            if app.world.switches.badKeyStatus == 400:  # the documented account reason
                raise ApiError("INVALID_USER_TOKEN", "invalid user token", status=400)
            raise ApiError("UNAUTHORIZED", "missing or invalid API key (Authorization: Bearer)")
        handler = routes.get(route)
        if handler is None:
            if rel in paths:
                raise ApiError(
                    "METHOD_NOT_ALLOWED", f"method {method} not allowed on {rel}", status=405
                )
            raise ApiError("RESOURCE_NOT_FOUND", f"path: {prefix}{rel} not found", status=404)
        query = parse_qs(query_string, keep_blank_values=True)
        body: Any = _parse_json(text) if method == "POST" else None
        if route == ("POST", "/gpu/instance/stop") and app.faults.ignore_stop():
            self._send_json(200, {}, method=method)  # accepted, never done
            return 200
        with app.world.lock, collecting_ignored() as ignored:
            try:
                result = handler(app.world, query, body)
            finally:
                if self._log_entry is not None:
                    self._log_entry["ignored"] = list(ignored)
        if decision.drop_after_create or decision.drop_after_action:
            self._drop()
            return 0
        if route == ("GET", "/gpu/instances"):
            result = app.faults.thin_listing(result)
        self._send_json(200, result, method=method)
        return 200

    def _authorised(self, app: Sandbox) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return hmac.compare_digest(token.strip().encode(), app.api_key.encode())

    def _sandbox_pages(self, app: Sandbox, method: str, path: str) -> int:
        """The pretend apps inside instances: http port proxies, web terminal, logs."""
        world = app.world
        match = _PROXY.match(path)
        if match:
            instance_id, port = match.group(1), int(match.group(2))
            with world.lock:
                record = world.instances.get(instance_id)
                if record is not None:
                    world.settle(record)
                http_ports = (
                    {p for p, t in world.all_ports(record) if t == "http"} if record else set()
                )
                up = record is not None and port in http_ports and world.app_up(record)
                name = record.name if record else ""
            return self._page(up, f"{name or instance_id} :{port}", port == 8888, method)
        match = _TERMINAL.match(path)
        if match:
            with world.lock:
                record = world.instances.get(match.group(1))
                if record is not None:
                    world.settle(record)
                up = record is not None and world.app_up(record)
            return self._page(up, f"web terminal {match.group(1)}", False, method)
        match = _LOGS.match(path)
        if match:
            with world.lock:
                record = world.instances.get(match.group(1))
                if record is None:
                    raise ApiError(
                        "RESOURCE_NOT_FOUND", "instanceId: instance not found", status=404
                    )
                world.settle(record)
                text = world.logs(record, match.group(2))
            self._send(200, text.encode("utf-8"), "text/plain; charset=utf-8", method=method)
            return 200
        raise ApiError("RESOURCE_NOT_FOUND", f"path: {path} not found", status=404)

    def _page(self, up: bool, title: str, jupyter: bool, method: str) -> int:
        safe = html.escape(title)
        if not up:
            body = f"<html><body><h1>502 Bad Gateway</h1><p>{safe} is not up.</p></body></html>"
            self._send(502, body.encode(), "text/html; charset=utf-8", method=method)
            return 502
        what = "JupyterLab (sandbox)" if jupyter else "Sandbox app"
        body = f"<html><head><title>{what}</title></head><body><h1>{what}</h1><p>{safe}</p></body></html>"
        self._send(200, body.encode(), "text/html; charset=utf-8", method=method)
        return 200
