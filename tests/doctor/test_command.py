"""``novita-notebook doctor`` (doctor.main): key and URL from the environment like the client,
the report on stdout, exit 0 when all is verified and as assumed, 1 when something differs,
2 on bad input, 3 when nothing differs but something could not be verified.
"""

from __future__ import annotations

from doctor_helpers import make_instances, verifiable_account

from novita_notebook.doctor import main
from novita_notebook.sandbox import Sandbox


def test_default_sandbox_exits_zero_and_says_zero_based(monkeypatch, capsys, sandbox):
    verifiable_account(sandbox)
    monkeypatch.setenv("NOVITA_API_KEY", sandbox.api_key)
    monkeypatch.setenv("NOVITA_API_URL", sandbox.url)
    assert main(["--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "instances: 0-based" in out and sandbox.api_key not in out
    assert "everything as the client assumes" in out


def test_an_account_with_nothing_to_look_at_exits_three(monkeypatch, capsys, sandbox):
    monkeypatch.setenv("NOVITA_API_KEY", sandbox.api_key)
    assert main(["--api-url", sandbox.url]) == 3
    out = capsys.readouterr().out
    assert "nothing differs, but not verified: " in out
    assert "metrics" in out and "spot fields" in out and "unverified" in out


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
