"""Durable runs on a sandbox instance, as a user meets them: output streaming as it comes
(``\\r`` kept), a failure raising RemoteRunError with the remote traceback's last lines,
shell runs, put/get of a DataFrame, an array and a dict, a Python mismatch refused in words
before anything is sent, timeouts, Ctrl-C, detached runs, the ledger and runs().
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from novita_notebook.errors import (
    NotFoundError,
    PythonMismatchError,
    RemoteRunError,
    ValidationError,
)
from novita_notebook.remote.store import busy_instances


def collect():
    seen: list[tuple[str, str]] = []
    return seen, lambda stream, text: seen.append((stream, text))


def test_output_streams_as_it_comes_and_the_run_is_remembered(client, instance, sandbox):
    seen, sink = collect()
    code = (
        "import sys, time\n"
        "for i in range(3):\n"
        "    print('step', i)\n"
        "    time.sleep(0.05)\n"
        "print('loading 50%\\rloading 100%')\n"
        "print('a warning', file=sys.stderr)\n"
    )
    run = client.run(instance, code, on_output=sink)
    assert run.state == "succeeded" and run.exit_code == 0
    assert run.stdout == "step 0\nstep 1\nstep 2\nloading 50%\rloading 100%\n"
    assert run.stderr == "a warning\n"
    assert "".join(t for s, t in seen if s == "stdout") == run.stdout
    assert len([s for s, _ in seen if s == "stdout"]) >= 2, "output came in one piece"
    record = json.loads((Path(os.environ["NOVITA_NOTEBOOK_HOME"]) / "runs.json").read_text())
    stored = record["scopes"][client.config.api_url][run.id]
    assert stored["instance_id"] == instance.id and stored["state"] == "succeeded"
    assert stored["exit_code"] == 0 and stored["stdout_bytes"] == len(run.stdout.encode())
    assert len(stored["code_hash"]) == 16 and "step" not in json.dumps(stored)
    frame = client.runs()
    assert list(frame.columns) == [
        "run", "instance", "started", "duration", "state", "exit_code", "cost",
    ]  # fmt: skip
    row = frame.iloc[0]
    assert row["run"] == run.id and row["instance"] == "remote-1" and row["exit_code"] == 0
    assert row["duration"] > pd.Timedelta(0) and row["cost"] > 0


def test_a_failure_raises_with_the_remote_tracebacks_last_lines(client, instance):
    seen, sink = collect()
    code = "def divide(a, b):\n    return a / b\n\nprint('before')\ndivide(1, 0)\n"
    with pytest.raises(RemoteRunError) as caught:
        client.run(instance, code, on_output=sink)
    error = caught.value
    assert error.state == "failed" and error.exit_code == 1
    assert error.error_type == "ZeroDivisionError"
    assert error.traceback_tail.splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert 'File "<cell>", line 2, in divide' in error.traceback_tail
    assert "return a / b" in error.traceback_tail  # the cell's own source line
    assert "ZeroDivisionError" in str(error) and error.run_id in str(error)
    assert "".join(text for stream, text in seen if stream == "stdout") == "before\n"
    assert client.attach(error.run_id, wait=False).state == "failed"


def test_a_shell_run_for_images_without_python(client, instance, sandbox):
    run = client.run(
        instance,
        'echo "dataset=$DATASET"; echo "$QUOTED"; ls -d .novita; exit 0',
        shell=True,
        env={"DATASET": "mnist", "QUOTED": "$(touch INJECTED); `x` 'y'"},
        on_output=lambda *_: None,
    )
    assert run.stdout == "dataset=mnist\n$(touch INJECTED); `x` 'y'\n.novita\n"
    assert not (Path(sandbox.instance_home(instance.id)) / "INJECTED").exists()
    with pytest.raises(RemoteRunError, match="exit code 3"):
        client.run(instance, "echo oops >&2; exit 3", shell=True, on_output=lambda *_: None)


def test_values_round_trip_a_dataframe_an_array_and_a_dict(client, instance):
    frame = pd.DataFrame({"gpu": ["RTX 4090", "H100"], "price": [0.35, 2.49]})
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    config = {"lr": 3e-4, "layers": [64, 64], "name": "ünïcode"}
    code = (
        "frame2 = frame.assign(per_day=frame.price * 24)\n"
        "array2 = array.T @ array\n"
        "config2 = dict(config, epochs=3)\n"
    )
    run = client.run(
        instance,
        code,
        put={"frame": frame, "array": array, "config": config},
        get=["frame2", "array2", "config2"],
        on_output=lambda *_: None,
    )
    pd.testing.assert_frame_equal(run.values["frame2"], frame.assign(per_day=frame.price * 24))
    np.testing.assert_array_equal(run.values["array2"], array.T @ array)
    assert run.values["config2"] == {**config, "epochs": 3}
    with pytest.raises(RemoteRunError, match="no missing to bring back"):
        client.run(instance, "x = 1", get=["missing"], on_output=lambda *_: None)


def fake_python(client, instance, name: str, answer: dict) -> str:
    """An interpreter on the instance that answers the probe like another Python would."""
    script = f"#!/bin/sh\necho '{json.dumps(answer)}'\n".encode()
    argv = ["sh", "-c", 'cat > "$1" && chmod +x "$1"', "sh", name]
    assert client.remote.pool.run(instance.id, argv, input=script).ok
    return f"./{name}"


def test_a_python_mismatch_is_reported_in_words_before_anything_is_sent(client, instance, sandbox):
    old = fake_python(
        client, instance, "py27", {"version": [2, 7, 18], "protocol": 2, "modules": {}}
    )
    with pytest.raises(PythonMismatchError) as caught:
        client.run(instance, "y = x", put={"x": 1}, get=["y"], python=old)
    message = str(caught.value)
    assert "Python 2.7.18" in message and "Nothing was sent" in message
    runs_dir = Path(sandbox.instance_home(instance.id)) / ".novita" / "runs"
    assert not runs_dir.exists()
    assert client.runs().empty
    no_pandas = fake_python(
        client, instance, "py3", {"version": [3, 11, 2], "protocol": 5, "modules": {"pandas": None}}
    )
    with pytest.raises(PythonMismatchError, match="has no pandas"):
        client.run(instance, "y = 1", put={"df": pd.DataFrame()}, python=no_pandas)
    with pytest.raises(PythonMismatchError, match="no 'python9'"):
        client.run(instance, "y = 1", put={"x": 1}, python="python9")
    assert not runs_dir.exists()


def test_bad_options_are_refused_before_any_request(client, instance):
    before = client.requests_made
    for kwargs, field in (
        ({"code": ""}, "code"),
        ({"code": "x", "timeout": 0}, "timeout"),
        ({"code": "x", "env": {"1BAD": "v"}}, "env"),
        ({"code": "x", "get": "y"}, "get"),
        ({"code": "x", "put": {"not a name": 1}}, "put"),
        ({"code": "x", "max_output": -1}, "max_output"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.run(instance, **kwargs)
        assert caught.value.field == field
    with pytest.raises(ValidationError, match="shell"):
        client.run(instance, "echo", shell=True, get=["x"])
    assert client.requests_made == before


def test_a_timeout_ends_the_run_on_the_instance(client, instance):
    with pytest.raises(RemoteRunError) as caught:
        client.run(
            instance,
            "import time\nprint('working', flush=True)\ntime.sleep(60)",
            timeout=1,
            on_output=lambda *_: None,
        )
    assert caught.value.state == "timed_out" and "1 s timeout" in str(caught.value)


def test_ctrl_c_interrupts_the_remote_code(client, instance):
    seen: list[str] = []

    def impatient(stream: str, text: str) -> None:
        seen.append(text)
        if "ready" in text:
            raise KeyboardInterrupt

    code = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.01)\n"
    with pytest.raises(KeyboardInterrupt):
        client.run(instance, code, on_output=impatient)
    run = client.runs().iloc[0]
    assert run["state"] == "interrupted" and run["exit_code"] == 130
    assert "KeyboardInterrupt" in "".join(seen)  # the remote traceback was shown


def test_a_detached_run_returns_at_once_and_keeps_its_output_for_wait(client, instance, capsys):
    run = client.run(instance, "import time\ntime.sleep(0.3)\nprint('done')", detach=True)
    assert run.state in {"starting", "running"}
    assert capsys.readouterr().out == ""  # reading the state prints nothing
    assert busy_instances(client.config.api_url) == {instance.id: [run.id]}
    run.wait()
    assert run.state == "succeeded" and capsys.readouterr().out == "done\n"
    assert busy_instances(client.config.api_url) == {}


def test_large_output_is_capped_here_and_whole_on_the_instance(client, instance, capsys):
    code = "for i in range(20000):\n    print('line %05d' % i)\n"
    run = client.run(instance, code, max_output=1000)
    shown = capsys.readouterr()
    assert len(shown.out) == 1000 and "whole log stays on the instance" in shown.err
    assert len(run.stdout) == 1000
    whole = run.log("stdout")
    assert whole.count("\n") == 20000 and whole.endswith("line 19999\n")
    assert run.record.stdout_bytes == len(whole)


def test_a_stopped_instance_loses_its_run(client, instance):
    run = client.run(instance, "import time\ntime.sleep(60)", detach=True)
    client.stop(instance.id)
    with pytest.raises(RemoteRunError) as caught:
        run.wait(timeout=30)
    assert caught.value.state == "lost" and "not running" in str(caught.value)
    assert client.runs(refresh=False).iloc[0]["state"] == "lost"


def test_runs_marks_the_run_of_a_deleted_instance_lost_without_waiting(client, instance):
    run = client.run(instance, "import time\ntime.sleep(60)", detach=True)
    assert busy_instances(client.config.api_url) == {instance.id: [run.id]}
    client.delete(instance.id)
    frame = client.runs()
    assert frame.iloc[0]["run"] == run.id and frame.iloc[0]["state"] == "lost"
    assert busy_instances(client.config.api_url) == {}


def test_attach_to_an_unknown_run_says_how_to_find_runs(client):
    with pytest.raises(NotFoundError, match="runs()"):
        client.attach("r-0000000000")


def test_attach_to_an_ended_run_replays_it_and_brings_its_values(client, instance):
    run = client.run(instance, "print('hello')\nanswer = 42", get=["answer"], detach=True)
    run.wait(check=False)
    seen, sink = collect()
    again = client.attach(run.id, on_output=sink)
    assert again is not run and again.state == "succeeded"
    assert "".join(text for _, text in seen) == "hello\n" and again.values == {"answer": 42}
    failed = client.run(instance, "raise ValueError('bad')", detach=True)
    failed.wait(check=False)
    with pytest.raises(RemoteRunError, match="ValueError: bad"):
        client.attach(failed, on_output=lambda *_: None)


def test_an_image_without_tail_is_followed_over_sftp(client, instance, monkeypatch):
    """The sandbox's instances all have tail: force the edge of an image that has none."""
    from novita_notebook.remote import scripts

    monkeypatch.setattr(scripts, "follow_command", lambda *args: ["sh", "-c", "exit 127"])
    seen, sink = collect()
    run = client.run(
        instance,
        "import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.1)",
        on_output=sink,
    )
    assert run.stdout == "0\n1\n2\n" and len(seen) >= 2


def test_a_run_remembered_but_never_launched_is_not_started(client, instance):
    """A kernel that died between remembering a run and launching it."""
    from datetime import UTC, datetime

    from novita_notebook.remote.store import RunRecord, RunStore

    record = RunRecord(
        id="r-00000000aa",
        instance_id=instance.id,
        instance_name=instance.name,
        kind="python",
        code_hash="0" * 16,
        started=datetime.now(UTC),
        remote_dir=".novita/runs/r-00000000aa",
    )
    store = RunStore(client.config.api_url)
    store.save(record)
    assert busy_instances(client.config.api_url) == {instance.id: [record.id]}
    with pytest.raises(RemoteRunError, match="never started"):
        client.attach(record.id)
    assert store.get(record.id).state == "not_started"
    assert busy_instances(client.config.api_url) == {}
    store.save(record)  # the same from a listing
    assert client.runs().iloc[0]["state"] == "not_started"
