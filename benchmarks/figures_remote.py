"""Figures of runs over SSH, against OpenSSH's own client on the same sandbox instance in the
same run: the first output of a cold run() (a new connection) and of a warm one, and how far
behind the output a consumer of 10 MB of it ever falls.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time

from novita_notebook import Novita

from .harness import Figure, median
from .remote_sandbox import serving_sandbox

COLD_TARGET = 2.0  # a cold run's first output within 2x OpenSSH's
WARM_TARGET = 1.0  # a warm run's first output no later than OpenSSH's cold one
LAG_BUDGET_SECONDS = 1.0
FIRST_OUTPUT = "print('ready', flush=True)"


def _openssh_first_output(ssh_command: str, password: str) -> float:
    """Seconds from starting OpenSSH's client (through sshpass) to the first byte it prints
    of the same Python command a run sends."""
    words = shlex.split(ssh_command)
    argv = [
        "sshpass", "-e", "ssh", "-o", "StrictHostKeyChecking=no", "-o",
        "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", *words[1:],
        f"python3 -u -c {shlex.quote(FIRST_OUTPUT)}",
    ]  # fmt: skip
    env = {"SSHPASS": password, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None
    first = process.stdout.read(1)
    elapsed = time.perf_counter() - started
    out, err = process.communicate(timeout=60)
    if first != b"r" or process.returncode != 0:
        raise RuntimeError(f"OpenSSH's client failed: {err.decode(errors='replace')[-300:]}")
    return elapsed


def _run_first_output(client: Novita, instance_id: str) -> float:
    """Seconds from calling run() to its first output reaching the consumer."""
    first: list[float] = []
    started = time.perf_counter()

    def consumer(stream: str, text: str) -> None:
        if not first:
            first.append(time.perf_counter())

    client.run(instance_id, FIRST_OUTPUT, on_output=consumer)
    return first[0] - started


def _streaming(client: Novita, instance_id: str, megabytes: int) -> tuple[float, float, float]:
    """Largest lag (s) of the consumer behind the remote code's writes, the total seconds and
    the bytes received, for ``megabytes`` MB of time-stamped lines."""
    lines = megabytes * 1_000_000 // 121
    code = (
        "import time\n"
        "pad = 'x' * 100\n"
        f"for i in range({lines}):\n"
        "    print('%.6f %s' % (time.time(), pad))\n"
    )
    worst = 0.0
    received = 0
    carry = ""

    def consumer(stream: str, text: str) -> None:
        nonlocal worst, received, carry
        now = time.time()
        received += len(text)
        # The oldest complete line of this piece says how long it waited.
        head = carry + text[:200]
        start = 0 if not carry or carry.endswith("\n") else head.find("\n") + 1
        stamp = head[start : start + 17].split(" ", 1)[0]
        if stamp.replace(".", "", 1).isdigit():
            worst = max(worst, now - float(stamp))
        carry = text[-200:]

    started = time.perf_counter()
    client.run(instance_id, code, on_output=consumer, max_output=0)
    return worst, time.perf_counter() - started, float(received)


def run_over_ssh(quick: bool) -> list[Figure]:
    """A sandbox in its own process and one running instance. First output: run() of one
    print (a cold one after closing the pool's connection, so it reads the password from the
    API and opens a new SSH connection; a warm one on the open connection) against OpenSSH's
    ssh, through sshpass, running the same python3 command on the same instance, measured in
    alternating rounds, medians compared. Streaming: 10 MB of time-stamped lines (1 MB in a
    quick run); the consumer's lag is how old the oldest line of each piece is on arrival,
    the largest over the run."""
    missing = [tool for tool in ("ssh", "sshpass") if shutil.which(tool) is None]
    if missing:
        print(f"    skipped: the baseline needs OpenSSH's client ({', '.join(missing)} missing)")
        return []
    rounds = 3 if quick else 15
    with serving_sandbox(quick, speed=300) as sandbox:
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            created = client.create("bench-ssh", gpu="RTX 4090", image="ubuntu:22.04")
            instance = client.wait(created, until="running", timeout=120)
            detail = client.instance(instance.id)
            assert detail.ssh_command and detail.ssh_password
            _run_first_output(client, instance.id)  # warm-up: imports, first connection
            _openssh_first_output(detail.ssh_command, detail.ssh_password)
            cold, warm, openssh = [], [], []
            for _ in range(rounds):
                openssh.append(_openssh_first_output(detail.ssh_command, detail.ssh_password))
                client.remote.pool.close()
                cold.append(_run_first_output(client, instance.id))
                warm.append(_run_first_output(client, instance.id))
            megabytes = 1 if quick else 10
            lag, seconds, received = _streaming(client, instance.id, megabytes)
        finally:
            client.close()
    baseline = median(openssh)
    first_outputs = [
        Figure(
            f"first output of a {name} vs OpenSSH's ssh{suffix}",
            median(samples) * 1000,
            "ms",
            baseline * 1000,
            target=f"<= {target:g}x OpenSSH{' cold' if name.startswith('warm') else ''}",
            met=median(samples) <= target * baseline,
            notes={"rounds": str(rounds)},
        )
        for name, suffix, samples, target in (
            ("cold run() (new connection)", ", same command", cold, COLD_TARGET),
            ("warm run() (open connection)", " cold", warm, WARM_TARGET),
        )
    ]
    return [
        *first_outputs,
        Figure(
            f"largest lag of a consumer of {megabytes} MB of run output vs the 1-s budget",
            lag,
            "s",
            LAG_BUDGET_SECONDS,
            target=f"<= {LAG_BUDGET_SECONDS:g} s",
            met=lag <= LAG_BUDGET_SECONDS,
            notes={"throughput": f"{received / seconds / 1e6:.1f} MB/s over {seconds:.1f} s"},
        ),
    ]
