"""Receiver over real loopback HTTP: Notifier round trip, the status of every kind of bad
request, duplicates, callbacks off the request thread, the events frame, and the CLI.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from webhook_helpers import SECRET, SSH_PASSWORD, make_change

from novita_notebook.errors import ValidationError
from novita_notebook.webhooks import EVENT_COLUMNS, Notifier, Receiver, build_payload, sign


def signed(at: float | None = None, secret: str = SECRET) -> tuple[bytes, dict]:
    moment = time.time() if at is None else at
    body = json.dumps(build_payload(make_change(), timestamp=moment)).encode()
    return body, {**sign(body, secret, moment), "Content-Type": "application/json"}


def post(receiver: Receiver, body: bytes, headers: dict) -> requests.Response:
    return requests.post(receiver.url, data=body, headers=headers, timeout=10)


def raw_request(receiver: Receiver, head: bytes) -> int:
    """Send hand-written request bytes; the HTTP status of the answer."""
    with socket.create_connection((receiver.host, receiver.port), timeout=10) as sock:
        sock.sendall(head)
        answer = sock.makefile("rb").readline()
    return int(answer.split()[1])


@pytest.fixture
def receiver():
    with Receiver(SECRET) as server:
        yield server


def test_notifier_to_receiver_round_trip(receiver):
    seen: list[dict] = []
    receiver.add_callback(seen.append)
    with Notifier(receiver.url, SECRET) as notifier:
        assert notifier.send(make_change("pulling", "creating"))
        assert notifier.send(make_change("running", "pulling"))
    first = receiver.queue.get(timeout=5)
    second = receiver.queue.get(timeout=5)
    assert (first["status"], second["status"]) == ("pulling", "running")
    assert second["instance"]["sshCommand"] == "ssh root@host.example -p 30022"
    frame = receiver.events
    assert list(frame.columns) == list(EVENT_COLUMNS)
    assert list(frame["event"]) == ["instance.pulling", "instance.running"]
    assert list(frame["previousStatus"]) == ["creating", "pulling"]
    assert str(frame["received_at"].dtype).startswith("datetime64")
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [p["status"] for p in seen] == ["pulling", "running"]
    assert receiver.rejected == {}


def test_background_notifier_to_receiver(receiver):
    notifier = Notifier(receiver.url, SECRET, background=True)
    for status in ("toCreate", "creating", "pulling", "running"):
        notifier(make_change(status))
    assert notifier.flush(timeout=10)
    notifier.close()
    assert list(receiver.events["status"]) == ["toCreate", "creating", "pulling", "running"]


def test_a_notifier_with_another_secret_is_refused_and_not_retried(receiver):
    with Notifier(receiver.url, "a-completely-different-secret", max_attempts=3) as notifier:
        assert notifier.send(make_change()) is False
    assert (notifier.failures[0]["status"], notifier.failures[0]["attempts"]) == (401, 1)
    assert len(receiver.events) == 0 and receiver.rejected == {"bad_signature": 1}


def test_duplicates_are_answered_200_and_dropped(receiver):
    body, headers = signed()
    first, second = post(receiver, body, headers), post(receiver, body, headers)
    assert first.status_code == 200 and "duplicate" not in first.json()
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert len(receiver.events) == 1 and receiver.queue.qsize() == 1
    assert receiver.rejected == {"duplicate": 1}


@pytest.mark.parametrize(
    "attack, status, reason",
    [
        ("forged", 401, "bad_signature"),
        ("tampered", 401, "bad_signature"),
        ("truncated", 401, "bad_signature"),
        ("replayed", 401, "replay"),
        ("future", 401, "future"),
        ("unsigned", 401, "missing_signature"),
        ("not-json", 400, "bad_json"),
    ],
)
def test_bad_events_get_the_right_status_and_are_counted(receiver, attack, status, reason):
    body, headers = signed()
    if attack == "forged":
        body, headers = signed(secret="someone-elses-secret-value")
    elif attack == "tampered":
        body = body.replace(b"inst-42", b"inst-66")
    elif attack == "truncated":
        body = body[:-10]
    elif attack == "replayed":
        body, headers = signed(at=time.time() - 3600)
    elif attack == "future":
        body, headers = signed(at=time.time() + 3600)
    elif attack == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif attack == "not-json":
        body = b"<xml>not json</xml>"
        headers = sign(body, SECRET)
    response = post(receiver, body, headers)
    assert response.status_code == status
    assert response.json()["reason"] == reason
    assert SECRET not in response.text
    assert receiver.rejected == {reason: 1}
    assert len(receiver.events) == 0 and receiver.queue.empty()


def test_oversized_body_gets_413_before_the_body_is_read():
    with Receiver(SECRET, max_body=1000) as small:
        # Only the headers are sent: the answer must come without waiting for the body.
        head = (
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000000\r\n\r\n"
        )
        assert raw_request(small, head) == 413
        assert small.rejected == {"too_large": 1}
        body, headers = signed()
        assert post(small, body, headers).status_code == 200  # a normal one still fits


def test_missing_or_bad_content_length_is_refused(receiver):
    no_length = b"POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert raw_request(receiver, no_length) == 411
    bad = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"
    assert raw_request(receiver, bad) == 400
    chunked = b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert raw_request(receiver, chunked) == 411


def test_a_body_shorter_than_promised_is_refused(receiver):
    with socket.create_connection((receiver.host, receiver.port), timeout=15) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)  # the client gives up after 2 of 100 bytes
        answer = sock.makefile("rb").readline()
    assert int(answer.split()[1]) == 400


def test_routes_methods_and_health(receiver):
    base = receiver.url.rsplit("/", 1)[0]
    assert requests.get(base + "/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(receiver.url, timeout=5).status_code == 405
    assert requests.put(receiver.url, data=b"{}", timeout=5).status_code == 405
    assert requests.delete(receiver.url, timeout=5).headers["Allow"] == "POST"
    assert requests.post(base + "/other", data=b"{}", timeout=5).status_code == 404
    assert requests.get(base + "/other", timeout=5).status_code == 404
    conn = http.client.HTTPConnection(receiver.host, receiver.port, timeout=5)
    conn.request("BREW", "/webhook")
    assert conn.getresponse().status == 405
    conn.close()
    body, headers = signed()
    assert requests.post(receiver.url + "?source=test", data=body, headers=headers, timeout=5).ok


def test_slow_callbacks_do_not_delay_the_answer():
    release = threading.Event()
    started = threading.Event()

    def slow(payload):
        started.set()
        release.wait(10)

    def broken(payload):
        raise RuntimeError("callback bug")

    with Receiver(SECRET, callbacks=[broken, slow]) as receiver:
        body, headers = signed()
        began = time.perf_counter()
        assert post(receiver, body, headers).status_code == 200
        assert time.perf_counter() - began < 1.0  # the callback blocks for up to 10 s
        assert started.wait(5)
        body, headers = signed()
        assert post(receiver, body, headers).status_code == 200  # still answering
        release.set()
        deadline = time.monotonic() + 5
        while receiver.callback_errors < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.callback_errors == 2
        assert len(receiver.events) == 2


def test_secret_never_shown_and_settings_validated(monkeypatch, caplog):
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    with Receiver() as receiver:  # the secret from the environment
        body, headers = signed()
        assert post(receiver, body, headers).status_code == 200
        post(receiver, b"junk", {"X-Webhook-Signature": "sha256=" + "0" * 64})
        assert SECRET not in repr(receiver)
    assert SECRET not in caplog.text and SSH_PASSWORD not in caplog.text
    monkeypatch.delenv("WEBHOOK_SECRET")
    for kwargs, field in [
        ({}, "secret"),
        ({"secret": SECRET, "path": "webhook"}, "path"),
        ({"secret": SECRET, "port": 70000}, "port"),
        ({"secret": SECRET, "tolerance": 0}, "tolerance"),
        ({"secret": SECRET, "callbacks": [42]}, "callbacks"),
    ]:
        with pytest.raises(ValidationError) as caught:
            Receiver(**kwargs)
        assert caught.value.field == field


def test_cli_receiver_prints_events_and_stops_cleanly(tmp_path):
    env = {**os.environ, "MY_HOOK_SECRET": SECRET}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "novita_notebook",
            "webhook-receiver",
            "--port",
            "0",
            "--secret-env",
            "MY_HOOK_SECRET",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = proc.stdout.readline()
        assert banner.startswith("Listening on http://127.0.0.1:")
        url = banner.split()[2]
        with Notifier(url, SECRET) as notifier:
            assert notifier.send(make_change("running", "pulling"))
        line = proc.stdout.readline()
        assert "instance.running" in line and "demo-1" in line and "pulling -> running" in line
        assert SECRET not in banner + line
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "1 event(s) accepted" in out


def test_cli_without_the_secret_fails_clearly():
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOK_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "novita_notebook", "webhook-receiver", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 2
    assert "WEBHOOK_SECRET" in done.stderr


def test_watcher_events_reach_the_receiver_end_to_end(client):
    """A real watcher over the sandbox notifies through a background Notifier."""
    with Receiver(SECRET) as receiver:
        # With the client, "running" events carry SSH/Jupyter details the list view lacks.
        notifier = Notifier(receiver.url, SECRET, background=True, client=client)
        instance = client.create("hooked-1", "4090")
        watcher = client.watch([instance.id], interval=0.05, notify=notifier)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if "instance.running" in set(receiver.events["event"]):
                    break
                time.sleep(0.05)
        finally:
            watcher.stop()
            notifier.close()
        events = receiver.events
        assert "instance.running" in set(events["event"])
        assert set(events["instanceId"]) == {instance.id}
        assert events["previousStatus"].isna().iloc[0]  # the first sighting has none
        running = [p for p in list(receiver.queue.queue) if p["status"] == "running"][0]
        assert running["instance"]["region"] and running["instance"]["sshCommand"]
        assert running["instance"]["jupyterUrl"]
        assert instance.ssh_password is None or instance.ssh_password not in json.dumps(running)
        assert receiver.rejected == {} and notifier.failures == []
