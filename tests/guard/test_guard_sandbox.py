"""The "done when" list on the real sandbox: idle stop driven by POST /_sandbox/utilization
(after a warning, within the idle window plus two guard intervals; a busy instance never),
two kernels and the guard process acting once, spot reclaim notices as events within one
watch tick, and each on_reclaim policy doing what it says.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta

import pytest
from tests.guard.polling import wait_for

from novita_notebook import Novita
from novita_notebook.guard.process import ensure_guard_running, guard_status

INTERVAL = 0.5  # the guard process's interval in these tests
IDLE = 2.0  # seconds of low GPU use before the idle rule stops


def _posts(sandbox, path: str) -> dict[str, list[float]]:
    """instanceId → arrival times of POSTs to ``path``."""
    out: dict[str, list[float]] = {}
    for request in sandbox.requests():
        if request["method"] == "POST" and request["path"].endswith(path):
            instance_id = json.loads(request["body"])["instanceId"]
            out.setdefault(instance_id, []).append(request["time"])
    return out


def _stop_guard(api_url: str) -> None:
    pid = guard_status(api_url).get("pid")
    if pid and guard_status(api_url)["running"]:
        os.kill(pid, signal.SIGTERM)


@pytest.fixture
def kernel(sandbox, monkeypatch):
    """A notebook's client with a fast in-kernel guard and no guard process."""
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")
    novita = Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=0.3)
    novita.events = []
    novita.guards.listeners.append(lambda event, data: novita.events.append((event, data)))
    yield novita
    novita.close()


def test_idle_instance_is_stopped_by_the_process_after_a_warning_busy_one_never(
    client, sandbox, monkeypatch
):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")  # started below, with its interval
    idle = client.create("idle-one", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    busy = client.create("busy-one", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    sandbox.set_utilization(idle.id, 1.0)
    sandbox.set_utilization(busy.id, 90.0)
    for inst in (idle, busy):
        client.guard(inst, idle_stop=IDLE)
    set_at = client.guards.store.get(idle.id).rules.set_at.timestamp()
    try:
        environ = {k: v for k, v in os.environ.items() if k != "NOVITA_GUARD_AUTOSTART"}
        started = ensure_guard_running(
            client.config.api_url, sandbox.api_key, interval=INTERVAL, environ=environ
        )
        assert started["running"], started
        stops = wait_for(lambda: _posts(sandbox, "/gpu/instance/stop").get(idle.id), 10)
        assert stops and len(stops) == 1
        assert stops[0] <= set_at + IDLE + 2 * INTERVAL + 0.5  # 0.5: process start and HTTP
        time.sleep(3 * INTERVAL)  # the busy one stays up for several more ticks
        assert busy.id not in _posts(sandbox, "/gpu/instance/stop")
        actions = client.guards.store.actions()
        kinds = [(a["instance_id"], a["action"]) for a in actions]
        assert kinds.index((idle.id, "warn")) < kinds.index((idle.id, "stop"))
        assert not any(i == busy.id for i, _ in kinds)
        stop = next(a for a in actions if a["action"] == "stop")
        assert "GPU utilisation below 5 %" in stop["reason"]
        assert stop["actor"].startswith("guard pid")
    finally:
        _stop_guard(client.config.api_url)


def test_two_kernels_and_the_guard_process_act_once(sandbox, monkeypatch):
    """Two notebook clients with in-kernel guards and the guard process, one deadline."""
    monkeypatch.setenv("NOVITA_GUARD_INTERVAL", "0.3")
    kernels = [
        Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=0.2) for _ in range(2)
    ]
    try:
        inst = kernels[0].create("shared", gpu="RTX 3090", image="ubuntu:22.04",
                                 wait=True, stop_after=2)  # fmt: skip
        kernels[1].guards.ensure_kernel_guard()
        assert guard_status(sandbox.api_url)["running"]
        assert wait_for(lambda: _posts(sandbox, "/gpu/instance/stop").get(inst.id), 8)
        time.sleep(1.0)  # every actor has ticked past the deadline several times
        assert len(_posts(sandbox, "/gpu/instance/stop")[inst.id]) == 1
        logged = kernels[0].guards.store.actions(inst.id)
        assert [a["action"] for a in logged if a["action"] != "bind"] == ["warn", "stop"]
    finally:
        for novita in kernels:
            novita.close()
        _stop_guard(sandbox.api_url)


def _spot(novita, name: str, **rules):
    inst = novita.create(name, gpu="RTX 3090", image="ubuntu:22.04", billing="spot",
                         wait=True, guard=False)  # fmt: skip
    if rules:
        novita.guard(inst, **rules)
    else:
        novita.guards.ensure_kernel_guard()
    watcher = novita.guards._watcher
    wait_for(lambda: watcher.ticks >= 1, 5)
    return inst, watcher


def _notice(novita, sandbox, inst, watcher, notice_seconds: float = 3600) -> dict:
    ticks = watcher.ticks
    sandbox.spot_reclaim(inst.id, notice_seconds=notice_seconds)
    found = wait_for(
        lambda: [
            (data, watcher.ticks)
            for event, data in novita.events
            if event == "spot.reclaim_notice" and data["instanceId"] == inst.id
        ],
        5,
    )
    assert len(found) == 1, novita.events
    data, at_tick = found[0]
    # the first tick that starts after the notice announces it (one may be in flight)
    assert at_tick <= ticks + 2
    return data


def test_notify_announces_once_and_does_nothing_else(kernel, sandbox):
    inst, watcher = _spot(kernel, "spot-notify")  # unguarded: still announced
    data = _notice(kernel, sandbox, inst, watcher)
    assert data["on_reclaim"] == "notify" and data["reclaim_time"] != "unknown"
    ticks = watcher.ticks
    wait_for(lambda: watcher.ticks >= ticks + 3, 5)
    assert [e for e, _ in kernel.events].count("spot.reclaim_notice") == 1
    for path in ("/migrate", "/stop", "/delete"):
        assert inst.id not in _posts(sandbox, "/gpu/instance" + path)
    assert len([r for r in sandbox.requests() if r["path"].endswith("/instance/create")]) == 1
    assert kernel.api.get_instance(inst.id)["spotStatus"] == "notified"


def test_migrate_moves_the_instance_at_once(kernel, sandbox):
    inst, watcher = _spot(kernel, "spot-migrate", on_reclaim="migrate")
    before = kernel.api.get_instance(inst.id)["clusterId"]
    _notice(kernel, sandbox, inst, watcher)
    assert wait_for(lambda: any(e == "guard.migrated" for e, _ in kernel.events), 5)
    assert len(_posts(sandbox, "/gpu/instance/migrate")[inst.id]) == 1
    detail = wait_for(
        lambda: (
            (d := kernel.api.get_instance(inst.id))["status"] == "running"
            and d["spotStatus"] == "running"
            and d
        ),
        5,
    )
    assert detail["spotReclaimTime"] == "0" and detail["clusterId"] != before


def test_recreate_makes_a_twin_under_the_same_name_at_the_reclaim(kernel, sandbox):
    inst, watcher = _spot(kernel, "spot-recreate", on_reclaim="recreate", stop_after="2h")
    data = _notice(kernel, sandbox, inst, watcher, notice_seconds=300)  # 1 s at speed 300
    assert data["on_reclaim"] == "recreate"
    assert wait_for(lambda: any(e == "guard.recreated" for e, _ in kernel.events), 8)
    recreated = next(d for e, d in kernel.events if e == "guard.recreated")
    new_id = recreated["newInstanceId"]
    assert new_id != inst.id
    assert _posts(sandbox, "/gpu/instance/delete")[inst.id]
    fresh = kernel.api.get_instance(new_id)
    assert fresh["name"] == "spot-recreate" and fresh["billingMode"] == "spot"
    # the rules moved to the twin, the deadline with them
    store = kernel.guards.store
    assert store.get(inst.id) is None
    assert store.get(new_id).rules.stop_after - store.get(new_id).rules.set_at > timedelta(hours=1)
    assert len([r for r in sandbox.requests() if r["path"].endswith("/instance/create")]) == 2


def test_recreate_makes_the_replacement_first_with_the_same_volumes(kernel, sandbox):
    kernel.create_storage("spot-data", "AS-SGP-02", 20)
    inst = kernel.create("spot-volume", gpu="RTX 3090", image="ubuntu:22.04", billing="spot",
                         volumes=[("spot-data", "/data")], wait=True,
                         on_reclaim="recreate")  # fmt: skip
    mounted = [(m["id"], m["mountPath"]) for m in kernel.api.get_instance(inst.id)["volumeMounts"]]
    watcher = kernel.guards._watcher
    wait_for(lambda: watcher.ticks >= 1, 5)
    _notice(kernel, sandbox, inst, watcher, notice_seconds=300)
    assert wait_for(lambda: any(e == "guard.recreated" for e, _ in kernel.events), 8)
    new_id = next(d for e, d in kernel.events if e == "guard.recreated")["newInstanceId"]
    creates = [r for r in sandbox.requests() if r["path"].endswith("/instance/create")]
    deletes = _posts(sandbox, "/gpu/instance/delete")[inst.id]
    assert creates[-1]["time"] <= deletes[0]  # the replacement exists before the old one goes
    fresh = kernel.api.get_instance(new_id)
    assert [(m["id"], m["mountPath"]) for m in fresh["volumeMounts"]] == mounted
    assert len(mounted) == 1 and mounted[0][1] == "/data"
