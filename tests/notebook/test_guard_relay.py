"""A spot reclaim notice the guard process announced (it claimed and logged it first) still
reaches the open notebook: its guard events and the live panel, once."""

from __future__ import annotations

import time

from novita_notebook.guard.enforcer import default_actor
from novita_notebook.guard.spot import SpotWatch, with_spot_details
from novita_notebook.guard.store import GuardStore
from novita_notebook.notebook.widgets import InstancePanel

from .test_widgets import eventually


def test_a_notice_announced_by_the_guard_process_reaches_events_and_panel(
    client, sandbox, monkeypatch
):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")
    inst = client.create("spot-1", gpu="RTX 4090", billing="spot", wait=True, progress="silent",
                         stop_after="3h")  # fmt: skip
    guard_watcher = client.guards.ensure_kernel_guard()  # the kernel's own guard: 15 s apart
    eventually(lambda: guard_watcher.ticks >= 1)
    sandbox.spot_reclaim(inst.id, notice_seconds=3600)
    # the guard process, a separate actor on the same store, announces it before the
    # notebook looks again (its guard's next look is 15 s away; no panel is open yet)
    posted: list[tuple[str, dict]] = []
    process = SpotWatch(client.api, GuardStore(api_url=client.config.api_url),
                        emit=lambda kind, data: posted.append((kind, data)))  # fmt: skip
    listing = with_spot_details(client.api, client.api.list_instances())
    assert process.announce(listing, default_actor("guard")) == [inst.id]
    assert [kind for kind, _ in posted] == ["spot.reclaim_notice"]
    panel = InstancePanel(client, interval=0.05)
    second = client.watch(interval=0.05)  # another watcher of this client: still one event
    try:
        # the notebook's watcher sees the notice next tick: events and panel both hear it
        eventually(lambda: any(e["event"] == "spot.reclaim_notice" for e in client.guards.events))
        eventually(lambda: "Spot reclaim notice: spot-1" in panel.notices_box.value)
        assert "\u26a1 reclaim" in panel.row_html[inst.id]
        time.sleep(0.3)  # more ticks: announced once, not once per tick
        notices = [e for e in client.guards.events if e["event"] == "spot.reclaim_notice"]
        assert len(notices) == 1 and notices[0]["instanceId"] == inst.id
        assert notices[0]["actor"].startswith("guard pid")
    finally:
        second.stop()
        panel.stop()
