"""Teaching mode: one call creates a class's guarded instances under one deadline and one
budget, and hands back a handout (name, Jupyter link, SSH command) as CSV and HTML.
"""

from __future__ import annotations

import csv
import io

import pytest

from novita_notebook.cli import main as cli_main
from novita_notebook.errors import ValidationError
from novita_notebook.teaching import Handout, Seat


@pytest.fixture(autouse=True)
def no_process(monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


def test_classroom_creates_guarded_seats_with_one_deadline(client, sandbox, tmp_path):
    handout = client.classroom(3, gpu="RTX 4090", prefix="student", stop_after="3h", budget=20)
    assert [s.name for s in handout] == ["student-1", "student-2", "student-3"]
    assert all(s.status == "running" and s.error is None for s in handout)
    assert all(s.jupyter_url and s.jupyter_url.startswith(sandbox.url) for s in handout)
    assert all(s.ssh_command.startswith("ssh root@") for s in handout)
    records = [client.guards.store.get(s.instance_id) for s in handout]
    assert len({r.rules.stop_after for r in records}) == 1
    assert handout.deadline == records[0].rules.stop_after
    assert all(r.rules.budget_total == 20 and r.price_per_hour for r in records)
    rows = list(csv.DictReader(io.StringIO(handout.to_csv(str(tmp_path / "class.csv")))))
    assert [r["name"] for r in rows] == ["student-1", "student-2", "student-3"]
    assert (tmp_path / "class.csv").read_text() == handout.to_csv()
    page = handout.to_html()
    assert page == handout._repr_html_() and page.count("<tr ") == 4
    assert "all stop at" in page and "budget $20.00 for the whole class" in page
    for text in (page, handout.to_csv(), repr(handout)):
        assert sandbox.api_key not in text


def test_bad_class_input_fails_before_any_request(client, sandbox):
    sandbox.clear_requests()
    for kwargs, field in (
        ({"n": 0}, "n"),
        ({"n": 2, "stop_after": "yesterday"}, "stop_after"),
        ({"n": 2, "budget": float("nan")}, "budget_total"),
        ({"n": 2, "stop_after": None}, "stop_after"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.classroom(gpu="RTX 4090", **kwargs)
        assert caught.value.field == field
    assert sandbox.requests() == []


def test_a_failed_seat_is_on_the_handout():
    handout = Handout([Seat("s-1", "id1", "running", "http://x/", "ssh root@x -p 1"),
                       Seat("s-2", error="no capacity")])  # fmt: skip
    assert len(handout.ok) == 1 and "1 failed" in handout.summary()
    assert "no capacity" in handout.to_html()
    assert handout.to_frame()["error"].isna().tolist() == [True, False]


def test_the_cli_guard_status(sandbox, monkeypatch, capsys):
    monkeypatch.setenv("NOVITA_API_KEY", sandbox.api_key)
    monkeypatch.setenv("NOVITA_API_URL", sandbox.url)
    assert cli_main(["guard", "--status"]) == 0
    out = capsys.readouterr().out
    assert '"running": false' in out and sandbox.api_key not in out
