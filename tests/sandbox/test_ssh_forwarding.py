"""Port forwarding on the sandbox's SSH servers, read by OpenSSH's own client: ``ssh -W``
reaches a port on the instance's loopback (here a small echo server), and with the forwarding
switch off the server refuses it as sshd with ``AllowTcpForwarding no`` does.
"""

from __future__ import annotations

import socket
import subprocess
import threading

import requests
from openssh import needs_openssh, ssh_argv
from sandbox_helpers import Api

pytestmark = needs_openssh

REQUEST = "ping through the instance\n"


def _echo_server() -> int:
    """A loopback server that answers each connection with what it read, upper-cased."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(1024).upper())

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def _through_the_instance(detail: dict, port: int) -> subprocess.CompletedProcess:
    """``ssh -W 127.0.0.1:PORT`` (a direct-tcpip channel) with an HTTP request on stdin."""
    argv = ["sshpass", "-e", *ssh_argv(detail)]
    argv[3:3] = ["-W", f"127.0.0.1:{port}"]
    return subprocess.run(argv, input=REQUEST, capture_output=True, text=True, timeout=30,
                          env={"SSHPASS": detail["connectComponentSSH"]["password"],
                               "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})  # fmt: skip


def test_forwarding_reaches_loopback_and_the_switch_refuses_it(api: Api, sandbox):
    instance_id = api.create()
    api.wait_for(instance_id, "running")
    detail = api.instance(instance_id)
    port = _echo_server()
    done = _through_the_instance(detail, port)
    assert done.returncode == 0 and done.stdout == REQUEST.upper(), done.stderr

    sandbox.allow_forwarding(False)
    refused = _through_the_instance(detail, port)
    assert refused.returncode != 0 and "forwarding failed" in refused.stderr

    answer = requests.post(f"{sandbox.url}/_sandbox/ssh/forwarding", json={"allowed": True},
                           timeout=5)  # fmt: skip
    assert answer.json() == {"allowed": True}
    assert _through_the_instance(detail, port).returncode == 0
    bad = requests.post(f"{sandbox.url}/_sandbox/ssh/forwarding", json={"allowed": "no"},
                        timeout=5)  # fmt: skip
    assert bad.status_code == 400 and "allowed" in bad.json()["message"]
