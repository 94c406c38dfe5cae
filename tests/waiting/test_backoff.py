"""Unit tests of the one backoff schedule: growth, jitter bounds, status awareness, validation.
Also compares adaptive and fixed 1-s polling on simulated provisioning timelines (virtual clock).
"""

from __future__ import annotations

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.waiting import Backoff


def test_grows_geometrically_to_the_cap_without_jitter():
    schedule = Backoff(initial=0.5, cap=10.0, factor=2.0, proportion=0, jitter=False)
    delays = [schedule.next_delay() for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_full_jitter_stays_between_floor_and_current_step():
    schedule = Backoff(initial=0.5, cap=10.0, factor=2.0, proportion=0, spread=1.0, seed=3)
    steps = [0.5, 1.0, 2.0, 4.0, 8.0] + [10.0] * 200
    delays = []
    for step in steps:
        delay = schedule.next_delay()
        assert schedule.floor <= delay <= step
        delays.append(delay)
    # Jitter really spreads the delays at the cap (not all equal to the step).
    capped = delays[5:]
    assert min(capped) < 5.0 < max(capped)


def test_same_seed_same_delays_and_fresh_copies_are_independent():
    template = Backoff(initial=0.1, cap=1.0, seed=42)
    first = template.fresh()
    second = template.fresh()
    assert [first.next_delay() for _ in range(5)] == [second.next_delay() for _ in range(5)]
    # The template itself did not move.
    assert template.current_step == pytest.approx(0.1)


def test_status_change_resets_to_fast_and_status_sets_the_ceiling():
    schedule = Backoff(initial=1.0, cap=16.0, proportion=0, jitter=False)
    assert schedule.observe("creating") is True
    for _ in range(10):
        schedule.next_delay()
    assert schedule.current_step == 16.0
    assert schedule.observe("creating") is False  # same status: no reset
    assert schedule.current_step == 16.0
    # Same phase (provisioning): the pace is kept; an image pull is the long phase, so the
    # schedule may stay at the cap (this is where the calls are saved).
    assert schedule.observe("pulling") is True
    assert schedule.next_delay() == 16.0
    schedule.observe("starting")  # new phase, and running is seconds away: fast
    assert schedule.next_delay() == 1.0
    assert max(schedule.next_delay() for _ in range(10)) == 3.0
    schedule.observe("stopping")
    assert max(schedule.next_delay() for _ in range(10)) == 4.0
    schedule.observe("running", urgent=True)
    assert max(schedule.next_delay() for _ in range(10)) == 3.0


def test_fixed_and_scaled_schedules():
    fixed = Backoff.fixed(1.0)
    fixed.observe("pulling")
    assert {fixed.next_delay() for _ in range(20)} == {1.0}
    small = Backoff(initial=0.5, cap=10.0, jitter=False).scaled(0.01)
    assert (small.initial, small.cap) == pytest.approx((0.005, 0.1))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": -1}, "initial"),
        ({"initial": "fast"}, "initial"),
        ({"initial": 2.0, "cap": 1.0}, "cap"),
        ({"factor": 0.5}, "factor"),
        ({"floor": 5.0}, "floor"),
        ({"cap": float("inf")}, "cap"),
        ({"proportion": -0.1}, "proportion"),
        ({"spread": 1.5}, "spread"),
        ({"ramp": 0.5}, "ramp"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        Backoff(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)


# ---------------------------------------------------------------------------------------------
# Adaptive vs fixed polling on a virtual clock
# ---------------------------------------------------------------------------------------------


def provisioning_timeline(total: float) -> list[tuple[str, float]]:
    """Create path as the API reports it: toCreate 1 s, creating 4 s, pulling the rest."""
    return [("toCreate", 1.0), ("creating", 4.0), ("pulling", total - 5.0)]


def simulate(schedule: Backoff, timeline: list[tuple[str, float]]) -> tuple[int, float]:
    """Poll a timeline that ends in running on a virtual clock; return (calls, lag in s)."""
    running_at = sum(duration for _, duration in timeline)
    clock = [0.0]
    schedule.clock = lambda: clock[0]

    def status_at(t: float) -> str:
        elapsed = 0.0
        for status, duration in timeline:
            elapsed += duration
            if t < elapsed:
                return status
        return "running"

    calls = 0
    while True:
        calls += 1
        status = status_at(clock[0])
        if status == "running":
            return calls, clock[0] - running_at
        schedule.observe(status)
        clock[0] += schedule.next_delay()


@pytest.mark.parametrize("total", [10.0, 30.0, 90.0])
def test_adaptive_makes_fewer_calls_than_fixed_one_second_polling(total):
    runs = 200
    adaptive_calls = adaptive_lag = 0.0
    for seed in range(runs):
        calls, lag = simulate(Backoff(seed=seed), provisioning_timeline(total))
        adaptive_calls += calls / runs
        adaptive_lag += lag / runs
    fixed_calls, fixed_lag = 0.0, 0.0
    for seed in range(runs):
        # Fixed polling's lag depends on where the timeline starts within its 1-s tick.
        offset = (seed + 0.5) / runs
        calls, lag = simulate(
            Backoff.fixed(1.0), [("toCreate", 1.0 + offset)] + provisioning_timeline(total)[1:]
        )
        fixed_calls += calls / runs
        fixed_lag += lag / runs
    assert adaptive_calls < fixed_calls
    # The pause is a share of the time already waited: the mean lag stays under 10% of the
    # provisioning time, whatever that time is.
    assert adaptive_lag < 0.1 * total
    if total >= 90:
        # Long pulls are where adaptive polling pays most: at least 4x fewer calls.
        assert adaptive_calls * 4 <= fixed_calls
    assert fixed_lag <= 1.0


@pytest.mark.parametrize("interval", [0.01, 5.0, 600.0])
def test_watcher_error_backoff_starts_at_the_interval_for_any_interval(interval):
    from novita_notebook.waiting import Watcher

    watcher = Watcher(None, None, interval=interval)  # never started: no client needed
    schedule = watcher._error_backoff
    assert schedule.initial == interval
    assert interval <= schedule.cap <= max(interval, 300.0)


def test_pauses_become_a_share_of_the_time_spent_in_the_phase():
    clock = [0.0]
    schedule = Backoff(initial=0.5, cap=30.0, proportion=0.2, jitter=False, clock=lambda: clock[0])
    schedule.observe("pulling")
    # The ramp: geometric from initial up to ramp x initial (2 s).
    ramp = []
    for _ in range(4):
        delay = schedule.next_delay()
        ramp.append(delay)
        clock[0] += delay
    assert ramp == [0.5, 1.0, 2.0, 2.0]
    clock[0] = 60.0
    assert schedule.next_delay() == pytest.approx(12.0)  # 20% of a minute in the phase
    clock[0] = 600.0
    assert schedule.next_delay() == 30.0  # never beyond the cap
    # A new phase starts the count again.
    schedule.observe("starting")
    assert schedule.next_delay() == 0.5


def test_jitter_draws_from_the_top_of_the_step():
    clock = [100.0]
    schedule = Backoff(initial=0.5, cap=30.0, spread=0.2, seed=1, clock=lambda: clock[0])
    schedule.observe("pulling")
    clock[0] = 150.0  # 50 s in the phase: step 10 s
    delays = [schedule.next_delay() for _ in range(200)]
    assert all(8.0 <= d <= 10.0 for d in delays)
    assert max(delays) - min(delays) > 1.0  # really spread, not constant


# -- retry_delay: the retry schedule http, webhooks and provisioning share ----------------------


def test_retry_delay_is_full_jitter_under_the_exponential_cap():
    import random

    from novita_notebook.waiting.backoff import retry_delay

    rng = random.Random(3)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (60, 4.0)]:
        delays = [retry_delay(attempt, base=0.5, cap=4.0, rng=rng) for _ in range(400)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: spread over the whole range, not bunched near the ceiling.
        assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9


def test_retry_delay_never_undercuts_retry_after_even_past_the_cap():
    from novita_notebook.waiting.backoff import retry_delay

    assert retry_delay(0, base=0.5, cap=1.0, retry_after=7.0) == 7.0
    assert all(retry_delay(5, base=0.5, cap=8.0, retry_after=0.3) >= 0.3 for _ in range(100))


@pytest.mark.parametrize("attempt", [-1, 1.5, True, "2"])
def test_retry_delay_rejects_a_bad_attempt(attempt):
    from novita_notebook.waiting.backoff import retry_delay

    with pytest.raises(ValidationError) as info:
        retry_delay(attempt, base=0.5, cap=4.0)
    assert info.value.field == "attempt"
