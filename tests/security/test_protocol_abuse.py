"""Requests broken at the HTTP level (garbage request lines, lying Content-Length, huge headers,
bad chunking, clients that vanish mid-body) against the sandbox and the webhook receiver: any
answer is below 500 and both keep serving.
"""

from __future__ import annotations

import socket

import pytest
import requests
from secret_scan import WEBHOOK_SECRET

from novita_notebook.sandbox import Sandbox
from novita_notebook.webhooks import Receiver

API = "/gpu-instance/openapi/v1"

RAW_REQUESTS = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "http/0.9 style": b"GET /\r\n\r\n",
    "unknown protocol": b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nHost x\r\nBroken\r\n\r\n",
    "negative length": b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "non-numeric length": b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n",
    "absurd length": b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n",
    "bad chunk size": (
        b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    ),
    "non-utf8 path": b"GET /\xff\xfe\xfd HTTP/1.1\r\nHost: x\r\n\r\n",
    "huge header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    "many headers": b"GET / HTTP/1.1\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(150))
    + b"\r\n",
    "nul in header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
}


def _exchange(host: str, port: int, payload: bytes, api_path: str) -> int:
    """Send raw bytes (``/webhook`` rewritten to the server's own path); return the status,
    or 0 when the server closed without answering (acceptable only for unparseable bytes)."""
    payload = payload.replace(b" /webhook ", f" {api_path} ".encode())
    with socket.create_connection((host, port), timeout=10) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return 0
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _vanishing_client(host: str, port: int, path: str) -> None:
    """Promise 1000 bytes, send 10, disappear."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode()
            + b"0123456789"
        )


@pytest.fixture(scope="module")
def servers():
    with Sandbox(speed=300, seed=2) as sandbox, Receiver(WEBHOOK_SECRET) as receiver:
        yield {
            "sandbox": (sandbox.host, sandbox.port, f"{API}/gpu/instance/create", sandbox),
            "receiver": (receiver.host, receiver.port, receiver.path, receiver),
        }


def _still_serving(kind: str, server) -> None:
    if kind == "sandbox":
        response = requests.get(
            f"{server.api_url}/clusters",
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=5,
        )
    else:
        response = requests.get(f"http://{server.host}:{server.port}/health", timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize("kind", ["sandbox", "receiver"])
@pytest.mark.parametrize("label", list(RAW_REQUESTS))
def test_broken_http_gets_no_5xx_and_the_server_survives(servers, kind, label):
    host, port, path, server = servers[kind]
    status = _exchange(host, port, RAW_REQUESTS[label], path)
    assert status < 500, f"{kind} answered {status} to {label}"
    _still_serving(kind, server)


@pytest.mark.parametrize("kind", ["sandbox", "receiver"])
def test_clients_vanishing_mid_body_do_not_hurt_the_server(servers, kind):
    host, port, path, server = servers[kind]
    for _ in range(20):
        _vanishing_client(host, port, path)
    _still_serving(kind, server)
    if kind == "receiver":
        assert len(server.events) == 0
