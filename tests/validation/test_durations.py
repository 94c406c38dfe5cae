"""The one grammar for durations and times, and every duration input reading it: timeouts,
intervals, the poll pace, idle windows, warning leads and deadlines all accept the same text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.options import CLIENT, CREATE, FAMILIES, GUARD, WAITING
from novita_notebook.validation import parse_deadline, parse_seconds, parse_time, parse_timedelta

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("2min", 120.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1 h 30 min", 5400.0),
        ("2 hours", 7200.0),
        ("1 hour and 30 minutes", 5400.0),
        ("1 day, 6 h", 108000.0),
        (".5h", 1800.0),
        (timedelta(minutes=5), 300.0),
    ],
)
def test_durations_read_every_common_spelling(text, seconds):
    assert parse_seconds(text, "timeout") == seconds
    assert parse_timedelta(text, "idle_stop") == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["soon", "-5m", "5 parsecs", "h", "", True, None, [], "nan", 0])
def test_a_bad_duration_names_the_field_and_the_rule(bad):
    with pytest.raises(ValidationError) as caught:
        parse_seconds(bad, "timeout")
    assert caught.value.field == "timeout"
    assert caught.value.message.startswith("timeout: must be a")


def test_absurd_durations_are_refused_not_overflowed():
    with pytest.raises(ValidationError, match="at most 3650 days"):
        parse_timedelta(1e300, "warn_before")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18:00Z", datetime(2026, 11, 27, 18, 0, tzinfo=UTC)),
        ("18:00", datetime(2026, 11, 27, 18, 0, tzinfo=UTC)),
        ("16:00Z", datetime(2026, 11, 28, 16, 0, tzinfo=UTC)),  # past today: tomorrow's
        ("18:00+02:00", datetime(2026, 11, 28, 16, 0, tzinfo=UTC)),
        ("19:15:30 UTC", datetime(2026, 11, 27, 19, 15, 30, tzinfo=UTC)),
        ("2026-11-28T09:00Z", datetime(2026, 11, 28, 9, 0, tzinfo=UTC)),
        ("2026-11-28T09:00", datetime(2026, 11, 28, 9, 0, tzinfo=UTC)),
    ],
)
def test_times_are_the_next_such_moment_in_utc(text, expected):
    assert parse_time(text, "stop_after", NOW) == expected
    assert parse_deadline(text, "stop_after", NOW) == expected


def test_deadlines_take_a_duration_from_now_or_a_time():
    assert parse_deadline("2 hours", "stop_after", NOW) == NOW + timedelta(hours=2)
    assert parse_deadline("1h30m", "stop_after", NOW) == NOW + timedelta(minutes=90)
    with pytest.raises(ValidationError, match="must be in the future"):
        parse_deadline("2026-11-27T09:00Z", "stop_after", NOW)
    with pytest.raises(ValidationError, match="a duration from now .* or a time"):
        parse_deadline("tomorrowish", "stop_after", NOW)
    with pytest.raises(ValidationError, match="must be a time like"):
        parse_time("25:00Z", "stop_after", NOW)


def _duration_options():
    return [
        pytest.param(option, id=f"{family.name}.{option.name}")
        for family in FAMILIES
        for option in family
        if option.kind.name in ("duration", "deadline", "poll", "timeout")
    ]


@pytest.mark.parametrize("option", _duration_options())
@pytest.mark.parametrize("text", ["2 hours", "1h30m", "90m", "45s", "90"])
def test_every_duration_input_accepts_the_same_grammar(option, text):
    """Whatever the option (a timeout, an interval, an idle window, a deadline), the same
    text is read, from Python and as typed text alike."""
    assert option.parse(text) is not None
    assert option.parse_text(text) is not None


def test_the_duration_inputs_are_the_ones_users_meet():
    names = {option.name for option in (p.values[0] for p in _duration_options())}
    assert {"poll_interval", "timeout", "interval", "idle_stop", "warn_before"} <= names
    assert {"stop_after", "delete_after", "cache_ttl", "poll"} <= names
    assert CREATE["timeout"].parse("2 hours") == 7200.0
    assert WAITING["interval"].parse_text("1h30m") == 5400.0
    assert CLIENT["poll_interval"].parse("90m") == 5400.0
    assert GUARD["idle_stop"].parse("2 hours") == timedelta(hours=2)
    deadline = GUARD["stop_after"].parse("18:00Z")
    assert deadline.hour == 18 and deadline.tzinfo is not None
