"""Rules are stored before the create request is sent: a create interrupted at any point after
the request went out (during the POST, the read back or the wait) leaves a guarded instance, and
the message says what exists, that it is guarded, and how to delete it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from tests.guard.polling import wait_for

from novita_notebook.guard.backend import HttpGuardBackend
from novita_notebook.guard.enforcer import Enforcer
from novita_notebook.guard.process import guard_status
from novita_notebook.guard.store import GuardStore

IMAGE = "ubuntu:22.04"


@pytest.fixture(autouse=True)
def no_guard_process(monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


def _store_text(client) -> str:
    path = client.guards.store.path
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_the_rules_are_on_disk_before_the_create_request_goes_out(client):
    seen: list[str] = []
    send = client.api.create_instance

    def spy(body):  # what a kill at this very moment would leave behind
        seen.append(_store_text(client))
        return send(body)

    client.api.create_instance = spy
    inst = client.create("spied", gpu="RTX 3090", image=IMAGE, stop_after="1h", wait=False)
    assert len(seen) == 1
    on_disk = json.loads(seen[0]) if seen[0] else {}
    assert [i["name"] for i in on_disk.get("intents", [])] == ["spied"], "no rules on disk"
    assert on_disk["intents"][0]["rules"]["stop_after"] is not None
    ledger = json.loads(client.ledger.path.read_text())
    # the ledger's own intent carries a copy, the guard store can be rebuilt from it
    assert client.guards.store.get(inst.id).rules.stop_after is not None
    assert [c["id"] for c in ledger["guard_rules"]] == [inst.id]
    assert client.guards.store.intents() == []


def test_ctrl_c_during_the_wait_leaves_a_guarded_instance_and_says_so(client):
    def interrupt(instance, elapsed, phase):  # the user presses Ctrl-C while it starts
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        client.create("waited", gpu="RTX 3090", image=IMAGE, stop_after="2h",
                      wait=True, progress=interrupt)  # fmt: skip
    message = str(caught.value)
    made = [r for r in client.api.list_instances() if r["name"] == "waited"]
    assert len(made) == 1
    record = client.guards.store.get(made[0]["id"])
    assert record is not None and record.rules.stop_after is not None
    assert made[0]["id"] in message and "guarded" in message
    assert "novita.delete('waited')" in message


def test_ctrl_c_during_the_post_leaves_an_intent_that_mine_binds_and_the_guard_enforces(
    client, sandbox
):
    sandbox.set_faults(latencyMs=600)  # the create request is in flight for a while

    def press_ctrl_c() -> None:
        wait_for(lambda: any(r["path"].endswith("/create") for r in sandbox.requests()), 10)
        time.sleep(0.2)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt) as caught:
        client.create("posted", gpu="RTX 3090", image=IMAGE, stop_after=30, wait=True)
    sandbox.clear_faults()
    assert "guarded" in str(caught.value)
    made = wait_for(lambda: [r for r in client.api.list_instances() if r["name"] == "posted"], 5)
    assert len(made) == 1
    client.mine()  # resolves the ledger's intent by name: the guard binds its own to the id
    record = client.guards.store.get(made[0]["id"])
    assert record is not None and record.rules.stop_after is not None
    # and a guard stops it at its deadline
    backend = HttpGuardBackend(client.config.api_url, lambda: sandbox.api_key)
    enforcer = Enforcer(backend, GuardStore(api_url=client.config.api_url), actor="test")
    try:
        enforcer.tick(record.rules.stop_after + timedelta(seconds=1))
    finally:
        backend.close()
    assert sandbox.world.instances[made[0]["id"]].status in ("toStop", "stopping", "exited")


def test_an_intent_is_bound_by_the_guard_from_its_own_listing(client, sandbox):
    """The ledger never saw the answer (a killed kernel): the guard binds by name."""
    store = client.guards.store
    from novita_notebook.guard.rules import GuardRules

    sent = datetime.now(UTC)
    store.add_intent("tok-1", "orphan", GuardRules.parse(stop_after="1h"), sent_at=sent)
    orphan = client.create("orphan", gpu="RTX 3090", image=IMAGE, guard=False, wait=False)
    backend = HttpGuardBackend(client.config.api_url, lambda: sandbox.api_key)
    try:
        Enforcer(backend, store, actor="guard test").tick()
    finally:
        backend.close()
    assert store.get(orphan.id) is not None and store.intents() == []
    bound = [a for a in store.actions(orphan.id) if a["action"] == "bind"]
    assert bound and bound[0]["result"] == "guarded"


KERNEL = r"""
import sys
from novita_notebook import Novita

client = Novita()
client.create("killed-kernel", gpu="RTX 3090", image="ubuntu:22.04", wait=True,
              stop_after=float(sys.argv[1]))
"""


def test_a_kernel_killed_during_the_post_leaves_an_instance_the_guard_process_stops(
    sandbox, monkeypatch
):
    monkeypatch.delenv("NOVITA_GUARD_AUTOSTART")
    deadline = 6.0
    env = {**os.environ, "NOVITA_API_KEY": sandbox.api_key, "NOVITA_API_URL": sandbox.url,
           "NOVITA_GUARD_INTERVAL": "0.5"}  # fmt: skip
    sandbox.set_faults(latencyMs=1500)
    started = time.time()
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL, str(deadline)], env=env,
                              start_new_session=True)  # fmt: skip
    try:
        assert wait_for(lambda: any(r["path"].endswith("/create") for r in sandbox.requests()),
                        20)  # fmt: skip
        os.killpg(kernel.pid, signal.SIGKILL)  # mid-POST: no answer was ever read
        kernel.wait(timeout=5)
        sandbox.clear_faults()
        made = wait_for(
            lambda: [i for i in sandbox.world.instances.values() if i.name == "killed-kernel"], 10
        )
        assert len(made) == 1
        instance = made[0]
        assert wait_for(lambda: instance.status in ("toStop", "stopping", "exited"),
                        deadline + 15)  # fmt: skip
        stop = next(r for r in sandbox.requests() if r["path"].endswith("/gpu/instance/stop"))
        assert stop["time"] <= started + deadline + 5  # the deadline counted from the create
    finally:
        if kernel.poll() is None:
            kernel.kill()
        pid = guard_status(sandbox.api_url).get("pid")
        if pid and guard_status(sandbox.api_url)["running"]:
            os.kill(pid, signal.SIGTERM)
