"""``await novita.wait_async(...)``: same outcomes as wait, the event loop stays free, and
cancelling the task stops the wait (the instance keeps going)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from novita_notebook.errors import InstanceFailedError, ValidationError
from tests.waiting.watch_helpers import BIG_IMAGE, FAST


def test_wait_async_returns_running_and_leaves_the_loop_free(client, make_instance):
    slow = make_instance("async-slow", image=BIG_IMAGE)
    quick = make_instance("async-quick")

    async def scenario():
        beats = 0
        done = asyncio.Event()

        async def heartbeat():
            nonlocal beats
            while not done.is_set():
                beats += 1
                await asyncio.sleep(0.005)

        beat_task = asyncio.create_task(heartbeat())
        results = await asyncio.gather(
            client.wait_async(slow, poll=FAST, timeout=30),
            client.wait_async("async-quick", poll=FAST, timeout=30),
        )
        done.set()
        await beat_task
        return results, beats

    (first, second), beats = asyncio.run(scenario())
    assert (first.id, first.status) == (slow, "running")
    assert (second.id, second.status) == (quick, "running")
    assert beats > 10  # the loop kept running other tasks while both waits polled


def test_wait_async_raises_the_same_errors(client, make_instance):
    failing = make_instance("async-fail", image="example/does-not-exist:2")
    with pytest.raises(InstanceFailedError, match="does-not-exist"):
        asyncio.run(client.wait_async(failing, poll=FAST, timeout=30))
    with pytest.raises(ValidationError) as info:
        asyncio.run(client.wait_async(failing, until="ready"))
    assert info.value.field == "until"


def test_cancelling_wait_async_stops_cleanly(client, make_instance, capsys):
    instance_id = make_instance("async-cancel", image=BIG_IMAGE)
    before = set(threading.enumerate())

    async def scenario():
        task = asyncio.create_task(client.wait_async(instance_id, poll=FAST, timeout=60))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())  # also shuts the loop's executor down
    message = capsys.readouterr().err
    assert "keeps running" in message and instance_id in message
    assert [t for t in threading.enumerate() if t not in before] == []
    assert client.wait(instance_id, poll=FAST, timeout=30).status == "running"


def test_watcher_as_an_async_context_manager(client, make_instance):
    instance_id = make_instance("async-watched")

    async def scenario():
        async with client.watch([instance_id], interval=0.01) as watcher:
            while watcher.latest.get(instance_id) is None or (
                watcher.latest[instance_id].status != "running"
            ):
                await asyncio.sleep(0.01)
        return watcher

    watcher = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert not watcher.thread.is_alive()
    assert watcher.latest[instance_id].status == "running"
