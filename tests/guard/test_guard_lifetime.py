"""The guard process is there whenever a guarded instance can bill. It stays while a guarded
instance is stopped but may be started again (by anyone), and every call that can leave one
billing (start, extend, a new Novita(), mine()...) starts it again if it is gone, even after
``kill -9``. Each step below runs in its own process, as a later notebook kernel would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tests.guard.polling import process_alive as _alive
from tests.guard.polling import wait_for

from novita_notebook.guard.process import guard_status
from novita_notebook.guard.store import GuardStore

INTERVAL = 0.5
DEADLINE = 7.0  # seconds from the create

STEP = r"""
import json, sys, time

step = sys.argv[1]
if step == "load_ext":  # a notebook opened later: loading the extension is the call
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance().run_line_magic("load_ext", "novita_notebook")
    time.sleep(3)  # the guard is started in the background
    sys.exit(0)
from novita_notebook import Novita

client = Novita()
if step == "create":
    inst = client.create("cycled", gpu="RTX 3090", image="ubuntu:22.04", wait=True,
                         stop_after=float(sys.argv[2]))
    client.stop(inst.id)  # stopped well before its deadline
    print(json.dumps({"id": inst.id}))
elif step == "start":
    client.start("cycled")
elif step == "extend":
    client.extend("cycled", "1s")
elif step == "mine":
    client.mine()
# "open": constructing the client is the call
"""


def _run(sandbox, *args: str) -> str:
    env = {**os.environ, "NOVITA_API_KEY": sandbox.api_key, "NOVITA_API_URL": sandbox.url,
           "NOVITA_GUARD_INTERVAL": str(INTERVAL)}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", STEP, *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _stops(sandbox, instance_id: str) -> list[float]:
    return [
        r["time"]
        for r in sandbox.requests()
        if r["path"].endswith("/gpu/instance/stop") and instance_id in r["body"]
    ]


@pytest.fixture
def cycled(sandbox):
    """A guarded instance created and stopped by a kernel that then ended."""
    instance_id = json.loads(_run(sandbox, "create", str(DEADLINE)))["id"]
    yield instance_id
    pid = guard_status(sandbox.api_url).get("pid")
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)


def _started_again_and_stopped_at_the_deadline(sandbox, instance_id: str) -> None:
    record = sandbox.world.instances[instance_id]
    deadline = GuardStore(api_url=sandbox.api_url).get(instance_id).rules.stop_after.timestamp()
    assert wait_for(lambda: record.status == "running", 10)
    assert wait_for(lambda: len(_stops(sandbox, instance_id)) >= 2, DEADLINE + 10)
    guard_stop = _stops(sandbox, instance_id)[1]
    assert deadline <= guard_stop <= deadline + INTERVAL + 1.0  # 1 s: a guard's start
    assert wait_for(lambda: record.status in ("toStop", "stopping", "exited"), 5)


def test_a_stopped_guarded_instance_keeps_the_guard_and_a_later_start_is_enforced(sandbox, cycled):
    instance_id = cycled
    pid = guard_status(sandbox.api_url).get("pid")
    time.sleep(4 * INTERVAL)  # several ticks see it stopped: the guard stays anyway
    assert _alive(pid) and guard_status(sandbox.api_url)["running"]
    _run(sandbox, "start")  # a new kernel starts it again
    _started_again_and_stopped_at_the_deadline(sandbox, instance_id)
    assert guard_status(sandbox.api_url).get("pid") == pid  # the same guard did it


@pytest.mark.parametrize("call", ["open", "extend", "mine", "load_ext"])
def test_a_guard_killed_with_sigkill_is_started_again_by_a_later_call(sandbox, cycled, call):
    instance_id = cycled
    pid = guard_status(sandbox.api_url).get("pid")
    assert _alive(pid)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not _alive(pid), 5)
    with sandbox.world.lock:  # started from the web console: no call of ours
        sandbox.world.start(instance_id)
    _run(sandbox, call)  # a later kernel: Novita(), extend(), mine() or %load_ext
    assert guard_status(sandbox.api_url)["running"]
    _started_again_and_stopped_at_the_deadline(sandbox, instance_id)
