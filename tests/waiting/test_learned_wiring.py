"""The learned schedule wired in: real waits and watchers against the sandbox record phase
durations, the next waits use them (fewer calls), fixed paces never learn, and the ETA shows.
"""

from __future__ import annotations

import time

import pytest

from novita_notebook import Novita
from novita_notebook.models import Instance
from novita_notebook.sandbox import Sandbox
from novita_notebook.waiting.backoff import Backoff
from novita_notebook.waiting.history import PhaseHistory
from novita_notebook.waiting.learned import history_of

SPEED = 20.0  # a create takes ~1.1 s: long enough for a schedule to matter, short for a test
IMAGE = "ubuntu:22.04"


@pytest.fixture
def slow_client():
    with Sandbox(speed=SPEED, seed=3, phase_jitter=0.0, pending_rate=0) as box:
        box.set_stock(1000)
        client = Novita(api_key=box.api_key, api_url=box.url)
        try:
            yield client, box
        finally:
            client.close()


def polls_of(box: Sandbox, instance_id: str) -> int:
    return sum(
        1
        for r in box.requests()
        if r["method"] == "GET"
        and r["path"].endswith("/gpu/instance")
        and instance_id in r["query"]
    )


def samples(client: Novita, inst: Instance, phase: str) -> list[float]:
    history = history_of(client)
    assert isinstance(history, PhaseHistory)
    return history.samples(inst.product_id or "", inst.region or "", IMAGE, phase)


def create(client: Novita, name: str) -> Instance:
    return client.create(name, gpu="RTX 3090", image=IMAGE, region="US-CA-06")


def test_waits_record_history_and_later_waits_poll_less(slow_client):
    client, box = slow_client
    template = Backoff().scaled(1 / SPEED)  # today's schedule on the sandbox's clock
    calls = []
    for index in range(6):
        inst = create(client, f"learn-{index}")
        box.clear_requests()
        done = client.wait(inst, poll=template, progress="silent", timeout=60)
        assert done.status == "running"
        calls.append(polls_of(box, inst.id))
        if index == 0:
            # the first wait knew nothing and recorded every phase it saw begin
            assert len(samples(client, inst, "pulling")) == 1
    assert len(samples(client, inst, "pulling")) == 6
    recorded = samples(client, inst, "pulling")
    expected = 15.0 / SPEED  # the sandbox's documented pull for a small image
    assert all(0.5 * expected < s < 2.5 * expected for s in recorded), recorded
    # three samples make a history: the last waits poll around the expected arrival
    # (measured: 12, 12, 12, then 2 each: the create() handle is the first poll and the
    # next one lands at the expected arrival)
    assert max(calls[-3:]) * 2 <= calls[0], calls


def test_fixed_pace_waits_do_not_learn(slow_client):
    client, _ = slow_client
    inst = create(client, "fixed")
    client.wait(inst, poll=0.02, progress="silent", timeout=60)
    assert samples(client, inst, "pulling") == []


def test_watcher_records_the_transitions_it_sees(slow_client):
    client, _ = slow_client
    inst = create(client, "watched")
    first_seen: list[str] = []
    with client.watch(
        [inst], interval=0.02, callbacks=lambda e: first_seen.append(e.new_status)
    ) as watcher:
        seen_eta = None
        deadline = time.monotonic() + 20
        while seen_eta is None and time.monotonic() < deadline:
            latest = watcher.latest.get(inst.id)
            if latest is not None and latest.status == "pulling":
                seen_eta = watcher.eta(inst.id)
            time.sleep(0.005)
        watcher.wait_for("running", instance=inst.id, timeout=30)
    assert seen_eta is not None and seen_eta[0] > 0 and not seen_eta[2]  # prior only
    # A phase whose start was not seen is never a sample: pulling counts when the first tick
    # saw the instance before it (on a loaded machine the first tick may come late).
    expected = 0 if first_seen[0] == "pulling" else 1
    assert len(samples(client, inst, "pulling")) == expected


def test_progress_line_says_no_history_then_ready_in(slow_client, capsys):
    client, _ = slow_client
    client.wait(create(client, "first"), poll=Backoff().scaled(1 / SPEED), progress="text")
    first = capsys.readouterr().out
    assert "no history yet" in first and "ready in" not in first
    for index in range(3):
        client.wait(create(client, f"more-{index}"), progress="silent", timeout=60)
    capsys.readouterr()
    client.wait(create(client, "last"), poll=Backoff().scaled(1 / SPEED), progress="text")
    last = capsys.readouterr().out
    assert "ready in ~" in last and "no history yet" not in last


def test_instance_eta_counts_down_and_ends_at_running(slow_client):
    client, _ = slow_client
    inst = create(client, "eta")
    assert inst.eta is not None and inst.eta > 0  # the documented times, scaled by nothing
    done = client.wait(inst, progress="silent", timeout=60)
    assert done.eta is None
    assert Instance(id="x", name="x", status="exited").eta is None


def test_learning_can_be_switched_off_per_client_config(slow_client, monkeypatch):
    client, _ = slow_client
    monkeypatch.setattr(type(client.config), "learn_waits", False, raising=False)
    try:
        assert history_of(client) is None
        inst = create(client, "off")
        client.wait(inst, poll=Backoff().scaled(1 / SPEED), progress="silent", timeout=60)
    finally:
        monkeypatch.undo()
    assert samples(client, inst, "pulling") == []


def test_the_bar_and_the_watcher_table_show_the_eta(slow_client):
    from novita_notebook.notebook.progress import WaitProgress

    client, _ = slow_client
    progress = WaitProgress("bar")
    shown: list[str] = []

    def update(instance: Instance, elapsed: float, phase: str) -> None:
        progress.update(instance, elapsed, phase)
        shown.append(progress.eta)

    client.wait(create(client, "bar"), poll=Backoff().scaled(1 / SPEED), progress=update)
    assert any(text.startswith("no history yet: ~") for text in shown), shown
    assert shown[-1] == ""  # running: nothing ahead
    assert "no history yet" in repr_during(client)


def repr_during(client: Novita) -> str:
    """The watcher's HTML table while an instance is on its way to running."""
    inst = create(client, "table")
    with client.watch([inst], interval=0.02) as watcher:
        deadline = time.monotonic() + 20
        markup = ""
        while time.monotonic() < deadline and "no history yet" not in markup:
            markup = watcher._repr_html_()
            time.sleep(0.01)
        watcher.wait_for("running", instance=inst.id, timeout=30)
    return markup


def test_a_corrupt_history_never_breaks_a_wait(slow_client):
    client, _ = slow_client
    path = history_of(client).path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00{not json" * 1000)
    inst = create(client, "corrupt")
    done = client.wait(inst, poll=Backoff().scaled(1 / SPEED), progress="silent", timeout=60)
    assert done.status == "running"
    assert len(samples(client, inst, "pulling")) == 1  # a fresh history took its place
    assert path.stat().st_size < 10_000
    assert list(path.parent.glob(f"{path.name}.corrupt-*"))  # the broken one kept aside


def test_a_wait_and_a_watcher_on_one_instance_record_it_once(slow_client):
    client, _ = slow_client
    inst = create(client, "both")
    with client.watch([inst], interval=0.02) as watcher:
        client.wait(inst, poll=Backoff().scaled(1 / SPEED), progress="silent", timeout=60)
        watcher.wait_for("running", instance=inst.id, timeout=30)
    assert len(samples(client, inst, "pulling")) == 1
