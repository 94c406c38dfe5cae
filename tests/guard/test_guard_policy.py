"""The guard policy with a fake clock: deadlines, idle, budgets, spot notices, and what it
refuses to do (stop a busy instance, act without metrics, stop twice for one warning).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from novita_notebook.guard.policy import InstanceState
from novita_notebook.guard.policy import decide as decide_with_unit
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardRecord

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=30)


def decide(*args, **kwargs):
    """These tests are about the rules: the metrics unit is known (percent) unless a test
    says otherwise (tests/guard/test_guard_idle_unit.py covers the unknown unit)."""
    kwargs.setdefault("metrics_unit", "percent")
    return decide_with_unit(*args, **kwargs)


def record(instance_id="i1", *, price=1.0, created=None, warned=None, **rules):
    return GuardRecord(
        id=instance_id,
        rules=GuardRules.parse(now=T0, **rules),
        price_per_hour=price,
        created_at=created or T0,
        warned=dict(warned or {}),
    )


def state(instance_id="i1", status="running", **kw):
    kw.setdefault("price_per_hour", 1.0)
    return InstanceState(id=instance_id, status=status, **kw)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def kinds(plan, due_only=True):
    chosen = plan.due() if due_only else plan.actions
    return [(a.instance_id, a.kind, a.rule) for a in chosen]


def warned_for(plan, rec):
    """The record after the enforcer has given the plan's due warnings."""
    keys = {a.key: plan.now for a in plan.due() if a.kind == "warn"}
    return replace(rec, warned={**rec.warned, **keys})


# -- deadlines ---------------------------------------------------------------------------------
def test_deadline_warns_ahead_then_stops_at_the_deadline():
    rec = record(stop_after="1h")
    quiet = decide(at(60), [rec], {"i1": state()})
    assert quiet.due() == []
    assert quiet.next_wake == at(3000)  # 10 min before the deadline
    assert [a.kind for a in quiet.upcoming()] == ["warn", "stop"]
    warn = decide(at(3000), [rec], {"i1": state()})
    assert kinds(warn) == [("i1", "warn", "stop_after")]
    assert warn.due()[0].event == "guard.warning"
    assert warn.next_wake == at(3600)
    rec = warned_for(warn, rec)
    before = decide(at(3599), [rec], {"i1": state()})
    assert before.due() == []
    stop = decide(at(3600), [rec], {"i1": state()})
    assert kinds(stop) == [("i1", "stop", "stop_after")]
    assert stop.due()[0].key == warn.due()[0].key  # one occurrence: one claim key


def test_late_warning_comes_before_the_stop_in_the_same_tick():
    rec = record(stop_after="1h")
    plan = decide(at(3700), [rec], {"i1": state()})
    assert kinds(plan) == [("i1", "warn", "stop_after"), ("i1", "stop", "stop_after")]


def test_short_deadline_warning_is_scaled():
    rec = record(stop_after="20s")
    plan = decide(at(1), [rec], {"i1": state()})
    assert plan.next_wake == at(15)


def test_stopped_instance_is_not_stopped_again_and_needs_no_guard():
    rec = record(stop_after="1h")
    plan = decide(at(4000), [rec], {"i1": state(status="exited")})
    assert plan.actions == ()
    assert plan.live == ()


def test_delete_after_deletes_even_stopped_instances_and_replaces_the_stop():
    rec = record(stop_after="2h", delete_after="1h")
    plan = decide(at(3600), [warned_for(decide(at(3000), [rec], {}), rec)], {"i1": state()})
    assert kinds(plan) == [("i1", "warn", "delete_after"), ("i1", "delete", "delete_after")]
    stopped = decide(at(3600), [rec], {"i1": state(status="exited")})
    assert ("i1", "delete", "delete_after") in kinds(stopped)
    assert stopped.live == ("i1",)  # still waits to delete it


def test_stop_after_and_later_delete_both_act():
    rec = record(stop_after="1h", delete_after="3h")
    plan = decide(at(3600), [rec], {"i1": state()})
    assert ("i1", "stop", "stop_after") in kinds(plan)
    assert ("i1", "delete", "delete_after") not in kinds(plan)


def test_gone_instances_are_reported_for_forgetting():
    rec = record(stop_after="1h")
    plan = decide(at(600), [rec], {}, gone={"i1"})
    assert plan.gone == ("i1",) and plan.actions == () and plan.live == ()


def test_an_instance_missing_from_the_states_is_kept_not_forgotten():
    rec = record(stop_after="1h")
    plan = decide(at(7200), [rec], {})
    assert plan.gone == () and plan.live == ("i1",)
    assert plan.notes == ("i1: not seen this tick; its rules are kept",)
    assert plan.next_wake == at(7200) + GRACE


def test_provisioning_past_deadline_waits_and_says_so():
    rec = record(stop_after="1h")
    plan = decide(at(3700), [rec], {"i1": state(status="creating")})
    assert plan.due() == []
    assert any("once it can be stopped" in note for note in plan.notes)
    assert plan.next_wake == at(3700) + GRACE


# -- idle --------------------------------------------------------------------------------------
def samples(start: float, end: float, value: float, step: float = 60):
    out, moment = [], start
    while moment <= end:
        out.append((at(moment), value))
        moment += step
    return out


def test_idle_instance_is_warned_then_stopped_after_the_grace():
    rec = record(idle_stop="10m")
    busy_then_idle = samples(0, 300, 80) + samples(360, 1200, 1)
    now = at(360 + 600)
    s = state(utilisation=tuple(u for u in busy_then_idle if u[0] <= now))
    plan = decide(now, [rec], {"i1": s}, grace=GRACE)
    assert kinds(plan) == [("i1", "warn", "idle")]
    assert plan.next_wake == now + GRACE
    rec = warned_for(plan, rec)
    still = decide(now + GRACE / 2, [rec], {"i1": s}, grace=GRACE)
    assert still.due() == []
    stop = decide(now + GRACE, [rec], {"i1": s}, grace=GRACE)
    assert kinds(stop) == [("i1", "stop", "idle")]


def test_idle_window_not_yet_reached_schedules_a_wake_up():
    rec = record(idle_stop="10m")
    s = state(utilisation=tuple(samples(0, 300, 80) + samples(360, 600, 2)))
    plan = decide(at(600), [rec], {"i1": s})
    assert plan.actions == ()
    assert plan.next_wake == at(360 + 600)


def test_busy_instance_is_never_stopped_by_the_idle_rule():
    rec = record(idle_stop="1m")
    for minute in range(1, 120):
        now = at(minute * 60)
        s = state(utilisation=tuple(samples(0, minute * 60, 40)))
        assert decide(now, [rec], {"i1": s}).actions == ()


def test_a_busy_sample_after_the_warning_cancels_the_stop():
    rec = record(idle_stop="5m")
    idle = samples(0, 400, 1)
    warn = decide(at(400), [rec], {"i1": state(utilisation=tuple(idle))})
    assert kinds(warn) == [("i1", "warn", "idle")]
    rec = warned_for(warn, rec)
    busy_again = tuple(idle + [(at(420), 90.0)])
    assert decide(at(440), [rec], {"i1": state(utilisation=busy_again)}).actions == ()


def test_threshold_is_the_rules_own():
    rec = record(idle_stop="5m", idle_threshold=50)
    s = state(utilisation=tuple(samples(0, 400, 30)))
    assert kinds(decide(at(400), [rec], {"i1": s})) == [("i1", "warn", "idle")]


def test_no_metrics_means_no_idle_action_and_a_note():
    rec = record(idle_stop="1m")
    s = state(utilisation=None, metrics_error="HTTP 404")
    plan = decide(at(3600), [rec], {"i1": s})
    assert plan.actions == ()
    assert plan.notes and "metrics unavailable (HTTP 404)" in plan.notes[0]
    stale = state(utilisation=tuple(samples(0, 60, 0)))
    plan = decide(at(3600), [rec], {"i1": stale})
    assert plan.actions == () and "no recent" in plan.notes[0]


def test_idle_counts_only_after_the_instance_started():
    rec = record(idle_stop="10m")
    s = state(utilisation=tuple(samples(0, 900, 0)), started_at=at(600))
    assert decide(at(900), [rec], {"i1": s}).actions == ()


# -- budgets -----------------------------------------------------------------------------------
def test_hourly_budget_stops_the_newest_first_until_under():
    recs = [
        record("old", price=1.0, created=at(0), budget_per_hour=2.5),
        record("mid", price=1.0, created=at(10), budget_per_hour=2.5),
        record("new", price=1.0, created=at(20), budget_per_hour=2.5),
    ]
    states = {r.id: state(r.id) for r in recs}
    plan = decide(at(30), recs, states, grace=GRACE)
    assert kinds(plan) == [("new", "warn", "budget_per_hour")]
    recs = [warned_for(plan, r) for r in recs]
    stop = decide(at(30) + GRACE, recs, states, grace=GRACE)
    assert kinds(stop) == [("new", "stop", "budget_per_hour")]


def test_hourly_budget_under_cap_does_nothing():
    recs = [record("a", budget_per_hour=3), record("b", budget_per_hour=3)]
    assert decide(at(5), recs, {r.id: state(r.id) for r in recs}).actions == ()


def test_total_budget_warns_before_crossing_and_stops_at_it():
    # 2 instances at 1 USD/h each, 1 USD total: crossing after 30 min.
    recs = [
        record("a", created=at(0), budget_total=1),
        record("b", created=at(1), budget_total=1),
    ]
    states = {r.id: state(r.id, started_at=at(0)) for r in recs}
    early = decide(at(60), recs, states)
    assert early.actions == ()
    assert early.next_wake == at(1800 - 450)  # a quarter of the time given: 7.5 min
    warn = decide(at(1800 - 450), recs, states)
    assert sorted(kinds(warn)) == [("a", "warn", "budget_total"), ("b", "warn", "budget_total")]
    assert kinds(warn)[0][0] == "b"  # newest first
    recs = [warned_for(warn, r) for r in recs]
    assert decide(at(1700), recs, states).due() == []
    stop = decide(at(1800), recs, states)
    assert kinds(stop) == [("b", "stop", "budget_total"), ("a", "stop", "budget_total")]


# -- spot --------------------------------------------------------------------------------------
def spot(status, reclaim=None):
    return state(spot_status=status, spot_reclaim_time=reclaim)


def test_spot_notice_is_announced_for_every_policy():
    for policy in ("notify", "migrate", "recreate"):
        rec = record(on_reclaim=policy)
        plan = decide(at(10), [rec], {"i1": spot("notified", at(3600))})
        notify = [a for a in plan.due() if a.kind == "notify"]
        assert len(notify) == 1 and notify[0].event == "spot.reclaim_notice"


def test_spot_policies_do_what_they_say():
    notice = spot("notified", at(3600))
    notify = decide(at(10), [record(on_reclaim="notify")], {"i1": notice})
    assert [a.kind for a in notify.actions] == ["notify"]
    migrate = decide(at(10), [record(on_reclaim="migrate")], {"i1": notice})
    assert [a.kind for a in migrate.due()] == ["notify", "migrate"]
    recreate = decide(at(10), [record(on_reclaim="recreate")], {"i1": notice})
    assert [a.kind for a in recreate.due()] == ["notify"]
    assert recreate.upcoming()[0].kind == "recreate"
    assert recreate.upcoming()[0].due == at(3600)
    reclaiming = decide(at(20), [record(on_reclaim="recreate")], {"i1": spot("reclaiming")})
    assert "recreate" in [a.kind for a in reclaiming.due()]


def test_running_spot_without_notice_does_nothing():
    plan = decide(at(10), [record(on_reclaim="migrate")], {"i1": spot("running")})
    assert plan.actions == ()


def test_instance_state_from_raw_api_dict():
    rec = record(stop_after="1h", price=0.35)
    raw = {
        "id": "i1",
        "name": "demo",
        "status": "running",
        "createdAt": str(int(T0.timestamp())),
        "lastStartedAt": "0",
        "spotStatus": "notified",
        "spotReclaimTime": str(int(T0.timestamp()) + 3600),
    }
    s = InstanceState.from_raw(raw, rec)
    assert s.price_per_hour == 0.35 and s.created_at == T0 and s.started_at is None
    assert s.spot_status == "notified" and s.spot_reclaim_time == at(3600)
    assert (
        InstanceState.from_raw({"id": "x", "spotStatus": "", "spotReclaimTime": "0"}).spot_status
        is None
    )
