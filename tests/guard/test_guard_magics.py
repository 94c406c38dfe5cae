"""``%novita guard``, ``%novita extend``, ``%novita guard status`` and the session defaults
``%config NovitaMagics.guard_*``, on a real IPython shell bound to the sandbox.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_process(monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


@pytest.fixture
def reset_guard_traits(magics):
    yield
    for name in ("guard_stop_after", "guard_idle_stop", "guard_budget_total", "guard_on_reclaim"):
        setattr(magics, name, None)


def test_guard_extend_no_guard_and_status(ip, client, capsys):
    inst = client.create("magic-1", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    ip.run_line_magic("novita", "guard magic-1 --stop-after 2h --idle 30m --on-reclaim migrate")
    out = capsys.readouterr().out
    assert f"Guarding magic-1 ({inst.id})" in out and "idle stop after 30 min" in out
    first = client.guards.store.get(inst.id).rules.stop_after
    ip.run_line_magic("novita", "extend magic-1 1h")
    assert (client.guards.store.get(inst.id).rules.stop_after - first).total_seconds() == 3600
    ip.run_line_magic("novita", "guard status")
    out = capsys.readouterr().out
    assert "guard process: not running" in out and f"magic-1 ({inst.id})" in out
    assert "next action: warn magic-1" in out
    ip.run_line_magic("novita", "guard magic-1 --no-guard idle")
    assert client.guards.store.get(inst.id).rules.idle_stop is None
    ip.run_line_magic("novita", "guard magic-1 --no-guard")
    assert "no longer guarded" in capsys.readouterr().out
    assert client.guards.store.get(inst.id) is None


def test_a_bad_rule_names_its_flag_and_rule(ip, client):
    from IPython.core.error import UsageError

    client.create("magic-2", gpu="RTX 3090", image="ubuntu:22.04")
    with pytest.raises(UsageError, match="argument --idle-stop/--idle: must be a duration"):
        ip.run_line_magic("novita", "guard magic-2 --idle soon")


def test_session_defaults_reach_create(ip, client, magics, reset_guard_traits):
    from traitlets import TraitError

    ip.run_line_magic("config", "NovitaMagics.guard_stop_after = '3h'")
    ip.run_line_magic("config", "NovitaMagics.guard_on_reclaim = 'recreate'")
    with pytest.raises(TraitError):
        magics.guard_idle_stop = "whenever"
    inst = client.create("magic-3", gpu="RTX 3090", image="ubuntu:22.04")
    rules = client.guards.store.get(inst.id).rules
    assert rules.stop_after is not None and rules.on_reclaim == "recreate"


def test_create_takes_guard_options_and_no_guard(ip, client, reset_guard_traits):
    ip.run_line_magic("novita", "create magic-4 --gpu 3090 --image ubuntu:22.04 --stop-after 2h")
    first = client.instance("magic-4")
    assert client.guards.store.get(first.id).rules.stop_after is not None
    ip.run_line_magic("config", "NovitaMagics.guard_stop_after = '3h'")
    ip.run_line_magic("novita", "create magic-5 --gpu 3090 --image ubuntu:22.04 --no-guard")
    assert client.guards.store.get(client.instance("magic-5").id) is None
    ip.run_cell_magic("novita", "create", "name: magic-6\ngpu: 3090\nidle_stop: 30m\n")
    rules = client.guards.store.get(client.instance("magic-6").id).rules
    assert rules.idle_stop.total_seconds() == 1800 and rules.stop_after is not None
