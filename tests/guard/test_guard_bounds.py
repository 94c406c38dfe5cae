"""Every rule value has bounds, checked where rules are parsed: no accepted value can make a
tick raise. A value out of bounds already in the store costs only its own record, and a rule
that fails for one instance still lets every other instance be enforced.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from tests.guard.polling import tick_past_deadline

from novita_notebook.errors import ValidationError
from novita_notebook.guard import policy
from novita_notebook.guard.policy import InstanceState, decide
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardRecord

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
IMAGE = "ubuntu:22.04"


@pytest.fixture(autouse=True)
def no_guard_process(monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


@pytest.mark.parametrize(
    "rules, field",
    [
        ({"budget": 1e9}, "budget_total"),
        ({"budget_per_hour": 10**7}, "budget_per_hour"),
        ({"idle_stop": "3000000d"}, "idle_stop"),
        ({"stop_after": "400d"}, "stop_after"),
        ({"delete_after": "9999-12-31T23:59:59-05:00"}, "delete_after"),
        ({"stop_after": 1e300}, "stop_after"),
        ({"warn_before": 10**12}, "warn_before"),
        ({"idle_threshold": 101}, "idle_threshold"),
    ],
)
def test_out_of_bounds_values_are_refused_before_any_request(client, sandbox, rules, field):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create("too-much", gpu="RTX 3090", image=IMAGE, **rules)
    assert caught.value.field == field and field in caught.value.message
    assert sandbox.requests() == []


def test_every_parser_is_pure_and_names_its_field():
    from novita_notebook.guard.rules import RULE_PARSERS

    for name, parse in RULE_PARSERS.items():
        with pytest.raises(ValueError) as caught:  # ValidationError is a ValueError
            parse("not a value", NOW)
        assert name in str(caught.value)
    assert RULE_PARSERS["budget_total"]("12.5", NOW) == 12.5
    assert RULE_PARSERS["idle_stop"]("90m", NOW) == timedelta(minutes=90)
    assert RULE_PARSERS["stop_after"]("2h", NOW) == NOW + timedelta(hours=2)
    with pytest.raises(ValidationError, match="more than 366 days away"):
        GuardRules.parse(stop_after="1d", now=NOW).extend("366d", now=NOW)


def _raw_record(instance_id: str, **rules) -> dict:
    return {
        "id": instance_id,
        "api_url": None,
        "name": instance_id,
        "rules": {"set_at": NOW.isoformat(), **rules},
        "price_per_hour": 0.01,
    }


def test_an_out_of_bounds_stored_value_costs_only_its_record_and_a_tick_never_raises(
    client, sandbox
):
    fine = client.create("fine", gpu="RTX 3090", image=IMAGE, wait=True, stop_after=60)
    wild = client.create("wild", gpu="RTX 3090", image=IMAGE, wait=True, guard=False)
    store = client.guards.store
    data = json.loads(store.path.read_text())
    # written by hand, or by a version without bounds: a budget no price can ever reach
    data["instances"].append({**_raw_record(wild.id, budget_total=1e9), "api_url": store.api_url})
    store.path.write_text(json.dumps(data))
    with pytest.warns(RuntimeWarning, match=wild.id):
        records = store.records()
    assert [r.id for r in records] == [fine.id]
    quarantined = [json.loads(line) for line in store.quarantine_path.read_text().splitlines()]
    assert quarantined[0]["instance_id"] == wild.id and "budget_total" in quarantined[0]["reason"]
    tick_past_deadline(client, sandbox.api_key, fine.id)
    assert sandbox.world.instances[fine.id].status in ("toStop", "stopping", "exited")
    status = client.guard_status()  # never raises either
    assert any(p["instance_id"] == wild.id for p in status["problems"])


def test_a_budget_no_price_can_reach_still_plans_without_overflow():
    rec = GuardRecord(id="i1", rules=GuardRules.parse(budget_total=1_000_000, now=NOW),
                      price_per_hour=1e-9, created_at=NOW)  # fmt: skip
    plan = decide(NOW + timedelta(minutes=5), [rec], {"i1": InstanceState("i1", "running",
                  price_per_hour=1e-9)}, metrics_unit="percent")  # fmt: skip
    assert plan.errors == () and plan.next_wake is not None


def test_a_rule_that_fails_for_one_instance_leaves_the_others_enforced(monkeypatch):
    real_spot = policy._spot

    def spot(b, state, record):  # an edge no accepted value reaches any more
        if state.id == "broken":
            raise OverflowError("date value out of range")
        return real_spot(b, state, record)

    monkeypatch.setattr(policy, "_spot", spot)
    records = [
        GuardRecord(id=i, rules=GuardRules.parse(stop_after="1m", now=NOW), created_at=NOW)
        for i in ("broken", "healthy")
    ]
    states = {i: InstanceState(i, "running") for i in ("broken", "healthy")}
    plan = decide(NOW + timedelta(minutes=2), records, states, metrics_unit="percent")
    stops = {a.instance_id for a in plan.due() if a.kind == "stop"}
    assert stops == {"broken", "healthy"}  # its deadline still acts; only the spot rule failed
    assert plan.errors == (("broken", "spot", "OverflowError: date value out of range"),)
    assert any("broken: the spot rule failed" in note for note in plan.notes)
