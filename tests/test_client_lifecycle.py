"""close() stops what the client started, and lifecycle calls are idempotent
and consistent: stopping what is stopped and deleting what is gone succeed and say so."""

from __future__ import annotations

import logging
import time

import pytest

from novita_notebook import Instance, Novita
from novita_notebook.errors import NotFoundError
from novita_notebook.webhooks import Notifier
from tests.sandbox_view import novita_calls, wait_until


def test_close_stops_watchers_and_notifiers_it_started(sandbox, caplog):
    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
    notifier = Notifier.from_client(
        client, url="http://127.0.0.1:9/hook", secret="s" * 32, background=True
    )
    first = client.watch(interval=0.05)
    second = client.watch(interval=0.05, notify=notifier)
    wait_until(lambda: first.ticks >= 2 and second.ticks >= 2)
    client.close()
    assert not first.running and not second.running
    assert notifier._closed
    sandbox.clear_requests()
    caplog.set_level(logging.DEBUG)
    time.sleep(0.4)  # many watcher intervals: a live watcher would poll and log errors
    assert novita_calls(sandbox) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_stop_of_a_stopped_instance_succeeds_and_says_so(sandbox, client, caplog):
    inst = client.create("idem-stop", gpu="4090", wait=True, progress="silent")
    stopped = inst.stop()
    assert isinstance(stopped, Instance)
    client.wait(inst, until="exited", progress="silent")
    sandbox.clear_requests()
    caplog.set_level(logging.INFO, logger="novita_notebook")
    again = client.stop("idem-stop")
    assert again.status == "exited"
    assert not [r for r in novita_calls(sandbox) if r["path"].endswith("/instance/stop")]
    assert "already exited" in caplog.text
    started = client.start(inst.id)
    assert started.status != "exited"
    assert client.start(inst.id).id == inst.id  # starting what is starting: no error


def test_delete_is_idempotent_and_returns_an_instance_both_ways(sandbox, client, caplog):
    one = client.create("idem-del-1", gpu="4090", progress="silent")
    two = client.create("idem-del-2", gpu="4090", progress="silent")
    from_handle = one.delete()
    from_client = client.delete("idem-del-2")
    assert isinstance(from_handle, Instance) and isinstance(from_client, Instance)
    assert type(from_handle) is type(from_client)
    caplog.set_level(logging.INFO, logger="novita_notebook")
    # A second delete by name: the name is no longer listed as live.
    again = client.delete("idem-del-2")
    assert again.id == two.id and again.status == "removed"
    assert "already deleted" in caplog.text
    # By id, and through the handle, once the API has forgotten it (404).
    client.wait(one, until="removed", progress="silent", timeout=60)
    assert client.delete(one.id).status == "removed"
    assert one.delete().status == "removed"
    with pytest.raises(NotFoundError):
        client.delete("never-existed")


def test_second_delete_by_name_from_another_client_uses_the_ledger(sandbox, client):
    made = client.create("idem-ledger", gpu="4090", progress="silent")
    client.api.delete_instance(made.id)  # deleted behind the package's back
    other = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
    try:
        gone = other.delete("idem-ledger")
        assert gone.id == made.id and gone.status in {"removed", "toRemove", "removing"}
    finally:
        other.close()


def test_delete_by_id_after_a_delete_by_name_once_the_api_forgot_it(sandbox, client, caplog):
    made = client.create("idem-by-id", gpu="4090", progress="silent")
    client.delete("idem-by-id")

    def forgotten() -> bool:
        try:
            client.api.get_instance(made.id)
        except NotFoundError:
            return True
        return False

    wait_until(forgotten, timeout=30)
    caplog.set_level(logging.INFO, logger="novita_notebook")
    again = client.delete(made.id)  # what inst.delete() sends: the id, not the name
    assert again.id == made.id and again.status == "removed"
    assert "already deleted" in caplog.text
