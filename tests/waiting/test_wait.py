"""Novita.wait against the sandbox over real HTTP: running, reachable, exited, removed,
failures, timeouts, Ctrl-C, progress reporting and validation."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from novita_notebook.errors import (
    InstanceFailedError,
    NotFoundError,
    TimeoutError,
    ValidationError,
)
from novita_notebook.models import Instance
from novita_notebook.waiting import Backoff
from novita_notebook.waiting.probes import HttpProbe
from tests.sandbox_view import novita_calls
from tests.waiting.watch_helpers import BIG_IMAGE, FAST, wait_until_gone


def _gets(sandbox, instance_id=None):
    return [
        r
        for r in sandbox.requests()
        if r["method"] == "GET"
        and r["path"].endswith("/gpu/instance")
        and (instance_id is None or instance_id in r["query"])
    ]


def test_wait_returns_the_running_instance(client, sandbox, make_instance):
    instance_id = make_instance("wait-run")
    final = client.wait(instance_id, poll=FAST, timeout=30)
    assert isinstance(final, Instance)
    assert (final.id, final.name, final.status) == (instance_id, "wait-run", "running")
    assert final.ssh_command  # a fresh detail view, not a list item
    assert _gets(sandbox, instance_id)  # polled with GET /gpu/instance?instanceId=...
    # Already running: the lookup of the id is the only call.
    sandbox.clear_requests()
    assert client.wait(instance_id, poll=FAST, timeout=30).status == "running"
    assert len(sandbox.requests()) == 1


def test_wait_by_name_and_by_instance_handle(client, make_instance):
    instance_id = make_instance("wait-by-name")
    assert client.wait("wait-by-name", poll=FAST, timeout=30).id == instance_id
    handle = client.instance(instance_id)
    assert handle.wait(poll=FAST, timeout=30).status == "running"


def test_pull_failure_raises_at_once_with_the_api_message(client, make_instance):
    instance_id = make_instance("wait-fail", image="example/does-not-exist:1.0")
    started = time.monotonic()
    with pytest.raises(InstanceFailedError) as info:
        client.wait(instance_id, poll=FAST, timeout=60)
    assert time.monotonic() - started < 10  # promptly, not at the timeout
    error = info.value
    assert error.instance_id == instance_id
    assert error.status_error is not None and error.status_error.message in str(error)
    assert "does-not-exist" in str(error)
    assert error.last_status in {"exited", "pulling"}


def test_reachable_waits_for_the_http_endpoint(client, make_instance):
    instance_id = make_instance("wait-reach", ports="8888/http")
    final = client.wait(instance_id, until="reachable", poll=FAST, timeout=30)
    assert final.status == "running"
    endpoint = final.http_endpoints[0]
    assert requests.get(endpoint, timeout=5).status_code == 200


def test_reachable_probes_only_running_instances_until_the_app_answers(client, make_instance):
    instance_id = make_instance("wait-reach-2", ports="8888/http")
    http = HttpProbe(timeout=2.0)
    answers = []

    def recording(instance):
        answers.append((instance.status, http(instance)))
        return answers[-1][1]

    final = client.wait(
        instance_id, until="reachable", probe=recording, poll=Backoff(initial=0.002, cap=0.02)
    )
    assert final.status == "running"
    assert answers and answers[-1] == ("running", True)
    assert {status for status, _ in answers} == {"running"}  # never probed before running
    assert requests.get(final.http_endpoints[0], timeout=5).status_code == 200


def test_reachable_timeout_says_what_it_waits_for(client, make_instance):
    instance_id = make_instance("wait-never", ports="8888/http")
    with pytest.raises(TimeoutError) as info:
        client.wait(instance_id, until="reachable", probe=lambda i: False, poll=FAST, timeout=1.0)
    assert info.value.last_status == "running"
    assert "waiting for" in str(info.value)


def test_reachable_uses_a_custom_probe(client, make_instance):
    instance_id = make_instance("wait-probe")
    answers = iter([False, False, True])
    seen = []

    def probe(instance):
        seen.append(instance.status)
        return next(answers)

    final = client.wait(instance_id, until="reachable", probe=probe, poll=FAST, timeout=30)
    assert final.status == "running"
    assert seen == ["running"] * 3


def test_wait_exited_and_removed(client, make_instance):
    instance_id = make_instance("wait-stop")
    client.wait(instance_id, poll=FAST, timeout=30)
    client.api.stop_instance(instance_id)
    assert client.wait(instance_id, until="exited", poll=FAST, timeout=30).status == "exited"
    client.api.delete_instance(instance_id)
    removed = client.wait(instance_id, until="removed", poll=FAST, timeout=30)
    assert removed.status == "removed" and removed.id == instance_id


def test_removed_also_means_gone(client, sandbox, make_instance):
    instance_id = make_instance("wait-gone")
    handle = client.wait(instance_id, poll=FAST, timeout=30)
    client.api.delete_instance(instance_id)
    wait_until_gone(client, instance_id)  # the removed record lingers briefly, then 404
    assert client.wait(handle, until="removed", poll=FAST, timeout=5).status == "removed"
    assert client.wait(instance_id, until="removed", poll=FAST, timeout=5).status == "removed"
    # Waiting for anything else on a vanished instance fails at once.
    with pytest.raises(InstanceFailedError, match="disappeared"):
        client.wait(handle, until="running", poll=FAST, timeout=30)


def test_waiting_for_running_on_a_deleted_instance_fails(client, make_instance):
    instance_id = make_instance("wait-deleted")
    client.wait(instance_id, poll=FAST, timeout=30)
    handle = client.instance(instance_id)
    client.api.delete_instance(instance_id)
    started = time.monotonic()
    with pytest.raises(InstanceFailedError) as info:
        client.wait(handle, until="running", poll=FAST, timeout=30)
    assert time.monotonic() - started < 10
    assert info.value.last_status in {"toRemove", "removing", "removed", None}


def test_timeout_carries_the_last_status(client, make_instance):
    instance_id = make_instance("wait-slow", image=BIG_IMAGE)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        client.wait(instance_id, poll=FAST, timeout=0.05)
    assert time.monotonic() - started < 5
    assert info.value.last_status in {"toCreate", "creating", "pulling"}
    assert info.value.last_status in str(info.value)
    assert instance_id in info.value.hint


def test_keyboard_interrupt_stops_cleanly(client, make_instance, capsys):
    instance_id = make_instance("wait-ctrl-c", image=BIG_IMAGE)
    threads_before = set(threading.enumerate())
    calls = []

    def impatient(instance, elapsed, phase):
        calls.append(phase)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.wait(instance_id, poll=FAST, timeout=60, progress=impatient)
    message = capsys.readouterr().err
    assert "keeps running" in message and instance_id in message and "wait" in message
    new_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert new_threads == []
    # The instance was not touched: it still provisions, then runs.
    assert client.wait(instance_id, poll=FAST, timeout=30).status == "running"


def test_progress_callback_sees_phases_and_elapsed(client, make_instance):
    instance_id = make_instance("wait-progress", image=BIG_IMAGE)
    seen = []
    client.wait(
        instance_id,
        poll=FAST,
        timeout=30,
        progress=lambda inst, elapsed, phase: seen.append((inst.status, elapsed, phase)),
    )
    assert seen[-1][0] == "running" and seen[-1][2] == "running"
    assert "provisioning" in {phase for _, _, phase in seen}
    elapsed = [e for _, e, _ in seen]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0


def test_text_progress_only_when_asked(client, make_instance, capsys):
    first = make_instance("wait-quiet")
    client.wait(first, poll=FAST, timeout=30)
    assert capsys.readouterr().out == ""  # silent by default outside Jupyter
    second = make_instance("wait-text", image=BIG_IMAGE)
    client.wait(second, poll=FAST, timeout=30, progress="text")
    out = capsys.readouterr().out
    assert "wait-text" in out and "running" in out
    assert "pulling" in out or "creating" in out or "toCreate" in out


@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        ({"until": "ready"}, "until", "running, reachable, exited, removed"),
        ({"timeout": 0}, "timeout", "greater than 0"),
        ({"timeout": "10"}, "timeout", "positive number"),
        ({"progress": "fancy"}, "progress", "callable"),
        ({"poll": "fast"}, "poll", "Backoff"),
        ({"until": "reachable", "probe": 3}, "probe", "callable"),
    ],
)
def test_bad_arguments_fail_before_any_call(client, sandbox, kwargs, field, needle):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as info:
        client.wait("anything", **kwargs)
    assert info.value.field == field
    assert needle in str(info.value)
    assert sandbox.requests() == []


def test_unknown_instance_is_not_found(client):
    with pytest.raises(NotFoundError):
        client.wait("no-such-instance", poll=FAST, timeout=5)


def test_wait_rides_out_api_errors(fast_client, sandbox, make_instance):
    instance_id = make_instance("wait-faults", image=BIG_IMAGE)
    sandbox.set_faults(errorRate=1.0)
    healer = threading.Timer(0.4, sandbox.clear_faults)
    healer.start()
    try:
        final = fast_client.wait(instance_id, poll=FAST, timeout=30)
    finally:
        healer.cancel()
        healer.join()
    assert final.status == "running"
    assert any(r["status"] >= 500 for r in sandbox.requests())


def test_wait_does_not_hide_a_refused_key(sandbox, client, make_instance):
    from novita_notebook import Novita
    from novita_notebook.errors import AuthenticationError

    handle = client.instance(make_instance("wait-auth"))
    wrong = Novita(api_key="sk_wrong_key_0123456789abcdef", api_url=sandbox.url)
    try:
        with pytest.raises(AuthenticationError):
            wrong.wait(handle, poll=FAST, timeout=30)
    finally:
        wrong.close()


def test_display_progress_updates_one_handle(client, make_instance, capsys):
    pytest.importorskip("IPython")
    instance_id = make_instance("wait-display", image=BIG_IMAGE)
    client.wait(instance_id, poll=FAST, timeout=30, progress="display")
    out = capsys.readouterr().out
    # Outside a kernel IPython prints the text/plain reprs; inside, the same calls update
    # one output. The text is readable, never "<IPython.core.display.HTML object>".
    assert "HTML object" not in out
    lines = out.strip().splitlines()
    assert len(lines) >= 2 and all(line.startswith("wait-display  ") for line in lines)
    assert lines[-1].endswith("is running") and "→ running" in lines[-1]


def test_wait_timeout_zero_is_refused_before_progress_or_http(sandbox, client):
    made = client.create("wait-zero", gpu="4090")
    drawn: list[object] = []
    sandbox.clear_requests()
    with pytest.raises(ValidationError, match="timeout"):
        client.wait(made, timeout=0, progress=lambda *args: drawn.append(args))
    assert drawn == []
    assert novita_calls(sandbox) == []
