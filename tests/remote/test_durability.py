"""Runs survive what notebooks suffer. 30 trials kill -9 the kernel process mid-run and attach
from a new process: every byte of output comes back, in order. 30 trials cut the SSH
connection at a random moment (the launch included): the run completes with its whole
output. In all of them a side effect of the remote code shows it ran exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
from collections import Counter
from pathlib import Path

import durable_kernels
import pytest

from novita_notebook.remote.launch import RunOptions
from novita_notebook.remote.scripts import launch_command
from novita_notebook.remote.store import RunStore

TRIALS = 30
LINES = 30
SIDE_EFFECTS = "side-effects.log"


def code_for(marker: str, lines: int = LINES, pause: float = 0.01) -> str:
    """Remote code that records one side effect, then prints numbered lines slowly."""
    return (
        "import time\n"
        f"with open({SIDE_EFFECTS!r}, 'a') as log:\n"
        f"    log.write({marker!r} + '\\n')\n"
        f"for i in range({lines}):\n"
        f"    print({marker!r}, '%04d' % i, 'x' * 40, flush=True)\n"
        f"    time.sleep({pause})\n"
    )


def expected(marker: str, lines: int = LINES) -> str:
    return "".join(f"{marker} {i:04d} {'x' * 40}\n" for i in range(lines))


def side_effects(sandbox, instance) -> Counter:
    path = Path(sandbox.instance_home(instance.id)) / SIDE_EFFECTS
    return Counter(path.read_text().split()) if path.exists() else Counter()


@pytest.fixture(scope="module")
def kernels():
    """A server that forks kernel processes with the package already imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["durable_kernels", "novita_notebook.client", "asyncssh"])
    return context


def test_a_killed_kernel_loses_nothing_and_the_run_ran_once(client, instance, sandbox, kernels):
    rng = random.Random(20261206)
    settings = {
        "home": os.environ["NOVITA_NOTEBOOK_HOME"],
        "api_key": sandbox.api_key,
        "api_url": client.config.api_url,
        "instance_id": instance.id,
    }
    store = RunStore(client.config.api_url)
    for trial in range(TRIALS):
        marker = f"kill{trial:02d}"
        code = code_for(marker)
        receive, send = kernels.Pipe(duplex=False)
        kernel = kernels.Process(
            target=durable_kernels.kernel_that_runs, args=(settings, code, send)
        )
        kernel.start()
        seen = 0
        wanted = rng.randrange(1, LINES // 2) * 50  # some lines in, somewhere mid-run
        while seen < wanted:
            assert receive.poll(30), f"trial {trial}: no output from the kernel"
            size = receive.recv()
            assert size >= 0, f"trial {trial}: the run ended before the kill"
            seen += size
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.join(10)
        assert kernel.exitcode == -signal.SIGKILL
        code_hash = RunOptions.checked(code).code_hash
        [record] = [r for r in store.all() if r.code_hash == code_hash]

        receive, send = kernels.Pipe(duplex=False)
        attacher = kernels.Process(
            target=durable_kernels.kernel_that_attaches, args=(settings, record.id, send)
        )
        attacher.start()
        assert receive.poll(60), f"trial {trial}: the new kernel did not finish attaching"
        state, stdout, shown = receive.recv()
        attacher.join(10)
        assert state == "succeeded", f"trial {trial}"
        assert stdout == expected(marker), f"trial {trial}: output differs"
        assert shown == stdout, f"trial {trial}: the replay differs"
    counts = side_effects(sandbox, instance)
    assert counts == Counter({f"kill{t:02d}": 1 for t in range(TRIALS)})


def test_a_severed_connection_loses_nothing_and_the_run_ran_once(client, instance, sandbox):
    rng = random.Random(6122026)
    cut_during = Counter()
    for trial in range(TRIALS):
        marker = f"sever{trial:02d}"
        # Anywhere from the start of the launch to the end of the output.
        delay = rng.uniform(0.0, LINES * 0.01)
        severed: list[int] = []
        timer = threading.Timer(
            delay, lambda cut=severed: cut.append(sandbox.sever_ssh(instance.id))
        )
        timer.start()
        pieces: list[str] = []
        run = client.run(instance, code_for(marker), on_output=lambda s, t, p=pieces: p.append(t))
        timer.join()
        assert run.state == "succeeded", f"trial {trial}"
        assert run.stdout == expected(marker) == "".join(pieces), f"trial {trial}"
        cut_during[bool(severed and severed[0])] += 1
    assert cut_during[True] >= TRIALS // 2, "too few trials cut a live connection"
    assert client.remote.pool.opened > TRIALS // 2
    counts = side_effects(sandbox, instance)
    assert counts == Counter({f"sever{t:02d}": 1 for t in range(TRIALS)})


def test_a_launch_repeated_after_a_lost_answer_does_not_run_the_code_again(
    client, instance, sandbox
):
    run = client.run(instance, code_for("once", lines=3), detach=True)
    again = client.remote.pool.run(instance.id, launch_command(run.id), retry=True)
    assert again.stdout == b"already\n"
    run.wait()
    assert run.stdout == expected("once", lines=3)
    assert side_effects(sandbox, instance)["once"] == 1
