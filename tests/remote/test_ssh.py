"""The SSH layer against the sandbox's real SSH servers: one pooled connection per instance,
commands that no argument can inject into, host keys pinned on first use and a changed key
refused, reconnects with backoff, the password read from the API and shown nowhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import traceback
from pathlib import Path

import pytest

from novita_notebook.errors import (
    HostKeyChangedError,
    RemoteError,
    SSHConnectionError,
    ValidationError,
)
from novita_notebook.remote.commands import command_line

HOSTILE = [
    "plain",
    "two words",
    "; touch INJECTED",
    "$(touch INJECTED)",
    "`touch INJECTED`",
    'it\'s "quoted"',
    "new\nline",
    "*",
    "~",
    "-n",
    "ünïcödé ✓",
    "",
    "back\\slash",
    "$HOME",
]


def test_a_command_runs_on_the_instance_over_one_pooled_connection(client, instance, sandbox):
    pool = client.remote.pool
    done = pool.run(instance.id, ["sh", "-c", 'echo "out $1"; echo err >&2; exit 4', "x", "y"])
    assert (done.exit_status, done.stdout, done.stderr) == (4, b"out y\n", b"err\n")
    assert pool.run(instance.id, ["nvidia-smi", "-L"]).stdout.startswith(
        b"GPU 0: NVIDIA GeForce RTX 4090"
    )
    assert pool.run(instance.id, ["cat"], input=b"\x00\xffbinary").stdout == b"\x00\xffbinary"
    assert pool.opened == 1


def test_no_argument_can_inject_a_command(client, instance, sandbox):
    done = client.remote.pool.run(instance.id, ["printf", "%s\\0", *HOSTILE])
    assert done.stdout.split(b"\0")[:-1] == [word.encode() for word in HOSTILE]
    home = Path(sandbox.instance_home(instance.id))
    assert not (home / "INJECTED").exists()
    with pytest.raises(ValidationError, match="NUL"):
        command_line(["echo", "a\0b"])
    with pytest.raises(ValidationError, match="list of arguments"):
        command_line("rm -rf /")  # type: ignore[arg-type]


def test_the_host_key_is_pinned_on_first_use_and_a_changed_key_is_refused(
    client, instance, sandbox
):
    pool = client.remote.pool
    assert pool.run(instance.id, ["true"]).ok
    pins = json.loads((Path(os.environ["NOVITA_NOTEBOOK_HOME"]) / "ssh-host-keys.json").read_text())
    pinned = pins["scopes"][client.config.api_url.rstrip("/")][instance.id]
    assert pinned["fingerprint"] == sandbox.host_key_fingerprint(instance.id)
    assert pinned["key"].startswith("ssh-ed25519 ")

    new = sandbox.rotate_host_key(instance.id)
    sandbox.sever_ssh(instance.id)
    with pytest.raises(HostKeyChangedError) as caught:
        pool.run(instance.id, ["touch", "RAN"], retry=True)
    error = caught.value
    assert error.presented == new and error.pinned == pinned["fingerprint"]
    assert error.instance_id == instance.id and "forget_host_key" in str(error)
    assert not (Path(sandbox.instance_home(instance.id)) / "RAN").exists()

    assert client.forget_host_key(instance) is True
    assert pool.run(instance.id, ["true"]).ok
    assert client.forget_host_key(instance.name) is True  # by name too; then pinned again
    assert pool.run(instance.id, ["true"]).ok


def test_a_severed_connection_is_reopened_and_refusals_are_retried_with_backoff(
    client, instance, sandbox
):
    pool = client.remote.pool
    assert pool.run(instance.id, ["true"]).ok
    assert sandbox.sever_ssh(instance.id) == 1
    assert pool.run(instance.id, ["echo", "again"], retry=True).stdout == b"again\n"
    assert pool.opened == 2
    sandbox.refuse_ssh(3)
    sandbox.sever_ssh(instance.id)
    assert pool.run(instance.id, ["echo", "patient"], retry=True).stdout == b"patient\n"
    assert pool.opened == 3


def test_a_lost_connection_is_not_retried_for_an_operation_that_may_not_repeat(
    client, instance, sandbox
):
    pool = client.remote.pool

    async def cut_then_fail(conn):
        sandbox.sever_ssh(instance.id)
        await asyncio.sleep(0.2)
        return await conn.run("true")

    with pytest.raises(SSHConnectionError, match="lost"):
        pool.call(instance.id, cut_then_fail, retry=False)


def test_an_instance_that_is_not_running_says_so_at_once(client, instance):
    client.stop(instance.id)
    client.wait(instance.id, until="exited", timeout=30)
    with pytest.raises(RemoteError, match="not running") as caught:
        client.remote.pool.run(instance.id, ["true"])
    assert not isinstance(caught.value, SSHConnectionError)  # nothing to retry
    assert "novita.start" in str(caught.value)


def test_a_call_inside_a_running_event_loop_works(client, instance):
    """Jupyter runs cells inside its own loop; the SSH layer never re-enters it."""

    async def cell():
        return client.remote.pool.run(instance.id, ["echo", "from a cell"]).stdout

    assert asyncio.run(cell()) == b"from a cell\n"


def test_the_password_is_read_from_the_api_and_shown_nowhere(client, instance, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    password = client.instance(instance.id).ssh_password
    assert password
    pool = client.remote.pool
    seen = [repr(pool), repr(client.remote)]
    pool.run(instance.id, ["true"])
    sandbox.sever_ssh(instance.id)
    sandbox.refuse_ssh(2)
    pool.run(instance.id, ["true"], retry=True)
    sandbox.rotate_host_key(instance.id)
    sandbox.sever_ssh(instance.id)
    try:
        pool.run(instance.id, ["true"], retry=True)
    except HostKeyChangedError as error:
        seen += [str(error), repr(error), repr(vars(error))]
        seen.append("".join(traceback.format_exception(error)))
    seen += [record.getMessage() for record in caplog.records]
    home = Path(os.environ["NOVITA_NOTEBOOK_HOME"])
    seen += [p.read_text(errors="replace") for p in home.rglob("*") if p.is_file()]
    assert any("asyncssh" in record.name for record in caplog.records), "no SSH log to scan"
    for text in seen:
        assert password not in text


def test_a_local_port_forwards_to_a_port_on_the_instance(client, instance):
    """What a remote kernel or a web app on the instance is reached through."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))  # "on the instance": its loopback
    port = server.getsockname()[1]

    def echo() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    threading.Thread(target=echo, daemon=True).start()
    listener = client.remote.pool.forward(instance.id, port)
    try:
        with socket.create_connection(("127.0.0.1", listener.get_port()), timeout=10) as sock:
            sock.sendall(b"kernel channel")
            assert sock.recv(100) == b"KERNEL CHANNEL"
    finally:
        listener.close()
        server.close()
