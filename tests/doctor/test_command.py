"""``novita-notebook doctor`` (doctor.main): key and URL from the environment like the client,
the report on stdout, exit 0 when all is as assumed, 1 when something differs, 2 on bad input.
"""

from __future__ import annotations

from doctor_helpers import make_instances

from novita_notebook.doctor import main
from novita_notebook.sandbox import Sandbox


def test_default_sandbox_exits_zero_and_says_zero_based(monkeypatch, capsys, sandbox):
    make_instances(sandbox, ["cli-a", "cli-b"])
    monkeypatch.setenv("NOVITA_API_KEY", sandbox.api_key)
    monkeypatch.setenv("NOVITA_API_URL", sandbox.url)
    assert main(["--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "instances: 0-based" in out and sandbox.api_key not in out


def test_one_based_sandbox_exits_one_and_says_one_based(monkeypatch, capsys):
    with Sandbox(speed=300, seed=7, page_base=1) as server:
        make_instances(server, ["cli-a", "cli-b"])
        monkeypatch.setenv("NOVITA_API_KEY", server.api_key)
        assert main(["--api-url", server.url]) == 1
        out = capsys.readouterr().out
        assert "1-based with 0 also the first page" in out and "bug_report()" in out
        assert main(["--api-url", server.url, "--bug-report"]) == 1
        report = capsys.readouterr().out
    assert report.startswith("novita-notebook doctor report")
    assert server.api_key not in out + report


def test_a_rejected_key_exits_one_with_the_reason(monkeypatch, capsys, sandbox):
    monkeypatch.setenv("NOVITA_API_KEY", "sk_not_the_sandbox_key")
    assert main(["--api-url", sandbox.url]) == 1
    out = capsys.readouterr().out
    assert "rejected (HTTP 401" in out and "sk_not_the_sandbox_key" not in out


def test_a_missing_key_exits_two_before_any_call(capsys, sandbox):
    assert main(["--api-url", sandbox.url]) == 2
    assert "api_key" in capsys.readouterr().err
    assert sandbox.log.entries() == []
