"""A bad history recovers: day-long durations (a broken clock) are forgotten after one real
wait, so later waits poll on today's schedule instead of every 30 s for an arrival expected
hours away."""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.sandbox import Sandbox
from novita_notebook.waiting.backoff import Backoff
from novita_notebook.waiting.history import STEPS, PhaseHistory
from novita_notebook.waiting.learned import LearnedSchedule, history_of

KEY = ("3090.12c46g", "US-CA-06", "ubuntu:22.04")
DAY = 86_000.0


def test_a_day_long_history_is_forgotten_at_the_first_real_duration(tmp_path):
    history = PhaseHistory(tmp_path / "history.json")
    for _ in range(50):
        history.record(*KEY, "pulling", DAY)
    assert history.estimate(*KEY, "pulling").median == DAY
    history.record(*KEY, "pulling", 12.0)
    assert history.samples(*KEY, "pulling") == [12.0]
    assert not history.estimate(*KEY, "pulling").learned  # the prior again, until 3 samples
    for seconds in (11.0, 13.0):
        history.record(*KEY, "pulling", seconds)
    estimate = history.estimate(*KEY, "pulling")
    assert estimate.learned and estimate.median == 12.0


def test_one_wild_outlier_is_kept_and_shrugged_off(tmp_path):
    history = PhaseHistory(tmp_path / "history.json")
    for seconds in (10, 11, 9, 10, 10.5, 9.5, 300):
        history.record(*KEY, "pulling", seconds)
    assert len(history.samples(*KEY, "pulling")) == 7
    assert history.estimate(*KEY, "pulling").median == 10


@pytest.mark.timeout(60)
def test_waits_after_a_broken_history_poll_on_todays_schedule():
    speed = 20.0
    with Sandbox(speed=speed, seed=3, phase_jitter=0.0, pending_rate=0) as box:
        box.set_stock(1000)
        with Novita(api_key=box.api_key, api_url=box.url) as client:
            first = client.create("day-1", gpu="RTX 3090", image=KEY[2], region=KEY[1])
            history = history_of(client)
            assert history is not None
            for phase in STEPS:  # a broken clock recorded day-long phases for this key
                for _ in range(50):
                    history.record(first.product_id, first.region, KEY[2], phase, DAY)
            schedule = LearnedSchedule.for_instance(first, history)
            assert schedule.has_history("toCreate")  # it would wait for hours
            # one wait (its sparse pace bounded by a short fallback so the test is quick)
            client.wait(first, poll=Backoff(initial=0.05, cap=0.5), progress=False)
            fresh = LearnedSchedule.for_instance(first, history)
            assert not fresh.has_history("toCreate")  # recovered: today's schedule again
            assert fresh.eta("pulling", 0.0)[0] < 3600
