"""Answers that are no answer of the API fail the doctor, never pass it: an HTML page, cut-off
JSON, a redirect to another host; a key refused with the documented 400; a check meeting a
broken answer midway. The verdicts and exit codes; and the cost stays linear in the catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from doctor_helpers import verifiable_account

from novita_notebook.doctor import main, run_doctor
from novita_notebook.doctor.probe import Probe, Reply
from novita_notebook.doctor.report import FAILED, OK, UNVERIFIED
from novita_notebook.sandbox import Sandbox

Answer = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serving(answer: Answer) -> Iterator[str]:
    """A loopback server answering every GET with ``answer``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            answer(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def body(status: int, text: str, kind: str) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        data = text.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return answer


HTML = "<html><body><h1>Welcome to our gateway</h1>Sign in to continue</body></html>"
TRUNCATED = '{"data": [{"id": "as-sgp-2", "name": "AS-SGP-02", "availableGpuTy'


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (body(200, HTML, "text/html"), "not JSON (text/html"),
        (body(200, TRUNCATED, "application/json"), "cut-off or broken JSON"),
        (body(200, "", "application/json"), "an empty answer"),
        (body(200, '{"hello": "world"}', "application/json"), "without a 'data' list"),
    ],
    ids=["html", "truncated", "empty", "other-json"],
)
def test_an_answer_that_is_not_the_apis_fails_at_the_key(answer, said, monkeypatch, capsys):
    with serving(answer) as url:
        report = run_doctor(url, "sk_some_key_1234", timeout=5)
        monkeypatch.setenv("NOVITA_API_KEY", "sk_some_key_1234")
        assert main(["--api-url", url]) == 1
    assert [(line.name, line.status) for line in report.lines] == [("key", FAILED)]
    assert said in report.lines[0].detail and "Nothing else was checked" in report.lines[0].detail
    assert report.exit_code == 1 and "key ok" not in capsys.readouterr().out


def test_a_redirect_to_another_host_is_not_followed(sandbox):
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", sandbox.api_url + handler.path.split("/v1", 1)[-1])
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with serving(redirect) as url:
        report = run_doctor(url, sandbox.api_key, timeout=5)
    line = report.lines[0]
    assert (line.name, line.status) == ("key", FAILED)
    assert "redirected to http://127.0.0.1:" in line.detail and "another host" in line.detail
    assert sandbox.requests() == []  # the other host never saw a request, nor the key


def test_a_redirect_on_the_apis_own_host_is_followed():
    """A gateway that moves the API elsewhere on the same host and port is still the API."""

    def moved(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.startswith("/moved/"):
            body(200, '{"data": []}', "application/json")(handler)
            return
        handler.send_response(301)
        handler.send_header("Location", "/moved" + handler.path)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with serving(moved) as url:
        report = run_doctor(url, "sk_some_key_1234", timeout=5)
    assert report.line("key").status == OK, report.text()


def test_a_key_refused_with_the_documented_400_is_a_key_failure():
    with Sandbox(speed=300, seed=7, switches={"badKeyStatus": 400}) as server:
        report = run_doctor(server.api_url, "sk_wrong_key_for_doctor", timeout=5)
    assert [(line.name, line.status) for line in report.lines] == [("key", FAILED)]
    assert "rejected (HTTP 400 INVALID_USER_TOKEN)" in report.lines[0].detail


def test_a_check_that_meets_a_broken_answer_fails_its_lines(monkeypatch, sandbox):
    verifiable_account(sandbox)
    original = Probe._get_once

    def html_for_products(self, path, params, **kw):
        if path == "/products":
            return Reply(200, None, 0.001, problem="not JSON (text/html, 80 bytes)")
        return original(self, path, params, **kw)

    monkeypatch.setattr(Probe, "_get_once", html_for_products)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    for name in ("catalog shape",):
        line = report.line(name)
        assert line.status == FAILED and "GET /products: not JSON" in line.detail
    assert report.line("paging base").status == OK  # the other checks still ran
    assert report.line("endpoints").status == FAILED
    assert report.exit_code == 1


def test_verdicts_and_exit_codes(sandbox):
    empty = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    assert empty.ok and not empty.verified and empty.exit_code == 3
    names = {line.name for line in empty.unverified}
    assert {"metrics", "spot fields", "node", "timestamps", "instance statuses"} <= names
    assert "registry passwords" not in names  # unverified, but nothing relies on it
    assert empty.bug_report() == ""  # nothing differs: nothing to report as a bug
    assert "nothing differs, but not verified: " in empty.text()
    assert all(line.status != OK for line in empty.unverified)
    verifiable_account(sandbox)
    full = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    assert full.verified and full.exit_code == 0, full.text()
    assert full.line("registry passwords").status == UNVERIFIED


@pytest.mark.timeout(60)  # linear: a few seconds; the quadratic lookups took minutes
def test_the_cost_stays_linear_at_60k_catalog_items(monkeypatch, sandbox):
    junk = [
        {"id": f"junk-{i}", "name": f"X {i}", "regions": [f"R-{i} (Nowhere)"], f"odd{i}": 1}
        for i in range(60_000)
    ]
    original = Probe._get_once

    def with_junk(self, path, params, **kw):
        reply = original(self, path, params, **kw)
        if path == "/products" and reply.status == 200 and not (params or {}).get("clusterId"):
            reply.data = {"data": reply.data["data"] + junk}
        return reply

    monkeypatch.setattr(Probe, "_get_once", with_junk)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=30)
    fields = report.line("fields")
    assert fields.detail.count("data[].odd") == 60_000  # every junk field is one finding
    assert report.line("region join").status == OK  # the junk labels join no cluster
