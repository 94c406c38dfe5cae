"""Idle stop acts only on a unit it knows. No public source says whether the metrics ``value`` is
a percentage or a fraction; with fractions a busy GPU (0.88) would look idle against 5. The unit
is decided from evidence (a value above 1 proves percentages) or the user's word; while it is
unknown the idle rule warns and does not stop, and guard_status() says why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from novita_notebook.errors import RemoteError
from novita_notebook.guard.backend import HttpGuardBackend
from novita_notebook.guard.enforcer import Enforcer
from novita_notebook.guard.kernel import ClientGuardBackend
from novita_notebook.guard.rules import GuardRules

IMAGE = "ubuntu:22.04"


@pytest.fixture(autouse=True)
def no_guard_process(monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


def _guarded(client, sandbox, name: str, gpu_percent: float):
    inst = client.create(name, gpu="RTX 3090", image=IMAGE, wait=True, guard=False)
    sandbox.set_utilization(inst.id, gpu_percent)
    # the rule was set before the instance ran: its idle window is already over
    set_at = datetime.now(UTC) - timedelta(minutes=20)
    client.guards.store.set_rules(inst.id, GuardRules.parse(idle_stop="1m", now=set_at))
    return inst


def _ticks(client, sandbox, count: int = 3) -> list:
    backend = HttpGuardBackend(client.config.api_url, lambda: sandbox.api_key)
    enforcer = Enforcer(backend, client.guards.store, actor="guard test",
                        grace=timedelta(seconds=1))  # fmt: skip
    try:
        now = datetime.now(UTC) + timedelta(minutes=2)  # the idle window has passed
        for step in range(count):
            enforcer.tick(now + timedelta(seconds=2 * step))
    finally:
        backend.close()
    return list(backend.events)


def test_fractions_never_make_a_busy_gpu_look_idle_and_the_status_says_why(
    client, sandbox, monkeypatch
):
    sandbox.configure(metrics_scale=1)  # the API answers fractions: busy is 0.88

    def no_nvidia_smi(self, instance_id):  # an image without it, or SSH refused
        raise RemoteError("nvidia-smi: not found", instance_id=instance_id)

    monkeypatch.setattr(HttpGuardBackend, "gpu_utilisation", no_nvidia_smi)
    monkeypatch.setattr(ClientGuardBackend, "gpu_utilisation", no_nvidia_smi)
    busy = _guarded(client, sandbox, "busy-fractions", 88.0)
    events = _ticks(client, sandbox)
    assert sandbox.world.instances[busy.id].status == "running"
    assert not [r for r in sandbox.requests() if r["path"].endswith("/gpu/instance/stop")]
    cautions = [e for e in events if e["event"] == "guard.warning"]
    assert len(cautions) == 1 and "unit of GPU utilisation is not known" in cautions[0]["reason"]
    status = client.guard_status()
    assert status["metrics_unit"] == "unknown"
    assert any("idle rule not acting" in note and busy.id in note for note in status["notes"])
    assert "not known yet" in str(status)
    html = status._repr_html_()  # what a notebook shows
    assert "metrics unit" in html and "idle rule not acting" in html


def test_an_unknown_unit_gives_way_to_the_gpus_own_reading(client, sandbox):
    sandbox.configure(metrics_scale=1)  # fractions, unit unknown: nvidia-smi reads percent
    busy = _guarded(client, sandbox, "busy-smi", 88.0)
    idle = _guarded(client, sandbox, "idle-smi", 1.0)
    events = _ticks(client, sandbox)
    assert sandbox.world.instances[busy.id].status == "running"
    assert sandbox.world.instances[idle.id].status in ("toStop", "stopping", "exited")
    assert not [e for e in events if "not known" in str(e.get("reason"))]
    assert client.guards.store.get(busy.id).idle_reading == "nvidia-smi over SSH"
    said = client.guard_status()["idle_readings"]
    assert said[busy.id] == "idle rule reads nvidia-smi over SSH"


def test_percentages_are_learned_from_the_evidence_and_an_idle_gpu_is_stopped(client, sandbox):
    idle = _guarded(client, sandbox, "idle-percent", 1.0)
    _ticks(client, sandbox)
    assert sandbox.world.instances[idle.id].status in ("toStop", "stopping", "exited")
    learned = client.guards.store.learned("metrics_unit")
    assert learned["unit"] == "percent" and "fractions never exceed 1" in learned["evidence"]


def test_the_users_word_on_the_unit_lets_the_idle_rule_act_on_fractions(
    client, sandbox, monkeypatch
):
    monkeypatch.setenv("NOVITA_GUARD_METRICS_UNIT", "fraction")
    sandbox.configure(metrics_scale=1)
    busy = _guarded(client, sandbox, "busy-fraction", 88.0)
    idle = _guarded(client, sandbox, "idle-fraction", 1.0)
    _ticks(client, sandbox)
    assert sandbox.world.instances[busy.id].status == "running"
    assert sandbox.world.instances[idle.id].status in ("toStop", "stopping", "exited")


def test_an_instance_with_a_run_still_running_is_busy_whatever_its_gpu_says(client, sandbox):
    from novita_notebook.remote.store import RunRecord, RunStore

    working = _guarded(client, sandbox, "running-a-job", 1.0)
    RunStore(client.config.api_url).save(
        RunRecord(id="run-1", instance_id=working.id, instance_name="running-a-job",
                  kind="python", code_hash="x", started=datetime.now(UTC), state="running")
    )  # fmt: skip
    _ticks(client, sandbox)
    assert sandbox.world.instances[working.id].status == "running"
    notes = client.guard_status()["notes"]
    assert any("busy (active runs: run-1)" in note for note in notes)
