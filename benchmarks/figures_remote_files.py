"""Figures of push and pull over SFTP, against OpenSSH's own ``sftp`` (batch mode, through
sshpass) moving the same folder to and from the same sandbox instance in the same run.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from novita_notebook import Novita

from .harness import Figure, median
from .remote_sandbox import serving_sandbox

TARGET = 0.5  # at least half of OpenSSH's sftp throughput
MB = 1_000_000


def _folder(root: Path, megabytes: int) -> int:
    """Four large files and forty small ones (a model and its notes); returns the bytes."""
    rng = random.Random(25)
    big, small = megabytes * MB * 4 // 5 // 4, megabytes * MB // 5 // 40
    (root / "small").mkdir(parents=True)
    for i in range(4):
        (root / f"part-{i}.bin").write_bytes(rng.randbytes(big))
    for i in range(40):
        (root / "small" / f"s-{i}.bin").write_bytes(rng.randbytes(small))
    return 4 * big + 40 * small


def _sftp(ssh_command: str, password: str, batch: str) -> float:
    """Seconds OpenSSH's sftp takes for ``batch`` (one command a line)."""
    words = shlex.split(ssh_command)
    host = next(w for w in words if "@" in w)
    port = words[words.index("-p") + 1]
    argv = [
        "sshpass", "-e", "sftp", "-o", "StrictHostKeyChecking=no", "-o",
        "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=no", "-P", port,
        "-b", "-", host,
    ]  # fmt: skip
    env = {"SSHPASS": password, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    started = time.perf_counter()
    done = subprocess.run(argv, input=batch, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"OpenSSH's sftp failed: {done.stderr[-300:]}")
    return elapsed


def _timed(call: object, *args: object, **kwargs: object) -> float:
    started = time.perf_counter()
    call(*args, **kwargs)  # type: ignore[operator]
    return time.perf_counter() - started


def push_pull_throughput(quick: bool) -> list[Figure]:
    """A sandbox in its own process and one running instance; a folder of four large files
    and forty small ones (200 MB, 20 MB in a quick run). Each round pushes it to a new folder
    on the instance and pulls it back, with push()/pull() and with OpenSSH's sftp (``put -r``
    / ``get -r`` in batch mode through sshpass), alternating; the connection is open for
    both (sftp opens its own each time: its login is part of its time, as the pool's first
    connection is not). Throughput = folder bytes / wall time; medians compared."""
    missing = [tool for tool in ("sftp", "sshpass") if shutil.which(tool) is None]
    if missing:
        print(f"    skipped: the baseline needs OpenSSH's sftp ({', '.join(missing)} missing)")
        return []
    megabytes, rounds = (20, 1) if quick else (200, 3)
    with tempfile.TemporaryDirectory() as scratch, serving_sandbox(quick, speed=300) as sandbox:
        root = Path(scratch)
        size = _folder(root / "data", megabytes)
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            created = client.create("bench-files", gpu="RTX 4090", image="ubuntu:22.04")
            instance = client.wait(created, until="running", timeout=120)
            detail = client.instance(instance.id)
            command, password = detail.ssh_command, detail.ssh_password
            assert command and password
            client.remote.pool.run(instance.id, ["true"])  # the pool's connection is open
            ours_push, ours_pull, theirs_push, theirs_pull = [], [], [], []
            for turn in range(rounds):
                ours_push.append(_timed(client.push, instance, root / "data", f"ours-{turn}"))
                ours_pull.append(
                    _timed(client.pull, instance, f"ours-{turn}", root / f"back-{turn}")
                )
                theirs_push.append(_sftp(command, password,
                                         f"put -r {root / 'data'} theirs-{turn}\n"))  # fmt: skip
                theirs_pull.append(_sftp(command, password,
                                         f"get -r theirs-{turn} {root / f'got-{turn}'}\n"))  # fmt: skip
                client.remote.pool.run(instance.id, ["rm", "-rf", f"ours-{turn}", f"theirs-{turn}"])
                for folder in (f"back-{turn}", f"got-{turn}"):
                    shutil.rmtree(root / folder, ignore_errors=True)
        finally:
            client.close()
    figures = []
    for way, ours, theirs, verb in (("push", ours_push, theirs_push, "put"),
                                    ("pull", ours_pull, theirs_pull, "get")):  # fmt: skip
        rate, baseline = size / MB / median(ours), size / MB / median(theirs)
        figures.append(Figure(
            f"{way}() throughput of a {megabytes} MB folder vs OpenSSH's sftp {verb} -r",
            rate, "MB/s", baseline, target=f">= {TARGET:g}x OpenSSH's sftp",
            met=rate >= TARGET * baseline, notes={"rounds": str(rounds)},
        ))  # fmt: skip
    return figures
