"""Nothing is forgotten on one listing's word: an instance missing from a listing keeps its rules
(and is still enforced, read by id) until a read by id says the API does not know it. Every stop
the guard sends is confirmed by reading the instance again; one that did not take is retried,
escalated as ``guard.failed`` and a warning, and never logged as done.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from novita_notebook.guard.backend import HttpGuardBackend
from novita_notebook.guard.enforcer import Enforcer
from novita_notebook.guard.events import event_text
from novita_notebook.guard.rules import GuardRules

IMAGE = "ubuntu:22.04"
LONG_AGO = datetime.now(UTC) - timedelta(minutes=10)  # past any "just created" grace


@pytest.fixture(autouse=True)
def no_guard_process(monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


@pytest.fixture
def guard(client, sandbox):
    """An enforcer over HTTP, as the guard process runs it; its events in ``events``."""
    backend = HttpGuardBackend(client.config.api_url, lambda: sandbox.api_key)
    backend.api.transport.retry_backoff = 0.01  # failures fail fast in these tests
    enforcer = Enforcer(backend, client.guards.store, actor="guard test")
    enforcer.confirm_pause = 0.05
    enforcer.events = backend.events
    yield enforcer
    backend.close()


def _made(client, name: str, **rules):
    inst = client.create(name, gpu="RTX 3090", image=IMAGE, wait=True, guard=False)
    client.guards.store.set_rules(inst.id, GuardRules.parse(now=LONG_AGO, **rules), name=name)
    return inst


def test_an_instance_a_listing_leaves_out_keeps_its_rules_and_is_still_enforced(
    client, sandbox, guard
):
    inst = _made(client, "unlisted", stop_after="11m")
    sandbox.set_faults(listDropRate=1.0)  # every listing comes back short
    assert client.api.list_instances() == []
    guard.tick(LONG_AGO + timedelta(minutes=5))  # before the deadline: only looked at
    assert client.guards.store.get(inst.id) is not None
    assert not [a for a in client.guards.store.actions() if a["action"] == "forget"]
    guard.tick(LONG_AGO + timedelta(minutes=11, seconds=1))
    assert sandbox.world.instances[inst.id].status in ("toStop", "stopping", "exited")
    sandbox.clear_faults()


def test_only_a_read_by_id_that_finds_nothing_forgets_the_rules(client, sandbox, guard):
    inst = _made(client, "deleted-elsewhere", stop_after="1h")
    with sandbox.world.lock:
        sandbox.world.instances.pop(inst.id)  # gone for good: the API answers 404 by id
    guard.tick()
    assert client.guards.store.get(inst.id) is None
    forget = [a for a in client.guards.store.actions() if a["action"] == "forget"]
    assert forget and "read by id" in forget[0]["reason"]


def test_a_failing_listing_forgets_nothing(client, sandbox, guard):
    inst = _made(client, "listing-fails", stop_after="1h")
    sandbox.set_faults(errorRate=1.0)
    with pytest.raises(Exception):  # noqa: B017 - the tick fails as a whole, loudly
        guard.tick()
    sandbox.clear_faults()
    assert client.guards.store.get(inst.id) is not None


def test_a_stop_that_did_not_take_is_retried_escalated_and_never_logged_as_done(
    client, sandbox, guard
):
    inst = _made(client, "refused", stop_after="11m")
    sandbox.set_faults(stopIgnoreRate=1.0)  # the API answers {} and does nothing
    due = LONG_AGO + timedelta(minutes=11, seconds=1)
    result = guard.tick(due)
    stops = [r for r in sandbox.requests() if r["path"].endswith("/gpu/instance/stop")]
    assert len(stops) == 3  # sent, read back still running, sent again (three times)
    outcome = [r for r in result.results if r["kind"] == "stop"][0]["result"]
    assert outcome.startswith("failed") and "still running" in outcome
    failures = [e for e in guard.events if e["event"] == "guard.failed"]
    assert len(failures) == 1
    text = event_text("guard.failed", failures[0])  # what the notebook prints
    assert text.startswith("Guard FAILED for refused") and "still running" in text
    logged = client.guards.store.actions(inst.id)
    assert not [a for a in logged if a["action"] == "stop" and a["result"] == "done"]
    assert any(a["action"] == "failed" for a in logged)
    sandbox.clear_faults()  # the next tick tries again, and now it takes
    guard.tick(due + timedelta(seconds=30))
    assert sandbox.world.instances[inst.id].status in ("toStop", "stopping", "exited")
    done = [a for a in client.guards.store.actions(inst.id) if a["action"] == "stop"]
    assert done[-1]["result"] == "done"
