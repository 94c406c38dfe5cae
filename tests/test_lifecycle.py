"""Lifecycle POSTs are resent only after a read shows they did not take effect: an answer lost
after the API acted never restarts twice nor turns a stop that worked into an error; one lost
before it acted is resent; when the read cannot tell, nothing is resent and the error says so.
"""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.errors import NovitaError
from novita_notebook.lifecycle import took_effect
from novita_notebook.sandbox import Sandbox
from novita_notebook.sandbox.faults import Decision
from novita_notebook.sandbox.validate import ApiError


def _posts(sandbox, action: str) -> int:
    return sum(1 for r in sandbox.requests() if r["path"].endswith(f"/gpu/instance/{action}"))


@pytest.fixture
def running():
    """A sandbox where repeated actions act again (the other answer to the guess), a fast
    client and one running instance."""
    with Sandbox(speed=300, seed=7, switches={"repeatActions": True}) as sb:
        novita = Novita(api_key=sb.api_key, api_url=sb.url, retry_backoff=0.01, timeout=(2, 2))
        inst = novita.create("resend", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
        yield sb, novita, inst
        novita.close()


def test_a_restart_whose_answer_is_lost_restarts_once(running):
    sb, novita, inst = running
    sb.set_faults(ambiguous_action_rate=1.0)  # the restart lands, its answer never comes
    novita.restart(inst.id)
    sb.clear_faults()
    assert sb.world.instances[inst.id].restarts == 1
    assert _posts(sb, "restart") == 1


def test_a_stop_whose_answer_is_lost_is_not_an_error():
    with Sandbox(speed=300, seed=7) as sb:
        novita = Novita(api_key=sb.api_key, api_url=sb.url, retry_backoff=0.01)
        try:
            inst = novita.create("lost-stop", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
            sb.set_faults(ambiguous_action_rate=1.0)
            stopped = novita.stop(inst.id)  # the old client resent it: "invalid state change"
            sb.clear_faults()
            assert stopped.status in ("toStop", "stopping", "exited")
            assert _posts(sb, "stop") == 1
        finally:
            novita.close()


def test_a_restart_lost_before_it_landed_is_resent(running, monkeypatch):
    sb, novita, inst = running
    original = sb.faults.decide
    dropped = []

    def drop_first_restart(is_create, now=None, *, is_action=False):
        if is_action and not dropped:
            dropped.append(True)
            return Decision(drop=True)  # the connection closes before the sandbox acts
        return original(is_create, now, is_action=is_action)

    monkeypatch.setattr(sb.faults, "decide", drop_first_restart)
    novita.restart(inst.id)
    assert sb.world.instances[inst.id].restarts == 1 and _posts(sb, "restart") == 2


def test_when_the_read_cannot_tell_nothing_is_resent(running, monkeypatch):
    sb, novita, inst = running
    original = sb.faults.decide
    broken = []

    def fail_from_the_restart_on(is_create, now=None, *, is_action=False):
        if is_action or broken:  # the restart and every read after it answer 500
            broken.append(True)
            return Decision(error=ApiError("UNKNOWN", "internal server error"))
        return original(is_create, now, is_action=is_action)

    monkeypatch.setattr(sb.faults, "decide", fail_from_the_restart_on)
    with pytest.raises(NovitaError) as info:
        novita.api.restart_instance(inst.id)
    monkeypatch.setattr(sb.faults, "decide", original)
    assert _posts(sb, "restart") == 1
    assert "was not sent again" in (info.value.hint or "")


def test_took_effect_reads_status_and_start_time():
    before = {"status": "running", "lastStartedAt": "1764000000"}
    later = {"status": "running", "lastStartedAt": "1764000060"}
    assert took_effect("restart", {"status": "restarting"}, before) is True
    assert took_effect("restart", later, before) is True
    assert took_effect("restart", before, before) is False
    assert took_effect("restart", {"status": "running"}, before) is None  # cannot tell
    assert took_effect("restart", later, None) is None
    assert took_effect("stop", {"status": "exited"}) is True
    assert took_effect("stop", {"status": "running"}) is False
    assert took_effect("delete", None) is True  # gone
    assert took_effect("start", {"status": "exited"}) is False
