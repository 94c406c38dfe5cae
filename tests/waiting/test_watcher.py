"""Novita.watch against the sandbox: one list call per tick, events, frames, callbacks that
fail, API faults and a sandbox restart, stopping, and the watcher running beside a wait."""

from __future__ import annotations

import math
import threading
import time

import pandas as pd
import pytest

from novita_notebook.errors import InvalidStateError, NotFoundError, TimeoutError, ValidationError
from novita_notebook.models import Instance, StatusChange
from novita_notebook.waiting import Backoff, Watcher
from tests.waiting.watch_helpers import BIG_IMAGE, FAST


def _list_calls(sandbox):
    return [r for r in sandbox.requests() if r["path"].endswith("/gpu/instances")]


def _get_calls(sandbox):
    return [r for r in sandbox.requests() if r["path"].endswith("/gpu/instance")]


def _ticks_at_least(n):
    return lambda watcher: watcher.ticks >= n


@pytest.mark.parametrize(("page_size", "per_tick"), [(100, 1), (20, 3)])
def test_fifty_instances_cost_one_list_call_per_page_and_no_gets(
    client, sandbox, make_instance, thread_guard, page_size, per_tick
):
    sandbox.set_stock(200)
    ids = [make_instance(f"fleet-{i}") for i in range(50)]
    sandbox.clear_requests()
    with client.watch(ids, interval=0.05, page_size=page_size) as watcher:
        watcher.wait_for(_ticks_at_least(5), timeout=30)
    ticks = watcher.ticks
    assert per_tick == math.ceil(50 / page_size)
    assert watcher.calls == ticks * per_tick
    # A tick in flight when stop() was called may add its calls; never more.
    assert len(_list_calls(sandbox)) <= (ticks + 1) * per_tick
    assert _get_calls(sandbox) == []
    assert set(watcher.latest) == set(ids)
    assert len(watcher.frame) == 50


def test_events_frame_and_latest_follow_the_lifecycle(client, make_instance, thread_guard):
    instance_id = make_instance("watched", image=BIG_IMAGE)
    seen: list[StatusChange] = []
    with client.watch([instance_id], interval=0.01, callbacks=seen.append) as watcher:
        watcher.wait_for("running", timeout=30)
        client.api.delete_instance(instance_id)
        watcher.wait_for("removed", timeout=30)
    events = watcher.events
    assert list(events.columns) == [
        "time",
        "instance_id",
        "name",
        "old_status",
        "new_status",
        "phase",
    ]
    statuses = list(events["new_status"])
    assert statuses[0] in {"toCreate", "creating", "pulling"}
    assert pd.isna(events["old_status"].iloc[0])  # the first sighting
    assert (
        str(events["time"].dtype).startswith("datetime64")
        and events["time"].is_monotonic_increasing
    )
    assert "running" in statuses and statuses[-1] == "removed"
    assert statuses.index("running") < statuses.index("removed")
    # Consecutive events chain: each old status is the previous new status.
    assert list(events["old_status"].iloc[1:]) == statuses[:-1]
    assert [e.new_status for e in seen] == statuses  # callbacks got the same events
    frame = watcher.frame
    assert list(frame["instance_id"]) == [instance_id]
    assert frame["status"].iloc[0] == "removed" and frame["phase"].iloc[0] == "removed"
    assert watcher.latest[instance_id].status == "removed"


def test_disappearing_and_unknown_instances_become_removed_events(client, make_instance):
    instance_id = make_instance("vanishing")
    client.wait(instance_id, poll=FAST, timeout=30)
    stale = Instance(id="0000-never-existed", name="ghost", status="running")
    release, holding = threading.Event(), threading.Event()

    def hold_on_running(event):
        # Park the watcher thread while the instance is deleted and leaves the listing, so
        # the next tick sees it gone rather than its brief "removed" record.
        if event.instance_id == instance_id and not release.is_set():
            holding.set()
            release.wait(30)

    watcher = client.watch([instance_id, stale], interval=0.02, callbacks=[hold_on_running])
    try:
        assert holding.wait(30)
        client.api.delete_instance(instance_id)
        deadline = time.monotonic() + 20
        while any(item["id"] == instance_id for item in client.api.list_instances()):
            assert time.monotonic() < deadline, "the removed instance never left the listing"
            time.sleep(0.02)
        release.set()
        watcher.wait_for("removed", timeout=30, instance=instance_id)
    finally:
        release.set()
        watcher.stop()
    assert watcher.latest[stale.id].status == "removed"
    assert watcher.latest[stale.id].name == "ghost"  # named after the handle we were given
    mine = [e for e in watcher.event_list if e.instance_id == instance_id]
    assert [(e.old_status, e.new_status) for e in mine] == [
        (None, "running"),
        ("running", "removed"),
    ]
    assert mine[-1].name == "vanishing" and mine[-1].phase == "removed"


def test_watch_all_sees_new_instances(client, make_instance, thread_guard):
    first = make_instance("all-1")
    with client.watch(interval=0.02) as watcher:
        watcher.wait_for(lambda w: first in w.latest, timeout=30)
        second = make_instance("all-2")
        watcher.wait_for(lambda w: second in w.latest, timeout=30)
        watcher.wait_for("running", timeout=30)
    assert {first, second} <= set(watcher.latest)


def test_watcher_keeps_working_while_the_main_thread_waits(client, make_instance, thread_guard):
    background = make_instance("bg-1", image=BIG_IMAGE)
    foreground = make_instance("fg-1", image=BIG_IMAGE)
    with client.watch([background], interval=0.01) as watcher:
        ticks_before = watcher.ticks
        started = time.monotonic()
        client.wait(foreground, poll=FAST, timeout=30)  # blocks this thread
        finished = time.monotonic()
        assert watcher.ticks > ticks_before + 3
        assert watcher.running
        watcher.wait_for("running", timeout=30)
    assert finished - started > 0.05
    assert len(watcher.event_list) >= 2  # e.g. pulling → running, seen while we were blocked


def test_a_failing_callback_is_reported_and_does_not_kill_the_watcher(
    client, make_instance, thread_guard, caplog
):
    instance_id = make_instance("cb-fail", image=BIG_IMAGE)
    good: list[StatusChange] = []
    notified: list[StatusChange] = []

    def broken(event):
        raise RuntimeError(f"callback bug on {event.new_status}")

    with client.watch(
        [instance_id], interval=0.01, callbacks=[broken, good.append], notify=notified.append
    ) as watcher:
        watcher.wait_for("running", timeout=30)
        assert watcher.running
    assert len(watcher.errors) == len(good) >= 2  # one error per event, none lost
    assert all(isinstance(e["error"], RuntimeError) for e in watcher.errors)
    assert "broken" in watcher.errors[0]["source"]
    assert [e.new_status for e in notified] == [e.new_status for e in good]
    assert "callback bug" in caplog.text
    assert "callback errors" in watcher._repr_html_()


def test_api_errors_back_off_and_recover(fast_client, sandbox, make_instance, thread_guard):
    make_instance("faulty")
    backoff = Backoff(initial=0.05, cap=0.2)
    with fast_client.watch(interval=0.02, error_backoff=backoff) as watcher:
        watcher.wait_for(_ticks_at_least(1), timeout=30)
        sandbox.set_faults(errorRate=1.0)
        watcher.wait_for(lambda w: w.consecutive_errors >= 3, timeout=30)
        assert watcher.last_error is not None
        assert "failing" in repr(watcher)
        sandbox.clear_requests()
        time.sleep(0.5)
        # Backing off: far fewer calls than one per 0.02 s interval (transport retries included).
        assert len(_list_calls(sandbox)) < 0.5 / 0.02
        sandbox.clear_faults()
        ticks = watcher.ticks
        watcher.wait_for(lambda w: w.ticks > ticks + 2 and w.consecutive_errors == 0, timeout=30)
        assert watcher.running
    assert watcher.error_count >= 3
    assert watcher.last_error is not None  # kept after recovery, for the record


def test_sandbox_restart_mid_watch_recovers(fast_client, sandbox, make_instance, thread_guard):
    instance_id = make_instance("restart-me")
    backoff = Backoff(initial=0.05, cap=0.2)
    with fast_client.watch([instance_id], interval=0.02, error_backoff=backoff) as watcher:
        watcher.wait_for("running", timeout=30)
        sandbox.restart(downtime=0.5)
        ticks = watcher.ticks
        watcher.wait_for(lambda w: w.ticks > ticks + 2 and w.consecutive_errors == 0, timeout=30)
        assert watcher.running
        assert watcher.error_count >= 1  # the downtime was noticed, not slept through
        assert watcher.latest[instance_id].status == "running"


def test_stop_when_terminal_stops_by_itself(client, make_instance, thread_guard):
    ids = [make_instance(f"term-{i}") for i in range(3)]
    watcher = client.watch(ids, interval=0.01, stop_when_terminal=True)
    try:
        watcher.thread.join(30)
        assert not watcher.thread.is_alive()
        assert {i.status for i in watcher.latest.values()} == {"running"}
        assert watcher.stopped_reason == "all watched instances are terminal"
        assert watcher.state == "stopped"
    finally:
        watcher.stop()


def test_stop_joins_and_leaves_no_thread(client, make_instance):
    make_instance("stop-me")
    before = set(threading.enumerate())
    watcher = client.watch(interval=0.01)
    assert watcher.running and watcher.thread.daemon
    watcher.wait_for(_ticks_at_least(2), timeout=30)
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 5
    assert not watcher.thread.is_alive()
    assert set(threading.enumerate()) <= before
    ticks = watcher.ticks
    time.sleep(0.1)
    assert watcher.ticks == ticks  # no polling after stop
    with pytest.raises(InvalidStateError):
        watcher.wait_for(lambda w: False, timeout=1)


def test_wait_for_times_out_with_last_status(client, make_instance, thread_guard):
    instance_id = make_instance("never-exits")
    with client.watch([instance_id], interval=0.02) as watcher:
        with pytest.raises(TimeoutError) as info:
            watcher.wait_for("exited", timeout=0.3, instance=instance_id)
        assert info.value.last_status in {"toCreate", "creating", "pulling", "running"}
        with pytest.raises(ValidationError) as bad:
            watcher.wait_for("sleeping", timeout=1)
        assert bad.value.field == "condition"


def test_repr_and_html_show_state_without_secrets(client, make_instance, thread_guard):
    instance_id = make_instance("shown", ports="8888/http")
    password = client.instance(instance_id).ssh_password
    assert password
    with client.watch([instance_id], interval=0.01) as watcher:
        watcher.wait_for("running", timeout=30)
        text = repr(watcher)
        markup = watcher._repr_html_()
    assert text.startswith("<Watcher running, 1 instances")
    assert "shown" in markup and instance_id in markup and "running" in markup
    assert "novita-running" in markup  # the running phase's badge
    assert "events" in markup and "list calls" in markup
    assert password not in markup and password not in text
    assert "stopped" in repr(watcher)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": "5"}, "interval"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"callbacks": [print, 3]}, "callbacks"),
        ({"notify": "http://example.invalid"}, "notify"),
        ({"instances": []}, "instances"),
        ({"instances": [42]}, "instances"),
    ],
)
def test_bad_watch_arguments(client, kwargs, field):
    before = threading.active_count()
    with pytest.raises(ValidationError) as info:
        client.watch(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)
    assert threading.active_count() == before


def test_watcher_cannot_be_started_twice(client, thread_guard):
    with client.watch(interval=0.05) as watcher, pytest.raises(InvalidStateError):
        watcher.start()
    assert isinstance(watcher, Watcher)


def test_names_are_resolved_once_with_one_listing(client, sandbox, make_instance, thread_guard):
    first = make_instance("named-1")
    make_instance("named-2")
    sandbox.clear_requests()
    with client.watch(["named-1", "named-2", first], interval=0.05) as watcher:
        resolved = set(watcher.latest) or None
        watcher.wait_for(_ticks_at_least(1), timeout=30)
    assert resolved is None or resolved <= set(watcher.latest)
    assert len(watcher.latest) == 2 and first in watcher.latest
    assert _get_calls(sandbox) == []
    with pytest.raises(NotFoundError, match="nobody"):
        client.watch(["nobody"])


def test_notify_with_a_real_webhook_notifier(client, make_instance, thread_guard):
    from novita_notebook.webhooks import Notifier, Receiver

    secret = "watch-test-secret-0123456789abcdef-xyz"
    instance_id = make_instance("hooked", image=BIG_IMAGE)
    with Receiver(secret) as receiver:
        notifier = Notifier(receiver.url, secret, timeout=5)
        with client.watch([instance_id], interval=0.01, notify=notifier) as watcher:
            watcher.wait_for("running", timeout=30)
        deadline = time.monotonic() + 10
        while len(receiver.events) < len(watcher.event_list) and time.monotonic() < deadline:
            time.sleep(0.02)
        received = receiver.events
    sent = [e.new_status for e in watcher.event_list]
    assert list(received["status"]) == sent and sent[-1] == "running"
    assert not watcher.errors and not notifier.failures


def test_wait_for_returns_only_after_the_ticks_callbacks_ran(client, make_instance, thread_guard):
    instance_id = make_instance("slow-callback")
    delivered: list[str] = []

    def slow_callback(change: StatusChange) -> None:
        if change.new_status == "running":
            time.sleep(0.5)  # a webhook or a widget update taking its time
        delivered.append(change.new_status)

    with client.watch([instance_id], interval=0.01, callbacks=[slow_callback]) as watcher:
        # Catch the moment the tick has recorded "running" but is still delivering it.
        deadline = time.monotonic() + 30
        while watcher.latest.get(instance_id) is None or (
            watcher.latest[instance_id].status != "running"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        watcher.wait_for("running", timeout=30)
        # The event that made the condition true has been handed over already.
        assert delivered and delivered[-1] == "running"
