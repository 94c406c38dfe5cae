"""OpenSSH's own client against the sandbox: ``sshpass -p ... ssh ...`` built from an instance's
``sshCommand``, the independent reading of the SSH protocol the sandbox's server must satisfy.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

MISSING = [tool for tool in ("ssh", "sftp", "sshpass") if shutil.which(tool) is None]
needs_openssh = pytest.mark.skipif(
    bool(MISSING), reason=f"OpenSSH client tools missing: {', '.join(MISSING)}"
)

QUIET = ["-o", "LogLevel=ERROR", "-o", "BatchMode=no", "-o", "ConnectTimeout=10"]


def ssh_argv(detail: dict, *, known_hosts: str = "/dev/null", strict: str = "no") -> list[str]:
    """``ssh root@host -p PORT`` from the instance's details, with test options added."""
    words = shlex.split(detail["connectComponentSSH"]["sshCommand"])
    assert words[0] == "ssh", words
    options = ["-o", f"StrictHostKeyChecking={strict}", "-o", f"UserKnownHostsFile={known_hosts}"]
    return ["ssh", *QUIET, *options, *words[1:]]


def ssh(
    detail: dict,
    command: str,
    *,
    password: str | None = None,
    extra: list[str] | None = None,
    timeout: float = 30,
    **kw,
) -> subprocess.CompletedProcess:
    """Run ``command`` on the instance with OpenSSH; the password goes through sshpass's
    environment variable, never the command line."""
    secret = password if password is not None else detail["connectComponentSSH"]["password"]
    argv = ["sshpass", "-e", *ssh_argv(detail, **kw)]
    argv[3:3] = extra or []
    return subprocess.run(
        [*argv, command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"SSHPASS": secret, "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )


def sftp(detail: dict, batch: str, *, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run an sftp batch (one command a line) against the instance."""
    words = shlex.split(detail["connectComponentSSH"]["sshCommand"])
    host = next(w for w in words if "@" in w)
    port = words[words.index("-p") + 1]
    argv = [
        "sshpass", "-e", "sftp", *QUIET, "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-P", port, "-b", "-", host,
    ]  # fmt: skip
    return subprocess.run(
        argv,
        input=batch,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            "SSHPASS": detail["connectComponentSSH"]["password"],
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
        },
    )
