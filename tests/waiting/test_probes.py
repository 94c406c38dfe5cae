"""Readiness probes against a real loopback HTTP server: status codes, refused connections,
missing endpoints, and the reachable condition (components + probe)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.models import Instance, PortMapping
from novita_notebook.waiting.probes import HttpProbe, components_running, endpoint_url, is_reachable


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        code = int(self.path.strip("/").split("/")[0] or 200)
        self.server.hits.append((self.path, dict(self.headers)))
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def _shared_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def app_server(_shared_server):
    """A loopback app whose first path segment is the status code to answer."""
    _shared_server.hits.clear()
    return _shared_server, f"http://127.0.0.1:{_shared_server.server_address[1]}"


def _instance(*ports: PortMapping, status: str = "running", **kw) -> Instance:
    return Instance(id="inst-1", name="probe-me", status=status, port_mappings=ports, **kw)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("code", "ready"), [(200, True), (302, True), (404, True), (500, False), (502, False)]
)
def test_http_probe_ready_below_500(app_server, code, ready):
    server, base = app_server
    probe = HttpProbe(timeout=2.0)
    assert probe(_instance(PortMapping(8888, "http", f"{base}/{code}/"))) is ready
    assert len(server.hits) == 1  # redirects are not followed
    if not ready:
        assert str(code) in probe.last_reason and "8888" in probe.last_reason
    else:
        assert probe.last_reason is None


def test_every_http_port_must_answer(app_server):
    _, base = app_server
    probe = HttpProbe()
    good = PortMapping(8888, "http", f"{base}/200/")
    bad = PortMapping(7860, "http", f"{base}/503/")
    assert probe(_instance(good, bad)) is False
    assert "7860" in probe.last_reason


def test_probe_headers_never_carry_credentials(app_server):
    server, base = app_server
    HttpProbe()(_instance(PortMapping(8888, "http", f"{base}/200/")))
    headers = {k.lower() for k in server.hits[0][1]}
    assert "authorization" not in headers
    assert "x-health-check" in headers


def test_refused_connection_and_missing_endpoint_are_not_ready():
    probe = HttpProbe(timeout=1.0)
    refused = PortMapping(8888, "http", f"http://127.0.0.1:{_closed_port()}/")
    assert probe(_instance(refused)) is False
    assert "ConnectionError" in probe.last_reason
    assert probe(_instance(PortMapping(8888, "http", None))) is False
    assert "no endpoint" in probe.last_reason


def test_no_http_port_means_nothing_to_probe():
    tcp_only = PortMapping(22, "tcp", "127.0.0.1:40022")
    assert HttpProbe()(_instance(tcp_only)) is True
    assert HttpProbe()(_instance()) is True


def test_endpoint_without_scheme_is_probed_over_http():
    assert endpoint_url("example.test:8888/x") == "http://example.test:8888/x"
    assert endpoint_url("https://example.test/") == "https://example.test/"


def test_components_and_reachable_condition():
    calls = []

    def probe(instance):
        calls.append(instance.id)
        return True

    ssh = {"ssh_command": "ssh root@127.0.0.1 -p 30001"}
    jupyter = {"jupyter_url": "http://127.0.0.1:1/_sandbox/proxy/x/8888/"}
    assert components_running(_instance(ssh_running=None, jupyter_running=None))
    assert not components_running(_instance(ssh_running=True, jupyter_running=False, **jupyter))
    # No Jupyter port: the API still says isRunning false, which must not block readiness.
    assert components_running(_instance(ssh_running=True, jupyter_running=False, **ssh))
    assert is_reachable(_instance(ssh_running=True, jupyter_running=True, **ssh), probe)
    # Not running, or a component down: the probe is not even asked.
    assert not is_reachable(_instance(status="starting"), probe)
    assert not is_reachable(_instance(ssh_running=False, **ssh), probe)
    assert len(calls) == 1


@pytest.mark.parametrize("timeout", [0, -1, "2", True])
def test_bad_probe_timeout_names_the_field(timeout):
    with pytest.raises(ValidationError) as info:
        HttpProbe(timeout=timeout)
    assert info.value.field == "timeout"
