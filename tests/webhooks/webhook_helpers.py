"""Helpers for webhook tests: a loopback HTTP server that counts hits and answers from a
script, a socket that drops every connection, and sample status changes.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from novita_notebook.models import Instance, PortMapping, StatusChange

SECRET = "whsec_test_0123456789abcdefXYZ"
SSH_PASSWORD = "ssh-pass-Zq81-never-shown"


class CountingServer:
    """Answers POSTs with the next status of ``script`` (the last one repeats) after ``delay``."""

    def __init__(self, script: list[int], delay: float = 0.0) -> None:
        self.script = list(script)
        self.delay = delay
        self.hits: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner.lock:
                    index = len(owner.hits)
                    owner.hits.append(
                        {"headers": dict(self.headers.items()), "body": body, "time": time.time()}
                    )
                    status = owner.script[min(index, len(owner.script) - 1)]
                if owner.delay:
                    time.sleep(owner.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> CountingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class DroppingServer:
    """Accepts TCP connections and closes them at once: a network error for the sender."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def __enter__(self) -> DroppingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def make_change(
    status: str = "running", old: str | None = "pulling", *, with_instance: bool = True
) -> StatusChange:
    instance = None
    if with_instance:
        instance = Instance(
            id="inst-42",
            name="demo-1",
            status=status,
            region="AS-SGP-02",
            product_name="RTX 4090 24GB",
            gpu_num=2,
            port_mappings=(
                PortMapping(8888, "http", "https://inst-42-8888.example/"),
                PortMapping(22, "tcp", None),
            ),
            ssh_command="ssh root@host.example -p 30022",
            jupyter_url="https://inst-42-8888.example/lab",
            ssh_password=SSH_PASSWORD,
            raw={"connectComponentSSH": {"password": SSH_PASSWORD}},
        )
    return StatusChange("inst-42", "demo-1", old, status, datetime.now(UTC), instance)
