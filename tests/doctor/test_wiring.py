"""The doctor's three doors: ``Novita().doctor()``, ``%novita doctor`` and
``novita-notebook doctor``, each against a sandbox under both paging bases."""

from __future__ import annotations

import pytest
from doctor_helpers import make_instances, verifiable_account

from novita_notebook import Novita
from novita_notebook.cli import USAGE
from novita_notebook.cli import main as cli_main
from novita_notebook.doctor import DoctorReport
from novita_notebook.sandbox import Sandbox


def test_client_doctor_on_the_default_sandbox_reads_zero_based(client, sandbox):
    make_instances(sandbox, ["doc-a", "doc-b"])
    sandbox.clear_requests()
    report = client.doctor(timeout=5)
    assert isinstance(report, DoctorReport) and report.ok, report.text()
    paging = report.line("paging base")
    assert paging.status == "ok" and "0-based" in paging.detail
    assert report.bug_report() == ""
    assert {r["method"] for r in sandbox.requests()} == {"GET"}  # read-only
    assert sandbox.api_key not in report.text() + repr(report) + report._repr_html_()


@pytest.mark.parametrize("not_found", [404, 400])
def test_client_doctor_reports_a_one_based_sandbox(not_found):
    with Sandbox(speed=300, seed=7, page_base=1, not_found_status=not_found) as server:
        make_instances(server, ["doc-a", "doc-b"])
        with Novita(api_key=server.api_key, api_url=server.url) as novita:
            report = novita.doctor()
    assert not report.ok
    paging = report.line("paging base")
    assert paging.status == "differs" and "1-based" in paging.detail
    assert report.line("not-found status").status == ("ok" if not_found == 404 else "differs")
    pasted = report.bug_report()
    assert "1-based" in pasted and server.api_key not in pasted


def test_doctor_validates_before_any_call(client, sandbox):
    sandbox.clear_requests()
    with pytest.raises(Exception, match="timeout"):
        client.doctor(timeout=0)
    assert sandbox.requests() == []


def test_cli_has_a_doctor_command(monkeypatch, capsys, sandbox):
    assert "doctor" in USAGE
    verifiable_account(sandbox)
    monkeypatch.setenv("NOVITA_API_KEY", sandbox.api_key)
    assert cli_main(["doctor", "--api-url", sandbox.url, "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "0-based" in out and sandbox.api_key not in out
    sandbox.configure(page_base=1)
    assert cli_main(["doctor", "--api-url", sandbox.url]) == 1
    assert "1-based" in capsys.readouterr().out


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    from novita_notebook.notebook.magics import get_magics

    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("novita_notebook")  # no-op when already loaded
    magics = get_magics(ip)
    yield ip, magics
    magics.client = None


@pytest.mark.parametrize("base", [0, 1])
def test_magic_doctor_shows_the_paging_base(shell, base):
    ip, magics = shell
    with Sandbox(speed=300, seed=7, page_base=base) as server:
        make_instances(server, ["mag-a", "mag-b"])
        with Novita(api_key=server.api_key, api_url=server.url) as novita:
            magics.client = novita
            report = ip.run_line_magic("novita", "doctor --timeout 5")
    assert isinstance(report, DoctorReport)
    assert f"{base}-based" in report.line("paging base").detail
    assert "<table" in report._repr_html_()
