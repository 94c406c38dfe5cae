"""The sandbox's HTTP layer (HTTP/1.1 keep-alive on loopback) and the ``Sandbox`` object that
runs it in a background thread: auth, faults, routing, control and proxy endpoints.
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
from typing import Any
from urllib.parse import parse_qs

from . import control
from .faults import FAULT_FIELDS, Faults, RequestLog
from .routes import API_PREFIX, OPENAPI_PATHS, OPENAPI_PREFIX, OPENAPI_ROUTES, PATHS, ROUTES
from .validate import ApiError, collecting_ignored
from .world import Switches, World

DEFAULT_API_KEY = "sk_sandbox_novita_notebook"
MAX_BODY_BYTES = 2 * 1024 * 1024
_PROXY = re.compile(r"^/_sandbox/proxy/([^/]+)/(\d{1,5})(/.*)?$")
_TERMINAL = re.compile(r"^/_sandbox/terminal/([^/]+)/?$")
_LOGS = re.compile(r"^/_sandbox/logs/([^/]+)/(system|instance)$")
_SNAKE_FAULTS = {
    "error_rate": "errorRate",
    "latency_ms": "latencyMs",
    "rate_limit_per_minute": "rateLimitPerMinute",
    "drop_rate": "dropRate",
    "ambiguous_create_rate": "ambiguousCreateRate",
}


_SNAKE_SWITCHES = {
    "page_base": "pageBase",
    "not_found_status": "notFoundStatus",
    "phase_jitter": "phaseJitter",
    "spot_notice_rate": "spotNoticeRate",
    "pending_rate": "pendingRate",
}


def _snake_message(message: str) -> str:
    """A switch error as Python callers spell the argument."""
    for snake, camel in _SNAKE_SWITCHES.items():
        if message.startswith(camel + ":"):
            return snake + message[len(camel) :]
    return message


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


class _Server(ThreadingHTTPServer):
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
    server: _Server

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
        decision = app.faults.decide(is_create=route == ("POST", "/gpu/instance/create"))
        if decision.latency:
            time.sleep(decision.latency)
        if decision.drop:
            self._drop()
            return 0
        if decision.error is not None:
            headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after else None
            self._send_error(decision.error, headers=headers, method=method)
            return decision.error.status
        if not self._authorised(app):
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
        with app.world.lock, collecting_ignored() as ignored:
            try:
                result = handler(app.world, query, body)
            finally:
                if self._log_entry is not None:
                    self._log_entry["ignored"] = list(ignored)
        if decision.drop_after_create:
            self._drop()
            return 0
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


class Sandbox:
    """An offline Novita GPU cloud on loopback. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        speed: float = 1.0,
        seed: int = 0,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        page_base: int = 0,
        not_found_status: int = 404,
        phase_jitter: float = 0.0,
        spot_notice_rate: float = 0.0,
        pending_rate: float = 1 / 3,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise ValueError("speed: must be a number > 0")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key: must be a non-empty string")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port: must be an integer between 0 and 65535")
        self.host = host
        self._port = port
        self._api_key = api_key or DEFAULT_API_KEY
        switches = Switches()
        try:
            switches.update(
                {
                    "pageBase": page_base,
                    "notFoundStatus": not_found_status,
                    "phaseJitter": phase_jitter,
                    "spotNoticeRate": spot_notice_rate,
                    "pendingRate": pending_rate,
                }
            )
        except ApiError as error:
            raise ValueError(_snake_message(error.message)) from None
        self.world = World(seed=seed, speed=float(speed), switches=switches)
        self.faults = Faults(seed)
        self.log = RequestLog()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # -- identity ------------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def port(self) -> int:
        return self._port

    @property
    def speed(self) -> float:
        return self.world.speed

    @property
    def seed(self) -> int:
        return self.world.seed

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def running(self) -> bool:
        return self._server is not None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {self.url} {state} speed={self.speed:g} seed={self.seed}>"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        with self._lifecycle:
            if self._server is not None:
                return self
            server = _Server((self.host, self._port), self)
            self._port = server.server_address[1]
            self.world.base_url = self.url
            thread = threading.Thread(
                target=server.serve_forever,
                # stop() waits up to one poll interval: keep it short so per-test teardown is cheap.
                kwargs={"poll_interval": 0.01},
                name=f"novita-sandbox-{self._port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
            thread.start()
        return self

    def stop(self) -> None:
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            server.shutdown()
            server.server_close()
            server.close_connections()
            if thread is not None:
                thread.join(timeout=2.0)

    def restart(self, downtime: float = 0.5, wait: bool = True) -> None:
        """Stop serving, keep the state, serve again on the same port after ``downtime``
        seconds. ``wait=False`` returns at once and comes back up in the background."""
        if downtime < 0:
            raise ValueError("downtime: must be >= 0")
        self.stop()

        def come_back() -> None:
            time.sleep(downtime)
            deadline = time.monotonic() + 5.0
            while True:
                try:
                    self.start()
                    return
                except OSError:  # the port may linger briefly after close
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        if wait:
            come_back()
        else:
            threading.Thread(target=come_back, name="novita-sandbox-restart", daemon=True).start()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control (same effect as the /_sandbox endpoints) --------------------------------------
    def reset(self) -> None:
        """Back to the seeded initial state: no instances, auths or private templates, the
        initial stock, no faults. The request log is kept (see clear_requests)."""
        self.world.reset()
        self.faults.configure({})

    def set_stock(
        self, stock: int, cluster_id: str | None = None, product_id: str | None = None
    ) -> int:
        """Set the available GPUs of matching offers (None = all); returns how many matched."""
        try:
            with self.world.lock:
                return self.world.set_stock(stock, cluster_id, product_id)
        except ApiError as error:
            raise ValueError(error.message) from None

    def set_faults(self, **settings: float) -> dict[str, float]:
        """Replace the fault settings: errorRate, latencyMs, rateLimitPerMinute, dropRate,
        ambiguousCreateRate (snake_case accepted too). No argument clears them."""
        clean = {_SNAKE_FAULTS.get(k, k): v for k, v in settings.items()}
        try:
            return self.faults.configure(clean)
        except ApiError as error:
            raise ValueError(f"{error.message} (known: {', '.join(FAULT_FIELDS)})") from None

    def clear_faults(self) -> None:
        self.faults.configure({})

    def configure(self, **switches: float) -> dict[str, Any]:
        """Change behaviour switches now (same as POST /_sandbox/config): page_base,
        not_found_status, phase_jitter, spot_notice_rate, pending_rate. Returns them all.
        ``reset()`` restores the values given to the constructor."""
        camel = {_SNAKE_SWITCHES.get(k, k): v for k, v in switches.items()}
        try:
            with self.world.lock:
                self.world.switches.update(camel)
                return self.world.switches.as_dict()
        except ApiError as error:
            raise ValueError(_snake_message(error.message)) from None

    @property
    def config(self) -> dict[str, Any]:
        with self.world.lock:
            return self.world.switches.as_dict()

    def set_utilization(self, instance_id: str, gpu: float | None) -> None:
        """Pin an instance's GPU utilisation (0–100 %) from now on; None = default pattern."""
        if gpu is not None and (isinstance(gpu, bool) or not 0 <= gpu <= 100):
            raise ValueError("gpu: must be a number between 0 and 100, or None")
        try:
            with self.world.lock:
                self.world.set_utilization(instance_id, gpu)
        except ApiError as error:
            raise ValueError(error.message) from None

    def spot_reclaim(self, instance_id: str, notice_seconds: float = 3600.0) -> str:
        """Send a spot instance a reclaim notice now; reclaiming starts ``notice_seconds``
        (sandbox seconds, divided by speed) later. Returns spotReclaimTime."""
        if isinstance(notice_seconds, bool) or not notice_seconds >= 0:
            raise ValueError("notice_seconds: must be a number >= 0")
        try:
            with self.world.lock:
                record = self.world.reclaim_notice(instance_id, float(notice_seconds))
                return str(int(record.spot_reclaim_time or 0))
        except ApiError as error:
            raise ValueError(error.message) from None

    def requests(self) -> list[dict[str, Any]]:
        return self.log.entries()

    def clear_requests(self) -> None:
        self.log.clear()
