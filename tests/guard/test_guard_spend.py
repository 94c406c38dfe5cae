"""The total budget counts every billed stretch since it was set, not only the current run:
stops and starts, restarts between two looks, a guard that was away, other rules set later."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from test_guard_enforcer import FakeBackend

from novita_notebook.guard.enforcer import Enforcer
from novita_notebook.guard.policy import InstanceState, decide
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.spend import billing_update, spent_since_budget
from novita_notebook.guard.store import GuardRecord, GuardStore
from novita_notebook.money import format_money

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def running(started: float, **kw) -> InstanceState:
    return InstanceState(
        id="i1", status="running", price_per_hour=1.0, started_at=at(started), **kw
    )


def exited(**kw) -> InstanceState:
    return InstanceState(id="i1", status="exited", price_per_hour=1.0, **kw)


def look(record: GuardRecord, state: InstanceState, minutes: float) -> GuardRecord:
    """The record after a guard's look at ``state`` (what the store keeps)."""
    return GuardRecord(**{**record.__dict__, **billing_update(record, state, at(minutes))})


@pytest.fixture
def record() -> GuardRecord:
    rules = GuardRules.parse(budget_total=1.0, now=T0)
    return GuardRecord(id="i1", rules=rules, price_per_hour=1.0, created_at=T0, budget_since=T0)


def test_a_stop_and_a_start_keep_the_first_run_on_the_bill(record):
    record = look(record, running(0), 30)
    assert spent_since_budget(record, running(0), at(30)) == pytest.approx(0.5)
    record = look(record, exited(stopped_at=at(50)), 60)  # the API says when it stopped
    assert record.spent == pytest.approx(50 / 60)
    record = look(record, running(110), 120)
    # 50 min of the first run and 10 of this one: the old count said 10 min (0.17 USD)
    assert spent_since_budget(record, running(110), at(120)) == pytest.approx(1.0)


def test_a_restart_between_two_looks_closes_the_first_stretch_at_the_stop(record):
    record = look(record, running(0), 30)
    state = running(45, stopped_at=at(40))  # stopped at 40, started again at 45
    record = look(record, state, 50)
    assert record.spent == pytest.approx(40 / 60)
    assert spent_since_budget(record, state, at(50)) == pytest.approx(45 / 60)


def test_without_the_api_s_times_a_stretch_ends_at_the_last_look_that_saw_it(record):
    state = InstanceState(id="i1", status="running", price_per_hour=1.0, created_at=T0)
    record = look(record, state, 30)
    record = look(record, exited(), 31)  # no lastStoppedAt: counted to the look at 30
    assert record.spent == pytest.approx(0.5)
    again = InstanceState(id="i1", status="running", price_per_hour=1.0)
    record = look(record, again, 40)  # no lastStartedAt: from this look, not from creation
    assert spent_since_budget(record, again, at(70)) == pytest.approx(1.0)


def test_a_guard_that_was_away_counts_to_the_stop_time(record):
    record = look(record, running(0), 10)
    record = look(record, exited(stopped_at=at(170)), 400)  # back after hours
    assert record.spent == pytest.approx(170 / 60)


def test_looks_inside_a_minute_write_nothing(record):
    record = look(record, running(0), 10)
    assert billing_update(record, running(0), at(10.5)) == {}
    assert set(billing_update(record, running(0), at(11.5))) == {"billed_seen"}
    record = look(record, exited(stopped_at=at(20)), 21)
    assert billing_update(record, exited(stopped_at=at(20)), at(30)) == {}


def test_the_policy_stops_when_all_stretches_together_reach_the_cap(record):
    record = look(record, running(0), 30)
    record = look(record, exited(stopped_at=at(50)), 60)
    record = look(record, running(110), 112)
    plan = decide(at(112), [record], {"i1": running(110)})
    [warning] = [a for a in plan.due() if a.rule == "budget_total"]
    # 50 minutes of the first run and 10 of this one at 1 USD/h; the old count said 13:50
    assert warning.kind == "warn" and warning.data["action_due"] == at(120).isoformat()


def test_the_store_keeps_the_count_across_other_rules_and_restarts_it_on_replace(tmp_path):
    store = GuardStore(tmp_path, api_url="http://127.0.0.1:1")
    store.set_rules("i1", GuardRules.parse(budget_total=1.0, now=T0), price_per_hour=1.0)
    [record] = store.note_billing({"i1": running(0)}, at(30))
    store.note_billing({"i1": exited(stopped_at=at(45))}, at(46))
    assert store.get("i1").spent == pytest.approx(0.75)
    kept = store.set_rules("i1", GuardRules.parse(idle_stop="30m", now=at(60)))
    assert kept.spent == pytest.approx(0.75) and kept.budget_since == T0
    raised = store.set_rules("i1", GuardRules.parse(budget_total=2.0, now=at(61)))
    assert raised.spent == pytest.approx(0.75)
    fresh = store.set_rules("i1", GuardRules.parse(budget_total=2.0, now=at(62)), replace=True)
    assert fresh.spent == 0 and fresh.budget_since == at(62)


@pytest.mark.parametrize("stored", [None, "lots", -1, float("nan"), True])
def test_a_store_without_or_with_a_broken_count_starts_from_zero(tmp_path, stored):
    store = GuardStore(tmp_path)
    store.set_rules("i1", GuardRules.parse(budget_total=1.0, now=T0))
    data = json.loads(store.path.read_text())
    if stored is None:
        del data["instances"][0]["spent"]
    else:
        data["instances"][0]["spent"] = stored
    store.path.write_text(json.dumps(data))
    assert store.get("i1").spent == 0.0


def test_the_enforcer_stops_the_second_run_when_the_total_is_reached(tmp_path):
    backend = FakeBackend()
    backend.add("i1", lastStartedAt=str(int(at(0).timestamp())), createdAt=str(int(T0.timestamp())))
    store = GuardStore(tmp_path, api_url="http://127.0.0.1:1")
    store.set_rules("i1", GuardRules.parse(budget_total=1.0, now=T0), price_per_hour=1.0)
    enforcer = Enforcer(backend, store, grace=timedelta(seconds=2))
    for minute in (10, 20, 30, 40):
        enforcer.tick(at(minute))
    backend.instances["i1"].update(status="exited", lastStoppedAt=str(int(at(45).timestamp())))
    enforcer.tick(at(50))
    backend.instances["i1"].update(status="running", lastStartedAt=str(int(at(60).timestamp())))
    stopped_at = None
    for minute in range(61, 120):
        enforcer.tick(at(minute))
        if backend.instances["i1"]["status"] == "exited":
            stopped_at = minute
            break
    # 45 min of the first run + 15 of the second: counting only this run would wait to 120
    assert stopped_at == 75
    assert ("stop", "i1") in backend.calls


def test_the_kernel_guard_counts_a_stopped_run_on_the_sandbox(client, sandbox, monkeypatch):
    # The list view carries no start or stop times (as the live one): stretches are what
    # the guard's looks saw. Every look is noted here (not once a minute) to keep it short.
    from novita_notebook.guard import spend
    from novita_notebook.guard.kernel import ClientGuardBackend, KernelGuard

    monkeypatch.setattr(spend, "SEEN_EVERY", timedelta(0))
    inst = client.create("budgeted", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    guard = KernelGuard(ClientGuardBackend(client, lambda: sandbox.api_key), client.config.api_url)
    guard.store.set_rules(
        inst.id, GuardRules.parse(budget_total=100), name=inst.name, price_per_hour=3600.0
    )
    guard.tick()
    first = guard.store.get(inst.id)
    assert first.budget_since <= first.billed_since <= datetime.now(UTC)
    time.sleep(1.2)
    guard.tick()  # still running: seen again
    client.stop(inst.id)
    client.wait(inst.id, until="exited", timeout=30)
    guard.tick()
    stopped = guard.store.get(inst.id)
    seconds = (stopped.billed_seen - first.billed_since).total_seconds()
    assert stopped.billed_since is None and seconds >= 1.2
    assert stopped.spent == pytest.approx(seconds)  # 3600 USD/h: one USD per second
    client.start(inst.id)
    client.wait(inst.id, until="running", timeout=30)
    guard.tick()
    again = guard.store.get(inst.id)
    assert again.spent == stopped.spent and again.billed_since > stopped.billed_seen


def test_guard_status_shows_what_the_total_budget_counted(client, monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")
    inst = client.create("counted", gpu="RTX 3090", image="ubuntu:22.04", budget=5, wait=True)
    other = client.create("deadline", gpu="RTX 3090", image="ubuntu:22.04", stop_after="1h")
    record = client.guards.store.get(inst.id)
    state = InstanceState(id=inst.id, status="running", price_per_hour=record.price_per_hour)
    client.guards.store.note_billing({inst.id: state}, datetime.now(UTC))  # a guard's look
    time.sleep(0.2)
    status = client.guard_status()
    record = client.guards.store.get(inst.id)
    hours = (datetime.now(UTC) - record.budget_since).total_seconds() / 3600
    assert record.billed_since is not None
    assert 0 < status["spent"][inst.id] <= record.price_per_hour * hours
    assert other.id not in status["spent"]
    assert f"{format_money(status['spent'][inst.id])} counted so far" in str(status)
