"""Deleting an instance through the client (delete, or cleanup) drops its guard rules at once
and says so in the action log, instead of leaving them until the guard sees it gone."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    """No guard process: what the kernel does alone."""
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


def test_delete_drops_the_rules_and_logs_it(client):
    guarded = client.create("short-lived", gpu="RTX 3090", image="ubuntu:22.04", stop_after="1h")
    plain = client.create("unguarded", gpu="RTX 3090", image="ubuntu:22.04")
    assert client.guards.store.get(guarded.id) is not None
    client.delete(guarded.id)
    client.delete(plain.id)
    assert client.guards.store.get(guarded.id) is None
    assert guarded.id not in client.guard_status()["rules"]
    [entry] = client.guards.store.actions()
    assert entry["instance_id"] == guarded.id and entry["action"] == "forget"
    assert entry["reason"] == "deleted by this client"


def test_cleanup_drops_the_rules_of_what_it_deleted(client):
    kept = client.create("keep-me", gpu="RTX 3090", image="ubuntu:22.04", stop_after="1h")
    doomed = client.create("sweep-me", gpu="RTX 3090", image="ubuntu:22.04", stop_after="1h")
    frame = client.cleanup(delete=True, dry_run=False, names=["sweep-me"])
    assert frame.set_index("id").loc[doomed.id, "result"] == "deleted"
    assert client.guards.store.get(doomed.id) is None
    assert client.guards.store.get(kept.id) is not None
    assert [e["instance_id"] for e in client.guards.store.actions()] == [doomed.id]
