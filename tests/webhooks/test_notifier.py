"""Notifier: payload and headers as specified, retries on 5xx and network errors only,
a background sender that never blocks the caller, failures kept and logged without secrets.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import datetime
from types import SimpleNamespace

import pytest
from webhook_helpers import SECRET, SSH_PASSWORD, CountingServer, DroppingServer, make_change

from novita_notebook import __version__
from novita_notebook.errors import ValidationError
from novita_notebook.webhooks import Notifier, verify_signature


def test_payload_headers_and_connection_info(change):
    with CountingServer([200]) as server, Notifier(server.url, SECRET) as notifier:
        assert notifier.send(change) is True
    hit = server.hits[0]
    headers = {k.lower(): v for k, v in hit["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"novita-notebook/{__version__}"
    payload = verify_signature(hit["body"], hit["headers"], SECRET)
    assert payload["event"] == "instance.running"
    assert (payload["instanceId"], payload["name"]) == ("inst-42", "demo-1")
    assert (payload["status"], payload["previousStatus"]) == ("running", "pulling")
    assert len(payload["id"]) == 32 and int(payload["id"], 16) >= 0
    stamp = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None and stamp.utcoffset().total_seconds() == 0
    assert int(stamp.timestamp()) == int(headers["x-webhook-timestamp"])
    instance = payload["instance"]
    assert instance["region"] == "AS-SGP-02" and instance["gpuNum"] == 2
    assert instance["product"] == "RTX 4090 24GB"
    assert instance["sshCommand"] == "ssh root@host.example -p 30022"
    assert instance["jupyterUrl"].endswith("/lab")
    assert {"port": 8888, "type": "http", "endpoint": "https://inst-42-8888.example/"} in instance[
        "portMappings"
    ]
    assert SSH_PASSWORD not in hit["body"].decode()
    assert "password" not in hit["body"].decode().lower()


def test_event_ids_are_unique_per_change():
    with CountingServer([200]) as server, Notifier(server.url, SECRET) as notifier:
        notifier.send(make_change())
        notifier.send(make_change())
    ids = {json.loads(hit["body"])["id"] for hit in server.hits}
    assert len(ids) == 2


def test_change_without_instance_still_sends_the_basics():
    with CountingServer([200]) as server, Notifier(server.url, SECRET) as notifier:
        assert notifier.send(make_change("exited", None, with_instance=False))
    payload = json.loads(server.hits[0]["body"])
    assert payload["previousStatus"] is None
    assert payload["instance"] == {"id": "inst-42", "name": "demo-1", "status": "exited"}


class _HighestJitter(random.Random):
    """Jitter that always draws the top of its range, so the schedule's ceilings show."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_5xx_is_retried_until_success_with_the_same_event_id(change):
    with CountingServer([503, 500, 200]) as server:
        notifier = Notifier(server.url, SECRET, max_attempts=4, backoff=0.05, rng=_HighestJitter())
        assert notifier.send(change) is True
    assert len(server.hits) == 3
    assert len({json.loads(hit["body"])["id"] for hit in server.hits}) == 1
    gaps = [b["time"] - a["time"] for a, b in zip(server.hits, server.hits[1:], strict=False)]
    # retry.retry_delay: ceilings 0.05 then 0.1 (full jitter, drawn at the top here)
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095
    assert notifier.failures == []


def test_persistent_5xx_gives_up_after_max_attempts(change):
    with CountingServer([502]) as server:
        notifier = Notifier(server.url, SECRET, max_attempts=3, backoff=0.01)
        assert notifier.send(change) is False
    assert len(server.hits) == 3
    failure = notifier.failures[0]
    assert (failure["status"], failure["attempts"], failure["instanceId"]) == (502, 3, "inst-42")


@pytest.mark.parametrize("status", [400, 401, 404, 410, 429])
def test_4xx_is_never_retried(change, status):
    with CountingServer([status, 200]) as server:
        notifier = Notifier(server.url, SECRET, max_attempts=4, backoff=0.01)
        assert notifier.send(change) is False
    assert len(server.hits) == 1
    assert notifier.failures[0]["status"] == status


def test_network_errors_are_retried(change):
    with DroppingServer() as server:
        notifier = Notifier(server.url, SECRET, max_attempts=3, backoff=0.01, timeout=2)
        assert notifier.send(change) is False
        time.sleep(0.05)
    assert server.accepted == 3
    assert notifier.failures[0]["status"] is None and notifier.failures[0]["attempts"] == 3


def test_a_receiver_that_does_not_answer_in_time_is_retried(change):
    with CountingServer([200], delay=0.5) as server:
        notifier = Notifier(server.url, SECRET, max_attempts=2, backoff=0.01, timeout=0.1)
        assert notifier.send(change) is False
    assert len(server.hits) == 2
    failure = notifier.failures[0]
    assert failure["status"] is None and "Timeout" in failure["error"]


def test_background_mode_never_blocks_on_a_slow_receiver():
    with CountingServer([200], delay=0.3) as server:
        notifier = Notifier(server.url, SECRET, background=True)
        started = time.perf_counter()
        for _ in range(3):
            assert notifier(make_change()) is None
        assert time.perf_counter() - started < 0.3  # three 0.3 s sends would take 0.9 s
        assert notifier.flush(timeout=10)
        notifier.close()
    assert len(server.hits) == 3 and notifier.sent == 3


def test_inline_call_sends_now(change):
    with CountingServer([200]) as server, Notifier(server.url, SECRET) as notifier:
        assert notifier(change) is True
        assert len(server.hits) == 1


def test_failures_are_logged_without_the_secret(change, caplog):
    caplog.set_level(logging.DEBUG)
    with CountingServer([500]) as server:
        notifier = Notifier(server.url, SECRET, max_attempts=2, backoff=0.01)
        notifier.send(change)
    with DroppingServer() as dropping:
        Notifier(dropping.url, SECRET, max_attempts=1).send(change)
    assert "not delivered" in caplog.text
    assert SECRET not in caplog.text and SSH_PASSWORD not in caplog.text
    assert SECRET not in repr(notifier) and SECRET not in str(notifier.failures)


def test_defaults_come_from_the_environment(monkeypatch, change):
    with CountingServer([200]) as server:
        monkeypatch.setenv("WEBHOOK_URL", server.url)
        monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
        notifier = Notifier()
        assert notifier.send(change)
    assert verify_signature(server.hits[0]["body"], server.hits[0]["headers"], SECRET)


def test_from_client_uses_the_client_config(change):
    with CountingServer([200]) as server:
        novita = SimpleNamespace(
            config=SimpleNamespace(webhook_url=server.url, webhook_secret=SECRET)
        )
        notifier = Notifier.from_client(novita, max_attempts=1)
        assert notifier.url == server.url and notifier.max_attempts == 1
        assert notifier.send(change)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"secret": SECRET}, "url"),
        ({"url": "ftp://example/x", "secret": SECRET}, "url"),
        ({"url": "http://127.0.0.1:1/x"}, "secret"),
        ({"url": "http://127.0.0.1:1/x", "secret": "tiny"}, "secret"),
        ({"url": "http://127.0.0.1:1/x", "secret": SECRET, "max_attempts": 0}, "max_attempts"),
        ({"url": "http://127.0.0.1:1/x", "secret": SECRET, "timeout": -1}, "timeout"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as caught:
        Notifier(**kwargs)
    assert caught.value.field == field
    assert SECRET not in str(caught.value)


def test_send_rejects_things_that_are_not_status_changes():
    notifier = Notifier("http://127.0.0.1:1/x", SECRET)
    with pytest.raises(ValidationError) as caught:
        notifier.send({"status": "running"})
    assert caught.value.field == "change"


def test_generic_events_carry_their_type_and_data():
    data = {"action": "stop", "in_seconds": 600}
    with CountingServer([200]) as server, Notifier(server.url, SECRET) as notifier:
        sent = notifier.send_event("guard.warning", instance_id="inst-42", name="demo-1", data=data)
        assert sent is True
    payload = verify_signature(server.hits[0]["body"], server.hits[0]["headers"], SECRET)
    assert payload["event"] == "guard.warning" and payload["data"] == data
    assert (payload["instanceId"], payload["name"]) == ("inst-42", "demo-1")
    assert "status" not in payload and "instance" not in payload


def test_generic_events_go_through_the_background_sender_too():
    with CountingServer([200]) as server:
        notifier = Notifier(server.url, SECRET, background=True)
        assert notifier.send_event("spot.reclaim_notice", instance_id="inst-42") is None
        assert notifier.flush(timeout=10)
        notifier.close()
    assert json.loads(server.hits[0]["body"])["event"] == "spot.reclaim_notice"


@pytest.mark.parametrize(
    "kind, data, field",
    [
        ("Guard Warning", {}, "type"),
        ("guard", {}, "type"),
        ("instance.running", {}, "type"),  # status changes are sent as StatusChange
        ("guard.stopped", {"when": object()}, "data"),
    ],
)
def test_bad_generic_events_name_the_field(kind, data, field):
    notifier = Notifier("http://127.0.0.1:1/x", SECRET)
    with pytest.raises(ValidationError) as caught:
        notifier.send_event(kind, data=data)
    assert caught.value.field == field


def test_close_is_idempotent_and_delivers_what_was_queued_first():
    with CountingServer([200], delay=0.1) as server:
        notifier = Notifier(server.url, SECRET, background=True)
        for _ in range(3):
            notifier(make_change())
        notifier.close()
        notifier.close()
    assert len(server.hits) == 3 and notifier.sent == 3 and notifier.failures == []


@pytest.mark.parametrize("background", [False, True])
def test_a_closed_notifier_drops_events_with_a_log_line(change, caplog, background):
    caplog.set_level(logging.WARNING)
    with CountingServer([200]) as server:
        notifier = Notifier(server.url, SECRET, background=background)
        notifier.close()
        assert notifier(change) in (None, False)
        assert notifier.send_event("guard.stopped", instance_id="inst-42") in (None, False)
        assert notifier.send(change) is False
    assert server.hits == []
    assert [f["error"] for f in notifier.failures] == ["the Notifier is closed; event dropped"] * 3
    assert "closed; event dropped" in caplog.text and SECRET not in caplog.text
