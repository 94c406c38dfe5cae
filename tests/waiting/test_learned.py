"""The learned schedule on a virtual clock: the prior alone changes nothing, history concentrates
polls around the expected arrival, surprises widen it, Retry-After is a floor, and the ETA."""

from __future__ import annotations

import random

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.models import Instance
from novita_notebook.waiting.backoff import Backoff
from novita_notebook.waiting.history import PhaseHistory
from novita_notebook.waiting.learned import LearnedSchedule, format_eta

KEY = ("3090.12c46g", "US-CA-06", "ubuntu:22.04")
SHARES = (("toCreate", 0.05), ("creating", 0.2), ("pulling", 0.75))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timeline(
    total: float, rng: random.Random | None = None, jitter: float = 0.2
) -> list[tuple[str, float]]:
    """A create taking ``total`` seconds, each phase jittered +-``jitter`` when ``rng`` is given."""
    points, moment = [], 0.0
    for status, share in SHARES:
        points.append((status, moment))
        moment += share * total * (rng.uniform(1 - jitter, 1 + jitter) if rng else 1.0)
    return [*points, ("running", moment)]


def status_at(points: list[tuple[str, float]], moment: float) -> str:
    return [status for status, start in points if start <= moment][-1]


def run(schedule: LearnedSchedule | Backoff, clock: Clock, points) -> list[tuple[float, str]]:
    """The polls a wait makes: one at 0, then one after each next_delay()."""
    polls = []
    while True:
        status = status_at(points, clock.now)
        schedule.observe(status)
        polls.append((clock.now, status))
        if status == "running" or len(polls) > 500:
            return polls
        clock.now += schedule.next_delay()


def learned(history: PhaseHistory, clock: Clock, **options) -> LearnedSchedule:
    return LearnedSchedule(history, *KEY, fallback=Backoff(seed=3), clock=clock, **options)


@pytest.fixture
def history(tmp_path):
    return PhaseHistory(tmp_path / "history.json")


def fill(history: PhaseHistory, total: float, runs: int = 5, seed: int = 1) -> None:
    """``runs`` earlier provisionings recorded by the schedule itself."""
    rng = random.Random(seed)
    for _ in range(runs):
        clock = Clock()
        run(learned(history, clock), clock, timeline(total, rng))


def test_without_history_the_schedule_is_todays_backoff(history):
    clock_a, clock_b = Clock(), Clock()
    schedule = learned(history, clock_a, record=False)
    today = Backoff(seed=3, clock=clock_b)
    points = timeline(30.0)
    assert [t for t, _ in run(schedule, clock_a, points)] == [
        t for t, _ in run(today, clock_b, points)
    ]


def test_a_fresh_history_gives_the_prior_eta(history):
    clock = Clock()
    schedule = learned(history, clock)
    schedule.observe("toCreate")
    total, per_phase, has_history = schedule.eta()
    assert has_history is False
    assert list(per_phase) == ["queued", "creating", "pulling"]
    assert per_phase["creating"] == 4.0
    assert total == pytest.approx(sum(per_phase.values()))
    assert "no history yet" in format_eta("toCreate", schedule.eta())


def test_the_first_provisionings_are_recorded(history):
    fill(history, 30.0, runs=3)
    assert len(history.samples(*KEY, "pulling")) == 3
    for phase, share in (("creating", 0.2), ("pulling", 0.75)):
        estimate = history.estimate(*KEY, phase)
        assert estimate.learned
        assert estimate.median == pytest.approx(share * 30, rel=0.25)


@pytest.mark.parametrize("total", [10.0, 30.0, 90.0])
def test_with_history_polls_concentrate_around_the_transition(tmp_path, total):
    # Five earlier provisionings are a small sample: like the benchmark, average over several
    # independent histories rather than trusting one.
    rng = random.Random(7)
    calls, fixed_calls, lags, near, late, waits = 0, 0, [], 0, 0, 0
    for seed in range(8):
        history = PhaseHistory(tmp_path / f"history-{seed}.json")
        fill(history, total, seed=seed)
        for _ in range(6):
            points = timeline(total, rng)
            arrival = points[-1][1]
            clock = Clock()
            polls = run(learned(history, clock, record=False), clock, points)
            waits += 1
            # the first poll (t=0) is create()'s handle: wait() makes no call for it when the
            # history knows the way (tests/waiting/test_learned_wiring.py checks that on the sandbox)
            calls += len(polls) - 1
            lags.append((polls[-1][0] - arrival) / arrival)
            # after the first poll: sparse (at most one per 30-s cap) while the arrival is
            # far, then around it
            later = [t for t, _ in polls[1:]]
            early = [t for t in later if t < 0.7 * arrival]
            assert len(early) <= int(arrival // 30)
            near += sum(0.7 * arrival <= t <= 1.3 * arrival for t in later)
            late += sum(t > 1.3 * arrival for t in later)
            fixed_calls += len(run(Backoff.fixed(1.0), Clock(), points))
    assert fixed_calls / calls >= 4
    assert sum(lags) / waits <= 0.10
    assert near >= 0.9 * (near + late)


def test_the_dense_polls_start_just_before_the_expected_arrival(history):
    fill(history, 30.0)
    clock = Clock()
    schedule = learned(history, clock, record=False)
    schedule.observe("toCreate")
    low, median, _, _ = schedule._window()
    poll = schedule.next_delay()
    while poll < low:  # sparse pauses while the arrival is far
        clock.now = poll
        poll = clock.now + schedule.next_delay()
    assert low < poll < median


def test_a_history_that_expects_too_late_learns_the_faster_arrivals(history):
    # Five steady runs of 30 s, then the registry gets faster (22 s). A first look at the
    # expected time finds the instance running: if that sighting were placed inside the band,
    # the history would record its own expectation and miss every later arrival by a third.
    rng = random.Random(5)
    for _ in range(5):
        clock = Clock()
        run(learned(history, clock), clock, timeline(30.0, rng, jitter=0.05))
    lags = []
    for _ in range(15):
        points = timeline(22.0, rng, jitter=0.05)
        clock = Clock()
        polls = run(learned(history, clock), clock, points)
        lags.append((polls[-1][0] - points[-1][1]) / points[-1][1])
    assert lags[0] > 0.15  # the first faster run is a surprise
    assert sum(lags[-5:]) / 5 <= 0.10
    expected = sum(e.median for p, e in history.estimates(*KEY).items() if p != "starting")
    assert expected == pytest.approx(22.0, rel=0.15)


def test_a_surprise_widens_the_estimate_for_that_key(history):
    fill(history, 30.0, runs=6)
    clock = Clock()
    schedule = learned(history, clock)
    schedule.observe("toCreate")
    low, median, high, _ = schedule._window()
    # this time it takes three times as long
    clock.now = 0.0
    later = learned(history, clock)
    run(later, clock, timeline(90.0))
    clock.now = 0.0
    after = learned(history, clock)
    after.observe("toCreate")
    low2, median2, high2, _ = after._window()
    assert history.estimate(*KEY, "pulling").inflation > 1
    assert high2 - median2 > 1.5 * (high - median)


def test_a_late_transition_falls_back_to_the_proportional_schedule(history):
    fill(history, 30.0)
    clock = Clock()
    schedule = learned(history, clock, record=False)
    polls = run(schedule, clock, timeline(300.0))  # ten times slower than ever
    arrival = 300.0
    # past the band the pauses are a share of the time waited: lag stays proportional
    assert polls[-1][0] - arrival <= 0.25 * arrival
    assert len(polls) < 60


def test_not_before_is_a_floor(history):
    fill(history, 30.0)
    clock = Clock()
    schedule = learned(history, clock)
    schedule.observe("toCreate")
    natural = schedule.next_delay()
    assert schedule.next_delay(not_before=clock.now + natural + 5) == pytest.approx(natural + 5)
    assert schedule.next_delay(not_before=clock.now - 10) == pytest.approx(natural)


def test_eta_with_history_counts_down(history):
    fill(history, 30.0, runs=6)
    clock = Clock()
    schedule = learned(history, clock)
    schedule.observe("toCreate")
    total, per_phase, has_history = schedule.eta()
    assert has_history
    assert total == pytest.approx(30.0, rel=0.15)
    clock.now = 10.0  # no poll since: the expected phases move on
    later, later_phases, _ = schedule.eta()
    assert later == pytest.approx(total - 10, abs=0.5)
    assert later_phases["queued"] == 0 and later_phases["creating"] == 0
    assert (
        format_eta("pulling", (later, later_phases, True)) == f"pulling, ready in ~{round(later)} s"
    )
    clock.now = 100.0
    assert schedule.eta()[0] == 0.0
    assert format_eta("pulling", schedule.eta()) == "pulling, due any moment"


def test_eta_for_a_given_status_and_elapsed(history):
    schedule = learned(history, Clock())
    total, per_phase, has_history = schedule.eta("pulling", 5.0)
    assert list(per_phase) == ["pulling"] and not has_history
    assert total == pytest.approx(history.estimate(*KEY, "pulling").median - 5)
    assert schedule.eta("running") == (0.0, {}, False)
    assert format_eta("starting", (200.0, {}, True)) == "starting, ready in ~3 min"


def test_a_wait_started_mid_phase_records_only_what_it_saw_begin(history):
    clock = Clock()
    schedule = learned(history, clock)
    clock.now = 100.0
    schedule.observe("pulling")  # first seen mid-pull: its start is unknown
    clock.now = 110.0
    recorded = schedule.finish("running")
    assert recorded == {}
    assert history.samples(*KEY, "pulling") == []


def test_finish_records_once(history):
    clock = Clock()
    schedule = learned(history, clock)
    schedule.observe("toCreate")
    clock.now = 1.0
    schedule.observe("creating")
    clock.now = 5.0
    schedule.observe("pulling")
    clock.now = 20.0
    schedule.observe("running")
    schedule.finish()
    schedule.finish("running")
    assert len(history.samples(*KEY, "pulling")) == 1
    assert [status for status, _ in schedule.timeline] == [
        "toCreate",
        "creating",
        "pulling",
        "running",
    ]


def test_the_backoff_interface(history):
    clock = Clock()
    schedule = learned(history, clock)
    assert schedule.fresh().timeline == []
    faster = schedule.scaled(0.1)
    assert faster.fallback.initial == pytest.approx(schedule.fallback.initial * 0.1)
    assert faster.eta("toCreate")[0] == pytest.approx(schedule.eta("toCreate")[0] * 0.1)
    assert schedule.ceiling_for("starting") == schedule.fallback.ceiling_for("starting")
    assert schedule.observe("toCreate") is True and schedule.observe("toCreate") is False
    schedule.reset()
    assert schedule.current_step == pytest.approx(schedule.fallback.current_step)
    with pytest.raises(ValidationError):
        LearnedSchedule(history, *KEY, dense_fraction=0)
    with pytest.raises(ValidationError):
        LearnedSchedule("not a history")


def test_for_instance_keys_by_product_region_and_image(history):
    inst = Instance(
        id="i-1", name="x", status="toCreate", region=KEY[1], product_id=KEY[0], image_url=KEY[2]
    )
    assert LearnedSchedule.for_instance(inst, history).key == KEY


def test_started_at_places_a_first_sighting_mid_way(history):
    fill(history, 30.0)
    clock = Clock()
    clock.now = 3.0  # the wait's first poll, 3 s after create(): already creating
    schedule = learned(history, clock, started_at=0.0, record=False)
    schedule.observe("creating")
    assert [status for status, _ in schedule.timeline] == ["toCreate", "creating"]
    low, median, high, _ = schedule._window()
    assert median == pytest.approx(30.0, rel=0.15)
    without = learned(history, Clock(), record=False)
    without.clock.now = 3.0
    without.observe("creating")
    assert without._window() is None  # its phase's start is unknown: the fallback decides


def test_a_history_that_cannot_be_written_never_breaks_a_wait(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    history = PhaseHistory(blocker / "history.json")
    clock = Clock()
    polls = run(learned(history, clock), clock, timeline(10.0))
    assert polls[-1][1] == "running"
    assert "not recorded" in caplog.text
