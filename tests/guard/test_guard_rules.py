"""GuardRules: durations, deadlines, validation, extend/without, storage form and env defaults.
Every bad input is a ValidationError naming the field.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.guard.rules import (
    GuardRules,
    autostart_enabled,
    extend,
    parse_duration,
    rules_from_env,
    without,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90m", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h 30min", 5400),
        ("45s", 45),
        ("1d", 86400),
        ("1.5h", 5400),
        ("2 hours", 7200),  # the one duration grammar: what timeout= takes, rules take too
        ("120", 120),
        (30, 30),
        (2.5, 2.5),
        (timedelta(minutes=3), 180),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text, "idle_stop").total_seconds() == seconds


@pytest.mark.parametrize(
    "bad", ["", "soon", "2 parsecs", "h", "-5m", -1, 0, math.nan, math.inf, True, None, [1]]
)
def test_bad_durations_name_the_field(bad):
    with pytest.raises(ValidationError) as info:
        parse_duration(bad, "idle_stop")
    assert info.value.field == "idle_stop"
    assert "idle_stop" in info.value.message


def test_deadline_forms_are_stored_as_absolute_utc():
    as_duration = GuardRules.parse(stop_after="90m", now=NOW)
    assert as_duration.stop_after == NOW + timedelta(minutes=90)
    as_seconds = GuardRules.parse(stop_after=600, now=NOW)
    assert as_seconds.stop_after == NOW + timedelta(seconds=600)
    as_iso = GuardRules.parse(delete_after="2026-01-01T15:00:00Z", now=NOW)
    assert as_iso.delete_after == datetime(2026, 1, 1, 15, tzinfo=UTC)
    other_zone = datetime(2026, 1, 1, 16, tzinfo=timezone(timedelta(hours=2)))
    as_datetime = GuardRules.parse(stop_after=other_zone, now=NOW)
    assert as_datetime.stop_after == datetime(2026, 1, 1, 14, tzinfo=UTC)
    assert as_datetime.stop_after.tzinfo == UTC
    naive = GuardRules.parse(stop_after=datetime(2026, 1, 1, 13), now=NOW)
    assert naive.stop_after == datetime(2026, 1, 1, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stop_after": "2025-12-31T00:00:00Z"}, "stop_after"),  # in the past
        ({"stop_after": "2026-13-45T00:00"}, "stop_after"),
        ({"delete_after": "tomorrow"}, "delete_after"),
        ({"idle_threshold": 0}, "idle_threshold"),
        ({"idle_threshold": 101}, "idle_threshold"),
        ({"idle_threshold": math.nan}, "idle_threshold"),
        ({"budget_per_hour": -1}, "budget_per_hour"),
        ({"budget_per_hour": math.inf}, "budget_per_hour"),
        ({"budget_total": 0}, "budget_total"),
        ({"budget_total": "lots"}, "budget_total"),
        ({"on_reclaim": "panic"}, "on_reclaim"),
        ({"on_reclaim": 3}, "on_reclaim"),
        ({"warn_before": "-1m"}, "warn_before"),
    ],
)
def test_invalid_rules(kwargs, field):
    with pytest.raises(ValidationError) as info:
        GuardRules.parse(now=NOW, **kwargs)
    assert info.value.field == field


def test_numbers_as_text_and_defaults():
    rules = GuardRules.parse(budget_per_hour="1.5", idle_stop="30m", now=NOW)
    assert rules.budget_per_hour == 1.5
    assert rules.idle_threshold == 5.0
    assert rules.on_reclaim == "notify"
    assert rules.active
    assert not GuardRules.parse(now=NOW).active


def test_warning_lead_scales_for_short_deadlines():
    long = GuardRules.parse(stop_after="2h", now=NOW)
    assert long.warn_lead(long.stop_after) == timedelta(minutes=10)
    short = GuardRules.parse(stop_after="20s", now=NOW)
    assert short.warn_lead(short.stop_after) == timedelta(seconds=5)
    explicit = GuardRules.parse(stop_after="1h", warn_before="30m", now=NOW)
    assert explicit.warn_lead(explicit.stop_after) == timedelta(minutes=30)
    too_long = GuardRules.parse(stop_after="5m", warn_before="1h", now=NOW)
    assert too_long.warn_lead(too_long.stop_after) == timedelta(minutes=5)


def test_extend_and_without():
    rules = GuardRules.parse(stop_after="1h", delete_after="3h", budget_total=5, now=NOW)
    later = rules.extend("30m")
    assert later.stop_after == NOW + timedelta(minutes=90)
    assert later.delete_after == NOW + timedelta(minutes=210)
    only_stop = rules.extend(600, "stop_after")
    assert only_stop.delete_after == rules.delete_after
    with pytest.raises(ValidationError) as info:
        rules.extend("soon")
    assert info.value.field == "duration"
    with pytest.raises(ValidationError):
        GuardRules.parse(idle_stop="5m", now=NOW).extend("1h")
    stripped = rules.without("stop_after", "budget")
    assert stripped.stop_after is None and stripped.budget_total is None
    assert stripped.delete_after == rules.delete_after
    with pytest.raises(ValidationError) as info:
        rules.without("everything")
    assert info.value.field == "rules"


def test_merged_keeps_rules_the_new_set_does_not_mention():
    first = GuardRules.parse(stop_after="1h", idle_stop="10m", now=NOW)
    second = GuardRules.parse(budget_per_hour=2, now=NOW + timedelta(minutes=5))
    both = first.merged(second)
    assert both.stop_after == first.stop_after
    assert both.idle_stop == first.idle_stop
    assert both.budget_per_hour == 2
    assert both.set_at == second.set_at


def test_round_trip_through_dict():
    rules = GuardRules.parse(
        stop_after="1h", idle_stop="10m", idle_threshold=7, budget_total=3, on_reclaim="migrate",
        warn_before="2m", now=NOW,
    )  # fmt: skip
    assert GuardRules.from_dict(rules.to_dict()) == rules
    assert "stop at 2026-01-01 13:00:00Z" in rules.describe()


def test_env_defaults_and_opt_out(tmp_path):
    env = {"NOVITA_GUARD_STOP_AFTER": "2h", "NOVITA_GUARD_IDLE_STOP": "30m"}
    rules = rules_from_env(env, env_file=False, now=NOW)
    assert rules.stop_after == NOW + timedelta(hours=2)
    assert rules.idle_stop == timedelta(minutes=30)
    assert rules_from_env({}, env_file=False) is None
    with pytest.raises(ValidationError) as info:
        rules_from_env({"NOVITA_GUARD_BUDGET_TOTAL": "-3"}, env_file=False)
    assert info.value.field == "NOVITA_GUARD_BUDGET_TOTAL"
    dotenv = tmp_path / ".env"
    dotenv.write_text("NOVITA_GUARD_ON_RECLAIM=recreate\nNOVITA_GUARD_AUTOSTART=0\n")
    from_file = rules_from_env({}, env_file=dotenv, now=NOW)
    assert from_file.on_reclaim == "recreate"
    assert autostart_enabled({}, env_file=dotenv) is False
    assert autostart_enabled({"NOVITA_GUARD_AUTOSTART": "1"}, env_file=dotenv) is True
    assert autostart_enabled({}, env_file=False) is True


def test_module_level_extend_and_without():
    rules = GuardRules.parse(stop_after="1h", idle_stop="5m", now=NOW)
    assert extend(rules, "1h").stop_after == NOW + timedelta(hours=2)
    assert without(rules, "idle").idle_stop is None
    with pytest.raises(ValidationError) as info:
        extend({"stop_after": "1h"}, "1h")
    assert info.value.field == "rules"
