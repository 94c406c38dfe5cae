"""The phase-duration history: the prior, summaries, bounds, surprises, broken files, and
several processes recording at once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.waiting.history import (
    HISTORY_FILE,
    PhaseHistory,
    image_size_guess,
    phase_durations,
    prior_estimate,
    summarise,
)

KEY = ("3090.12c46g", "US-CA-06", "ubuntu:22.04")


@pytest.fixture
def history(tmp_path):
    return PhaseHistory(tmp_path / "history.json")


def test_default_path_is_in_the_ledger_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("NOVITA_NOTEBOOK_HOME", str(tmp_path / "home"))
    history = PhaseHistory()
    history.record(*KEY, "pulling", 12.0)
    assert history.path == tmp_path / "home" / HISTORY_FILE
    assert history.samples(*KEY, "pulling") == [12.0]


def test_a_fresh_history_answers_with_the_prior(history):
    estimates = history.estimates(*KEY)
    assert not any(e.learned for e in estimates.values())
    assert estimates["queued"].median == 1.0
    assert estimates["creating"].median == 4.0
    assert estimates["starting"].median == 10.0
    # pulling: 15 s + 8 s/GB of the guessed size, a wide band around it
    assert estimates["pulling"].median == pytest.approx(15 + 8 * image_size_guess(KEY[2]))
    assert estimates["pulling"].high >= 2.5 * estimates["pulling"].median
    assert estimates["pulling"].low <= 0.5 * estimates["pulling"].median


def test_the_prior_pull_grows_with_the_image():
    small = prior_estimate("pulling", "ubuntu:22.04")
    big = prior_estimate("pulling", "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-devel")
    told = prior_estimate("pulling", "anything", image_gb=20)
    assert small.median < big.median < told.median
    assert told.median == pytest.approx(15 + 8 * 20)
    assert prior_estimate("pulling", "x", image_gb=1000).median == 240.0  # the documented cap
    assert prior_estimate("creating", scale=0.1).median == pytest.approx(0.4)


def test_summaries_are_robust(history):
    for seconds in (10, 11, 9, 10, 10.5, 9.5, 300):  # one wild outlier
        history.record(*KEY, "pulling", seconds)
    estimate = history.estimate(*KEY, "pulling")
    assert estimate.learned and estimate.count == 7
    assert estimate.median == 10
    assert estimate.mad == pytest.approx(0.5)
    assert estimate.low < 10 < estimate.high


def test_history_per_key_is_bounded_to_the_last_50(history):
    for index in range(70):
        history.record(*KEY, "creating", float(index))
    samples = history.samples(*KEY, "creating")
    assert samples == [float(i) for i in range(20, 70)]


def test_keys_are_separate(history):
    history.record(*KEY, "pulling", 10)
    history.record("other", KEY[1], KEY[2], "pulling", 99)
    assert history.samples(*KEY, "pulling") == [10]
    assert PhaseHistory(history.path, scope="http://elsewhere").samples(*KEY, "pulling") == []


@pytest.mark.parametrize(
    ("phase", "seconds", "field"),
    [("boiling", 1.0, "phase"), ("pulling", -1.0, "seconds"), ("pulling", "5", "seconds")],
)
def test_bad_records_are_refused(history, phase, seconds, field):
    with pytest.raises(ValidationError) as info:
        history.record(*KEY, phase, seconds)
    assert info.value.field == field


def test_transitions_become_phase_durations(history):
    timeline = [("pending", 0.0), ("toCreate", 0.5), ("creating", 1.0), ("pulling", 5.0)]
    recorded = history.record_transitions(*KEY, [*timeline, ("running", 20.0)])
    assert recorded == pytest.approx({"queued": 1.0, "creating": 4.0, "pulling": 15.0})
    assert history.samples(*KEY, "pulling") == [15.0]


def test_skipped_phases_share_the_span_by_expected_duration():
    # toCreate seen at 0, pulling first seen at 10: queued and creating shared 1:4
    durations = phase_durations(
        [("toCreate", 0.0), ("pulling", 10.0), ("running", 30.0)],
        expected={"queued": 1.0, "creating": 4.0, "pulling": 15.0},
    )
    assert durations == pytest.approx({"queued": 2.0, "creating": 8.0, "pulling": 20.0})


def test_a_first_sighting_mid_phase_is_not_a_duration():
    durations = phase_durations([("pulling", 0.0), ("running", 7.0)], first_is_entry=False)
    assert durations == {}
    start = phase_durations([("toStart", 0.0), ("starting", 1.0), ("running", 11.0)])
    assert start == pytest.approx({"queued": 1.0, "starting": 10.0})


def test_a_surprise_widens_the_next_estimate(history):
    for seconds in (20.0, 21.0, 19.0, 20.5, 19.5):
        history.record(*KEY, "pulling", seconds)
    before = history.estimate(*KEY, "pulling")
    history.record(*KEY, "pulling", 60.0)  # three times longer than ever
    after = history.estimate(*KEY, "pulling")
    assert after.inflation == 2 * before.inflation
    assert after.high - after.median > 1.8 * (before.high - before.median)
    assert after.median - after.low > 1.5 * (before.median - before.low)
    # an early surprise widens too
    history.record(*KEY, "pulling", 2.0)
    assert history.estimate(*KEY, "pulling").inflation == 4.0
    # expected durations let the widening decay again
    for _ in range(3):
        history.record(*KEY, "pulling", 20.0)
    assert 1.0 <= history.estimate(*KEY, "pulling").inflation < 4.0


def test_summarise_keeps_a_band_for_identical_samples():
    estimate = summarise("pulling", [10.0] * 10)
    assert estimate.low < 10 < estimate.high


def test_bad_json_is_moved_aside_with_a_warning(history, caplog):
    history.path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert history.samples(*KEY, "pulling") == []  # reading never crashes
        history.record(*KEY, "pulling", 10)
    assert history.samples(*KEY, "pulling") == [10]
    aside = list(history.path.parent.glob(f"{history.path.name}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
    assert "unreadable" in caplog.text


@pytest.mark.parametrize(
    "content",
    [
        [1, 2, 3],
        {"keys": "nope"},
        {"keys": {"x": {"s": ["ten"], "u": 0, "f": 1}}},
        {"keys": {"x": {"s": [1e308], "u": 0, "f": 1}}},
        {"keys": {"x": {"s": [1.0], "u": "yesterday", "f": 1}}},
        {"keys": {"x": {"s": [True], "u": 0, "f": 1}}},
        {"keys": {"x": None}},
    ],
)
def test_wrong_types_are_ignored(history, content):
    history.path.write_text(json.dumps(content))
    history.record(*KEY, "pulling", 10)
    assert history.samples(*KEY, "pulling") == [10]
    assert history.estimates(*KEY)["pulling"].learned is False
    stored = json.loads(history.path.read_text())
    assert list(stored["keys"]) == [json.dumps(["", *KEY, "pulling"], separators=(",", ":"))]


def test_good_entries_survive_next_to_bad_ones(history):
    good = json.dumps(["", *KEY, "creating"], separators=(",", ":"))
    history.path.write_text(
        json.dumps({"keys": {good: {"s": [4, 5, 6], "u": 1, "f": 1}, "bad": {"s": "x"}}})
    )
    assert history.estimate(*KEY, "creating").median == 5


def test_a_huge_file_is_moved_aside_unread_and_the_new_one_stays_bounded(tmp_path):
    history = PhaseHistory(tmp_path / "history.json", max_bytes=20_000)
    history.path.write_text(json.dumps({"keys": {}, "junk": "x" * 100_000}))
    history.record(*KEY, "pulling", 10)
    assert history.samples(*KEY, "pulling") == [10]
    assert history.path.stat().st_size <= 20_000
    assert list(tmp_path.glob("history.json.corrupt-*"))


def test_the_file_stays_bounded_in_keys_and_bytes(tmp_path):
    history = PhaseHistory(tmp_path / "history.json", max_keys=30, max_bytes=8_000)
    for index in range(120):
        history.record_many(
            "p", "r", f"image-{index}", {"queued": 1.0, "creating": 4.0, "pulling": 15.0 + index}
        )
    stored = json.loads(history.path.read_text())
    assert history.path.stat().st_size <= 8_000
    assert 0 < len(stored["keys"]) <= 30
    # the most recently updated keys are the ones kept
    assert history.samples("p", "r", "image-119", "pulling") == [134.0]
    assert history.samples("p", "r", "image-0", "pulling") == []


def test_threads_recording_at_once_lose_nothing(history):
    import threading

    def work(name: str) -> None:
        for index in range(20):
            history.record("p", "r", f"{name}-{index}", "pulling", float(index))

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = json.loads(history.path.read_text())
    assert len(stored["keys"]) == 80


def test_two_processes_recording_at_once_lose_nothing(history):
    script = textwrap.dedent(
        f"""
        import sys
        from novita_notebook.waiting.history import PhaseHistory
        history = PhaseHistory({str(history.path)!r})
        name = sys.argv[1]
        for index in range(25):
            history.record("p", "r", name, "pulling", float(index))
            history.record("p", "r", f"{{name}}-{{index}}", "creating", 1.0)
        """
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("one", "two")]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    for name in ("one", "two"):
        assert history.samples("p", "r", name, "pulling") == [float(i) for i in range(25)]
    stored = json.loads(history.path.read_text())
    assert len(stored["keys"]) == 2 + 50
