"""The doctor against the sandbox over real HTTP: the default sandbox passes, each switch
(1-based paging, documented 400 not-found) is reported, a bad key stops with one clear line.
"""

from __future__ import annotations

import socket

import pytest
import requests
from doctor_helpers import make_instances, verifiable_account

from novita_notebook.doctor import run_doctor
from novita_notebook.doctor.report import DIFFERS, FAILED, OK, UNVERIFIED
from novita_notebook.sandbox import Sandbox

SPEED = 300.0


def statuses(report) -> dict[str, str]:
    return {line.name: line.status for line in report.lines}


def test_default_sandbox_passes_every_check_and_reads_as_zero_based(sandbox):
    verifiable_account(sandbox)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    paging = report.line("paging base")
    assert paging.status == OK and "instances: 0-based" in paging.detail
    # The sandbox is built to the same assumptions: nothing may differ, nothing stays
    # unverified except the registry line (no auth saved; nothing the package relies on).
    assert {n: s for n, s in statuses(report).items() if s != OK} == {
        "registry passwords": UNVERIFIED
    }
    assert report.ok and report.verified and report.exit_code == 0
    assert report.bug_report() == ""
    for name in ("region join", "metrics", "spot fields", "instance statuses", "bad-key status"):
        assert report.line(name).status == OK, report.text()
    assert "not-found status" in report.text() and "404" in report.line("not-found status").detail


def test_one_based_sandbox_is_reported_as_one_based(sandbox):
    with Sandbox(speed=SPEED, seed=7, page_base=1) as one_based:
        make_instances(one_based, ["doctor-a", "doctor-b", "doctor-c"])
        report = run_doctor(one_based.api_url, one_based.api_key, timeout=5)
    paging = report.line("paging base")
    assert paging.status == DIFFERS
    assert "1-based with 0 also the first page" in paging.detail
    assert not report.ok
    text = report.bug_report()
    assert "paging base: differs: instances: 1-based" in text
    # Short: only what differs in full, the rest by name.
    assert "- as assumed: key, latency, catalog shape," in text and "accepted (GET" not in text


@pytest.mark.parametrize("page_base, expected", [(0, OK), (1, DIFFERS)])
def test_paging_base_is_read_from_templates_when_there_is_no_instance(page_base, expected):
    with Sandbox(speed=SPEED, seed=7, page_base=page_base) as server:
        report = run_doctor(server.api_url, server.api_key, timeout=5)
    paging = report.line("paging base")
    assert paging.status == expected and paging.detail.startswith("templates: ")
    assert f"{page_base}-based" in paging.detail
    # Without an instance the instance-only shapes cannot be told, and the line says how.
    assert report.line("node").status == UNVERIFIED
    assert "create one" in report.line("node").detail


def test_documented_400_not_found_is_reported(sandbox):
    with Sandbox(speed=SPEED, seed=7, not_found_status=400) as server:
        report = run_doctor(server.api_url, server.api_key, timeout=5)
    line = report.line("not-found status")
    assert line.status == DIFFERS and "HTTP 400 RESOURCE_NOT_FOUND" in line.detail
    assert "not-found status: differs: " in report.bug_report()


def test_a_bad_key_gives_one_clear_line_and_nothing_else(sandbox):
    report = run_doctor(sandbox.api_url, "sk_wrong_key_for_doctor", timeout=5)
    assert [line.name for line in report.lines] == ["key"]
    line = report.lines[0]
    assert line.status == FAILED and "rejected (HTTP 401" in line.detail
    assert "NOVITA_API_KEY" in line.detail
    assert not report.ok and report.calls == 1


def test_an_unreachable_api_gives_one_failed_line():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = run_doctor(f"http://127.0.0.1:{port}", "sk_anything_at_all", timeout=2)
    assert [(line.name, line.status) for line in report.lines] == [("key", FAILED)]
    assert "did not answer" in report.lines[0].detail


def test_host_or_full_base_url_both_work(sandbox):
    short = run_doctor(sandbox.url, sandbox.api_key, timeout=5)
    full = run_doctor(sandbox.api_url + "/", sandbox.api_key, timeout=5)
    assert short.line("key").status == OK and full.line("key").status == OK
    assert short.api_host == full.api_host == sandbox.url


def test_the_doctor_only_reads(sandbox):
    make_instances(sandbox, ["doctor-a"])
    requests.delete(sandbox.url + "/_sandbox/requests", timeout=5)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    log = requests.get(sandbox.url + "/_sandbox/requests", timeout=5).json()["requests"]
    assert log and {entry["method"] for entry in log} == {"GET"}
    assert len(log) == report.calls


def test_a_proxy_in_the_environment_is_not_used_for_loopback(monkeypatch, sandbox):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    assert report.line("key").status == OK
