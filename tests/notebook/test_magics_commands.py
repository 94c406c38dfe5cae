"""What a newcomer types into %novita, through a real IPython shell on the sandbox: comments on
a magic line, the --stop-after 18:00Z of the help, volumes, batches, a classroom, filtered
templates and mine, lifecycle verbs that say whether anything was sent, and errors that name
magics rather than Python calls."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from IPython.core.error import UsageError

from novita_notebook.notebook.parser import strip_comment


def run(ip, line):
    return ip.run_line_magic("novita", line)


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("sandbox start  # offline cloud", "sandbox start"),
        ("# only a comment", ""),
        ('create a --envs "A=1 # not a comment"', 'create a --envs "A=1 # not a comment"'),
        ("create a --envs 'B=2#3'  # but this is", "create a --envs 'B=2#3'"),
        ("create a --envs A=x#1", "create a --envs A=x#1"),
        (r"create a --envs A=\ #1", r"create a --envs A=\ #1"),
    ],
)
def test_an_unquoted_trailing_comment_is_dropped(line, kept):
    assert strip_comment(line) == kept


def test_a_magic_line_with_a_comment_runs(ip, capsys):
    status = run(ip, "sandbox status   # is one running?")
    assert status["running"] is False
    assert "No sandbox in this session." in capsys.readouterr().out
    frame = run(ip, 'products --gpu "RTX 4090"  # the cheapest first')
    assert len(frame) > 0


def test_stop_after_a_time_of_day_as_the_help_shows(ip, client):
    assert "18:00Z" in run_help(ip, "create")
    made = run(ip, 'create late-1 --gpu "RTX 4090" --stop-after 18:00Z')
    rules = client.guards.store.get(made.id).rules
    assert rules.stop_after.hour == 18 and rules.stop_after.minute == 0
    assert rules.stop_after > datetime.now(UTC)


def test_every_guard_rule_flag_reaches_create(ip, client):
    made = run(ip, 'create ruled-1 --gpu "RTX 4090" --budget-total 40 --idle-stop "1 hour"')
    rules = client.guards.store.get(made.id).rules
    assert rules.budget_total == 40.0 and rules.idle_stop.total_seconds() == 3600


def run_help(ip, command):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(ip, f"{command} --help")
    return out.getvalue()


def test_volumes_are_listed_made_and_deleted_from_the_magic(ip, capsys):
    assert run(ip, "volumes") is None
    assert "%novita volumes create NAME" in capsys.readouterr().out
    made = run(ip, "volumes create class-data --region EU-DE-01 --size 20")
    assert made.name == "class-data" and made.size_gb == 20
    assert list(run(ip, "volumes")["name"]) == ["class-data"]
    gone = run(ip, "volumes delete class-data")
    assert gone.id == made.id
    assert "deleted" in capsys.readouterr().out
    with pytest.raises(UsageError, match="invalid choice: 'resize'"):
        run(ip, "volumes resize class-data")


def test_a_volume_without_its_size_names_the_flag(ip, capsys):
    assert run(ip, "volumes create v-1 --region EU-DE-01") is None
    assert "give --size" in capsys.readouterr().err


def test_a_batch_from_the_magic(ip, sandbox):
    frame = run(ip, 'batch 2 --gpu "RTX 4090" --prefix lab')
    assert sorted(frame["name"]) == ["lab-1", "lab-2"]
    assert frame["error"].isna().all()


def test_a_classroom_from_the_magic(ip, client):
    handout = run(ip, 'classroom 2 --gpu "RTX 4090" --prefix seat --stop-after 2h')
    assert [seat.name for seat in handout] == ["seat-1", "seat-2"]
    assert all(seat.error is None for seat in handout)
    assert handout.deadline is not None


def test_templates_and_mine_take_filters(ip, client):
    official = run(ip, "templates --channel official")
    assert len(official) > 0
    named = run(ip, f"templates --name '{official['name'].iloc[0]}'")
    assert set(named["name"]) == {official["name"].iloc[0]}
    run(ip, 'create mine-1 --gpu "RTX 4090" --wait')
    run(ip, 'create mine-2 --gpu "RTX 4090"')
    assert list(run(ip, "mine --name mine-1")["name"]) == ["mine-1"]
    assert list(run(ip, "mine --status running")["name"]) == ["mine-1"]
    assert "matches" in repr(run(ip, "mine --name nothing-like-it"))


def test_delete_by_name_twice_is_idempotent(ip, client, capsys):
    run(ip, 'create twice-1 --gpu "RTX 4090"')
    capsys.readouterr()
    run(ip, "delete twice-1")
    assert "Delete requested for twice-1" in capsys.readouterr().out
    again = run(ip, "delete twice-1")
    out, err = capsys.readouterr()
    assert again.status == "removed"
    assert "already deleted; nothing was sent" in out and "requested" not in out
    assert "NotFoundError" not in err


def test_stop_and_start_say_requested_only_when_they_sent_one(ip, client, sandbox, capsys):
    run(ip, 'create verb-1 --gpu "RTX 4090" --wait')
    run(ip, "stop verb-1")
    assert "Stop requested for verb-1" in capsys.readouterr().out
    client.wait("verb-1", until="exited")
    sandbox.clear_requests()
    run(ip, "stop verb-1")
    out = capsys.readouterr().out
    assert "requested" not in out and "is already stopped; nothing was sent" in out
    assert not [r for r in sandbox.requests() if r["path"].endswith("/stop")]


def test_errors_point_to_magics_not_python_calls(ip, capsys):
    assert run(ip, "stop no-such-box") is None
    err = capsys.readouterr().err
    assert "%novita instances lists them" in err and "client.instances()" not in err
    assert run(ip, "create x-1 --gpu NOPE-9000") is None
    err = capsys.readouterr().err
    assert "%novita products" in err and "Novita.products()" not in err
