"""In-kernel enforcement on the sandbox: the client-backed backend, the watcher's listing reused
(no extra list call), events to the notebook callback, and recreate through the client.
"""

from __future__ import annotations

import time

from novita_notebook.guard.enforcer import GuardBackend
from novita_notebook.guard.kernel import ClientGuardBackend, KernelGuard
from novita_notebook.guard.rules import GuardRules


def _list_calls(sandbox) -> int:
    return sum(1 for r in sandbox.requests() if r["path"].endswith("/gpu/instances"))


def test_kernel_guard_stops_at_the_deadline_using_the_watchers_listing(client, sandbox):
    inst = client.create("kernel-guarded", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    seen: list[tuple[str, dict]] = []
    listing = {"raw": client.api.list_instances()}
    backend = ClientGuardBackend(
        client,
        lambda: sandbox.api_key,
        listing=lambda: listing["raw"],
        on_event=lambda event, data: seen.append((event, data)),
    )
    assert isinstance(backend, GuardBackend)
    guard = KernelGuard(backend, client.config.api_url, actor="kernel test")
    assert guard.tick() is None  # nothing guarded yet
    guard.store.set_rules(inst.id, GuardRules.parse(stop_after=1), name=inst.name)
    before = _list_calls(sandbox)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(e == "guard.stopped" for e, _ in seen):
        guard.tick()
        time.sleep(0.1)
    assert _list_calls(sandbox) == before  # the watcher's listing was reused
    assert [e for e, _ in seen] == ["guard.warning", "guard.stopped"]
    assert seen[0][1]["instanceId"] == inst.id and seen[0][1]["actor"] == "kernel test"
    assert client.api.get_instance(inst.id)["status"] in ("toStop", "stopping", "exited")
    backend.close()


def test_kernel_guard_survives_a_failing_backend(client):
    class Broken(ClientGuardBackend):
        def list_instances(self):
            raise RuntimeError("boom")

    guard = KernelGuard(Broken(client, lambda: "unused"), client.config.api_url)
    guard.store.set_rules("some-id", GuardRules.parse(stop_after="1h"))
    assert guard.tick() is None


def test_recreate_goes_through_the_clients_create(client, sandbox):
    inst = client.create("spot-twin", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    backend = ClientGuardBackend(client, lambda: sandbox.api_key)
    new_id = backend.recreate(inst.id)
    assert new_id != inst.id
    fresh = client.api.get_instance(new_id)
    assert fresh["name"] == "spot-twin" and fresh["imageUrl"] == "ubuntu:22.04"
    assert client.api.get_instance(inst.id)["status"] in ("toRemove", "removing", "removed")
    backend.close()
