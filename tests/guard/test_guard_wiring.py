"""The guard as the client offers it, on the sandbox: rules at create (validated before any
request), guard/extend/unguard on running instances, user and session defaults, the
in-kernel guard acting after a warning, the status, and the process started by itself.
"""

from __future__ import annotations

import math
import os
import signal

import pytest
from tests.guard.polling import wait_for

from novita_notebook import Novita
from novita_notebook.errors import ValidationError
from novita_notebook.guard.events import event_text
from novita_notebook.guard.process import guard_status


@pytest.fixture
def quiet(monkeypatch):
    """No guard process: what the kernel does alone."""
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


@pytest.mark.parametrize(
    "rules, field",
    [
        ({"stop_after": "-5m"}, "stop_after"),
        ({"stop_after": "soon"}, "stop_after"),
        ({"idle_stop": "30m", "idle_threshold": math.nan}, "idle_threshold"),
        ({"budget": -1}, "budget_total"),
        ({"on_reclaim": "sometimes"}, "on_reclaim"),
        ({"guard": False, "stop_after": "1h"}, "guard"),
    ],
)
def test_bad_rules_fail_before_any_request(client, sandbox, quiet, rules, field):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create("bad-rules", gpu="RTX 3090", **rules)
    assert caught.value.field == field
    assert sandbox.requests() == []


def test_create_with_a_deadline_is_stopped_in_the_kernel_after_a_warning(
    sandbox, quiet, monkeypatch
):
    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=0.3)
    seen: list[tuple[str, dict]] = []
    client.guards.listeners.append(lambda event, data: seen.append((event, data)))
    try:
        inst = client.create("kernel-stop", gpu="RTX 3090", image="ubuntu:22.04",
                             stop_after=3, wait=True)  # fmt: skip
        other = client.create("not-guarded", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
        status = client.guard_status()
        assert not status["running"] and "autostart" in status["reason"]
        assert inst.id in status["rules"] and other.id not in status["rules"]
        assert "in-kernel guard: watching" in str(status)
        assert wait_for(lambda: any(e == "guard.stopped" for e, _ in seen), 10)
        assert [e for e, _ in seen] == ["guard.warning", "guard.stopped"]
        warning = event_text(*seen[0])
        assert "novita.extend('kernel-stop', '1h')" in warning
        assert "novita.unguard('kernel-stop', 'stop_after')" in warning
        assert client.api.get_instance(inst.id)["status"] in ("toStop", "stopping", "exited")
        assert client.api.get_instance(other.id)["status"] == "running"
        logged = client.guards.store.actions(inst.id)
        assert [a["action"] for a in logged] == ["warn", "stop"]
        assert all(a["reason"].startswith("stop_after deadline") for a in logged)
        assert logged[-1]["actor"].startswith("kernel pid")
    finally:
        client.close()


def test_guard_extend_and_unguard_a_running_instance(client, sandbox, quiet):
    inst = client.create("later-guarded", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    assert client.guard_status()["rules"] == {}
    with pytest.raises(ValidationError) as caught:
        client.guard(inst, stop_after="2h", idel_stop="30m")
    assert caught.value.field == "idel_stop"
    record = client.guard("later-guarded", stop_after="2h", idle_stop="30m")
    assert record.id == inst.id and record.rules.idle_stop.total_seconds() == 1800
    first = record.rules.stop_after
    extended = client.extend("later-guarded", "1h")
    assert (extended.rules.stop_after - first).total_seconds() == 3600
    assert extended.rules.idle_stop is not None
    left = client.unguard(inst.id, "idle")
    assert left is not None and left.rules.idle_stop is None and left.rules.stop_after
    assert client.unguard("later-guarded") is None
    assert client.guard_status()["rules"] == {}
    with pytest.raises(ValidationError):
        client.extend("later-guarded", "1h")


def test_user_and_session_defaults(client, sandbox, quiet, monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_STOP_AFTER", "4h")
    client.guards.session_defaults = {"idle_stop": "30m"}
    inst = client.create("defaults", gpu="RTX 3090", image="ubuntu:22.04", budget=3)
    rules = client.guards.store.get(inst.id).rules
    assert rules.stop_after is not None and rules.idle_stop.total_seconds() == 1800
    assert rules.budget_total == 3
    bare = client.create("no-guard", gpu="RTX 3090", image="ubuntu:22.04", guard=False)
    assert client.guards.store.get(bare.id) is None
    monkeypatch.setenv("NOVITA_GUARD_STOP_AFTER", "never")
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create("bad-default", gpu="RTX 3090")
    assert caught.value.field == "NOVITA_GUARD_STOP_AFTER" and sandbox.requests() == []


def test_the_first_guarded_create_starts_the_guard_process(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("NOVITA_GUARD_INTERVAL", "0.5")
    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=5)
    pid = None
    try:
        inst = client.create("autostarted", gpu="RTX 3090", image="ubuntu:22.04",
                             stop_after=60, wait=True)  # fmt: skip
        status = client.guard_status()
        pid = status.get("pid")
        assert status["running"] and client.guards.process["running"], status
        assert inst.id in status["rules"]
        # the key went through the child's environment only: never into the ledger dir
        home = os.environ["NOVITA_NOTEBOOK_HOME"]
        for name in os.listdir(home):
            with open(os.path.join(home, name), "rb") as file:
                assert sandbox.api_key.encode() not in file.read(), name
        assert wait_for(lambda: guard_status(client.config.api_url).get("ticks"), 5)
        # nothing left to guard: the process exits by itself
        client.unguard(inst)
        assert wait_for(lambda: not guard_status(client.config.api_url)["running"], 5)
        pid = None
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
        client.close()
