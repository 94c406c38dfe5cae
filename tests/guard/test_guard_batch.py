"""Batches are guarded as create() is: rule keywords per spec or for all, the user's defaults,
bad rules before any request, one start of the enforcement, and an instance whose wait failed."""

from __future__ import annotations

import pytest

from novita_notebook.errors import NovitaError, ValidationError
from novita_notebook.guard.process import guard_status


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    """No guard process: what the kernel does alone."""
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


def test_rules_for_all_and_per_spec(client):
    starts = []
    original = client.guards.start
    client.guards.start = lambda: starts.append(1) or original()
    frame = client.create_many(
        [{"name": "b-1"}, {"name": "b-2", "idle_stop": "30m", "budget": 3}],
        gpu="RTX 3090",
        image="ubuntu:22.04",
        stop_after="2h",
    )
    assert frame["error"].isna().all(), frame["error"].tolist()
    records = {r.name: r.rules for r in client.guards.store.records()}
    assert records["b-1"].stop_after is not None and records["b-1"].budget_total is None
    assert records["b-2"].idle_stop is not None and records["b-2"].budget_total == 3
    assert starts  # each create starts the guard before its request (serialized: one spawn)


def test_the_users_defaults_reach_every_instance_of_a_batch(client, monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_STOP_AFTER", "3h")
    client.create_many(2, gpu="RTX 3090", image="ubuntu:22.04", name_prefix="dflt")
    records = client.guards.store.records()
    assert sorted(r.name for r in records) == ["dflt-1", "dflt-2"]
    assert all(r.rules.stop_after is not None for r in records)


def test_guard_false_and_no_defaults_store_nothing(client):
    client.create_many(2, gpu="RTX 3090", image="ubuntu:22.04", guard=False)
    assert client.guards.store.records() == []
    assert guard_status(client.config.api_url)["running"] is False


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"stop_after": "soon"}, "stop_after"),
        ({"budget": -1}, "budget_total"),
        ({"guard": False, "idle_stop": "1h"}, "guard"),
    ],
)
def test_bad_rules_in_one_spec_fail_before_any_request(client, sandbox, spec, field):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create_many([{"name": "ok"}, {"name": "bad", **spec}], gpu="RTX 3090")
    assert caught.value.field == field
    assert sandbox.requests() == []


@pytest.fixture
def real_time_client():
    """A sandbox on the real clock: a boot takes seconds, so a wait of a millisecond gives up
    before it ends however slow the machine is (at the fast test clock it may already run)."""
    from novita_notebook import Novita
    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=1.0, seed=7) as server:
        novita = Novita(api_key=server.api_key, api_url=server.url)
        yield novita
        novita.close()


def test_an_instance_whose_wait_failed_is_guarded_all_the_same(real_time_client):
    client = real_time_client
    # a wait that gives up at once: the instance exists and bills all the same
    with pytest.raises(NovitaError) as caught:
        client.create("doomed", gpu="RTX 3090", image="ubuntu:22.04", wait=True, timeout=0.001,
                      stop_after="1h")  # fmt: skip
    made = caught.value.created_instance
    assert client.guards.store.get(made.id) is not None
    frame = client.create_many(1, gpu="RTX 3090", image="ubuntu:22.04", wait=True,
                               timeout=0.001, stop_after="1h", name_prefix="d")  # fmt: skip
    [row] = frame.to_dict("records")
    assert row["status"] == "failed" and row["instance_id"]
    assert client.guards.store.get(row["instance_id"]) is not None
