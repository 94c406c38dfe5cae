"""The doctor's output is safe to paste: the key never appears in text, HTML, repr or bug
report, ids and names are anonymised, and bad arguments fail before any call.
"""

from __future__ import annotations

import pytest
import requests
from doctor_helpers import make_instances

from novita_notebook.doctor import DoctorReport, Line, run_doctor
from novita_notebook.doctor.probe import Probe
from novita_notebook.doctor.report import DIFFERS, OK
from novita_notebook.errors import ValidationError
from novita_notebook.sandbox import Sandbox

SECRET = "sk_doctor_secret_3f9c1a7e5b"


def everything_shown(report: DoctorReport) -> str:
    return "\n".join(
        [report.text(), repr(report), str(report), report._repr_html_(), report.bug_report()]
        + [repr(line) for line in report.lines]
    )


@pytest.mark.parametrize("key", [SECRET, SECRET + "_wrong"])
def test_the_key_never_appears_in_any_output(key):
    with Sandbox(speed=300, seed=7, api_key=SECRET, page_base=1) as server:
        make_instances(server, ["doctor-secret-check"])
        report = run_doctor(server.api_url, key, timeout=5)
    assert not report.ok  # 1-based (good key) or rejected (bad key): a bug report is written
    shown = everything_shown(report)
    assert report.bug_report() and SECRET not in shown and SECRET[3:] not in shown


def test_a_key_echoed_in_an_error_message_is_scrubbed(monkeypatch, sandbox):
    """A server that echoes the key in a connection error (forced: the sandbox never does)."""

    def failing(self, url, **kwargs):
        raise requests.ConnectionError(f"cannot connect to {url} as Bearer {SECRET}")

    monkeypatch.setattr(requests.Session, "get", failing)
    report = run_doctor(sandbox.api_url, SECRET, timeout=5)
    assert report.lines[0].status == "failed" and "***" in report.lines[0].detail
    assert SECRET not in everything_shown(report)


def test_the_probe_repr_hides_the_key(sandbox):
    probe = Probe(sandbox.api_url, SECRET, 5)
    try:
        assert SECRET not in repr(probe) and SECRET not in str(vars(probe).get("base"))
    finally:
        probe.close()


def test_instance_ids_and_names_never_reach_the_bug_report():
    with Sandbox(speed=300, seed=7, page_base=1, not_found_status=400) as server:
        ids = make_instances(server, ["alice-private-run", "bob-private-run"])
        report = run_doctor(server.api_url, server.api_key, timeout=5)
    text = report.bug_report()
    assert "paging base: differs" in text
    for value in [*ids, "alice-private-run", "bob-private-run"]:
        assert value not in everything_shown(report)


def test_bug_report_anonymises_a_private_value_that_slipped_into_a_detail():
    report = DoctorReport(
        "https://api.example",
        [Line("fields", DIFFERS, "GET /x: byId.inst-7781ab.state")],
        calls=3,
        private=["inst-7781ab"],
    )
    text = report.bug_report()
    assert "inst-7781ab" not in text and "byId.<anon>.state" in text
    assert text.startswith("novita-notebook doctor report\n")


def test_text_is_aligned_and_html_is_an_escaped_table():
    report = DoctorReport(
        "https://api.example",
        [Line("key", OK, "accepted"), Line("not-found status", DIFFERS, "<b>HTTP 400</b>")],
        calls=2,
    )
    rows = report.text().splitlines()[1:3]
    assert rows[0].index("ok") == rows[1].index("differs")
    html = report._repr_html_()
    assert "<table " in html and "&lt;b&gt;HTTP 400&lt;/b&gt;" in html and "<b>HTTP" not in html
    assert "something differs" in html and not report.ok


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"api_url": "api.novita.ai", "api_key": "sk_x"}, "api_url"),
        ({"api_url": "http://api.novita.ai", "api_key": "sk_x"}, "api_url"),
        ({"api_url": 42, "api_key": "sk_x"}, "api_url"),
        ({"api_url": "https://api.novita.ai", "api_key": ""}, "api_key"),
        ({"api_url": "https://api.novita.ai", "api_key": "sk x"}, "api_key"),
        ({"api_url": "https://api.novita.ai", "api_key": "sk_x", "timeout": 0}, "timeout"),
    ],
)
def test_bad_arguments_fail_before_any_call(monkeypatch, kwargs, field):
    def no_call(*args, **kw):
        raise AssertionError("no HTTP call may be made")

    monkeypatch.setattr(requests.Session, "get", no_call)
    with pytest.raises(ValidationError) as caught:
        run_doctor(**kwargs)
    assert caught.value.field == field and field in str(caught.value)
    assert "sk_x" not in str(caught.value)
