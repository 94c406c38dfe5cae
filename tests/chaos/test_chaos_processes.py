"""Chaos with real processes, in real time: a notebook kernel (a subprocess) creates a guarded
instance and is killed with SIGKILL or interrupted with SIGINT at a random point of its create;
the guard process it started is killed with SIGKILL or stopped with SIGINT at a random moment,
and a later call from another process (a new Novita(), mine(), start) starts it again. The
instance must be stopped within one guard interval of its deadline, or of the moment a guard
was back if none was there at the deadline; a rule lost must have been announced. Trials run a
few at a time; each prints its seed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.guard.polling import process_alive as _pid_alive
from tests.guard.polling import wait_for

from novita_notebook.guard.process import guard_paths
from novita_notebook.guard.store import GuardStore
from novita_notebook.sandbox import Sandbox

INTERVAL = 0.5
DEADLINE = 5.0
#: How long a Python process takes to be up, on a busy machine (the restart of a guard).
START_ALLOWANCE = 2.5
TRIALS = 12

KERNEL = r"""
import sys, time
from novita_notebook import Novita

client = Novita(poll_interval=0.3)
print("READY", flush=True)
try:
    client.create(sys.argv[1], gpu="RTX 3090", image="ubuntu:22.04", wait=True,
                  stop_after=float(sys.argv[2]))
except KeyboardInterrupt as interrupt:
    print(f"INTERRUPTED: {interrupt}", flush=True)
    sys.exit(0)
print("CREATED", flush=True)
time.sleep(60)  # the notebook stays open, its watcher guarding in-kernel
"""

LATER = r"""
import sys
from novita_notebook import Novita

client = Novita()
if sys.argv[1] == "mine":
    client.mine()
elif sys.argv[1] == "status":
    client.guard_status()
"""


class ProcessTrial:
    def __init__(self, seed: int, home: Path) -> None:
        self.seed = seed
        self.rng = random.Random(f"chaos-processes-{seed}")
        self.home = home
        self.story: list[str] = []
        self.started = time.time()
        self.gaps: list[tuple[float, float]] = []  # (guard gone, guard back) in wall time

    def say(self, text: str) -> None:
        self.story.append(f"+{time.time() - self.started:.2f}s {text}")

    def env(self, sandbox: Sandbox) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "NOVITA_GUARD_AUTOSTART"}
        env.update({"NOVITA_API_KEY": sandbox.api_key, "NOVITA_API_URL": sandbox.url,
                    "NOVITA_NOTEBOOK_HOME": str(self.home),
                    "NOVITA_GUARD_INTERVAL": str(INTERVAL)})  # fmt: skip
        return env

    def guard_pid(self, sandbox: Sandbox) -> int | None:
        status = guard_paths(sandbox.url, self.home)["status"]
        try:
            return json.loads(status.read_text()).get("pid")
        except (OSError, ValueError):
            return None

    def run(self) -> list[str]:
        with Sandbox(speed=300, seed=self.seed) as sandbox:
            try:
                return self._run(sandbox)
            finally:
                pid = self.guard_pid(sandbox)
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGTERM)

    def _run(self, sandbox: Sandbox) -> list[str]:
        rng, env, name = self.rng, self.env(sandbox), f"p{self.seed}"
        latency = rng.choice((0, 300, 1000))
        sandbox.set_faults(latencyMs=latency)
        kernel = subprocess.Popen([sys.executable, "-c", KERNEL, name, str(DEADLINE)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)  # fmt: skip
        how = rng.choice(("kill -9", "SIGINT", "none"))
        stage = rng.choice(("before the POST", "during the POST", "during the wait"))
        assert kernel.stdout is not None and kernel.stdout.readline().strip() == "READY"
        self._reach(sandbox, name, stage, latency)
        self.say(f"kernel creates {name} (create latency {latency} ms); {how} {stage}")
        if how == "kill -9":
            os.killpg(kernel.pid, signal.SIGKILL)
        elif how == "SIGINT":
            os.kill(kernel.pid, signal.SIGINT)
        # the slow create has done its part: the guard's own calls must not pay for it (with
        # a second of latency a call, nothing can act within a half-second interval)
        sandbox.clear_faults()
        if how != "none":
            output = kernel.communicate(timeout=30)[0]
            self.say(f"kernel after {how}: {output.strip()[-200:]!r}")
            said = "INTERRUPTED" in output and "guarded" in output
            if "INTERRUPTED" in output and self._made(sandbox, name) and not said:
                return [f"the Ctrl-C message does not say the instance is guarded: {output}"]
        posted = any(r["path"].endswith("/instance/create") for r in sandbox.requests())
        made = wait_for(lambda: self._made(sandbox, name), 5) if posted else []
        if made:
            self._chaos_on_the_guard(sandbox, env)
        if not made:
            self.say("no instance was made (the create never went out)")
            kernel.kill()
            return []
        record = made[0]
        wait_for(lambda: record.status in ("toStop", "stopping", "exited"), DEADLINE + 15)
        kernel.kill()
        kernel.wait(10)
        return self._check(sandbox, record.id)

    def _reach(self, sandbox: Sandbox, name: str, stage: str, latency: float) -> None:
        """Wait for a random moment of the create's ``stage``."""
        rng = self.rng
        if stage == "before the POST":
            time.sleep(rng.uniform(0.0, 0.3))
            return
        wait_for(lambda: any(r["path"].endswith("/instance/create") for r in sandbox.requests()),
                 15)  # fmt: skip
        if stage == "during the POST":
            time.sleep(rng.uniform(0.0, latency / 1000.0))
            return
        wait_for(lambda: self._made(sandbox, name), 5 + latency / 1000.0)
        time.sleep(rng.uniform(0.0, 0.5))

    def _made(self, sandbox: Sandbox, name: str) -> list:
        with sandbox.world.lock:
            return [r for r in sandbox.world.instances.values() if r.name == name]

    def _chaos_on_the_guard(self, sandbox: Sandbox, env: dict[str, str]) -> None:
        rng = self.rng
        what = rng.choice(("kill -9", "SIGINT", "none", "none"))
        if what == "none":
            return
        pid = wait_for(lambda: self.guard_pid(sandbox), 5)
        time.sleep(rng.uniform(0.0, DEADLINE - 1.0))
        if not _pid_alive(pid):
            return
        gone = time.time()
        os.kill(pid, signal.SIGKILL if what == "kill -9" else signal.SIGINT)
        wait_for(lambda: not _pid_alive(pid), 5)
        call = rng.choice(("open", "mine", "status"))
        self.say(f"guard {what}; a later call: {call}")
        subprocess.run([sys.executable, "-c", LATER, call], env=env, timeout=30, check=True)
        back = time.time()
        self.gaps.append((gone, back))
        self.say(f"guard back (pid {self.guard_pid(sandbox)})")

    def _check(self, sandbox: Sandbox, instance_id: str) -> list[str]:
        store = GuardStore(self.home, api_url=sandbox.api_url)
        record = store.get(instance_id)
        stops = [r["time"] for r in sandbox.requests()
                 if r["path"].endswith("/gpu/instance/stop") and instance_id in r["body"]]  # fmt: skip
        if record is None or record.rules.stop_after is None:
            lost = [a for a in store.actions() if a["action"] == "quarantine"]
            return [] if lost else [f"{instance_id}: its rules are gone, unannounced"]
        deadline = record.rules.stop_after.timestamp()
        # with no guard at the deadline, the bound is when one was back
        bound = max([deadline, *[back for gone, back in self.gaps if gone <= deadline + INTERVAL]])
        self.say(
            f"deadline +{deadline - self.started:.2f}s, stops {[round(s - self.started, 2) for s in stops]}"
        )
        if not stops:
            return [f"{instance_id}: never stopped (deadline +{deadline - self.started:.2f}s)"]
        allowance = INTERVAL + (START_ALLOWANCE if bound > deadline else 0.5)
        if not deadline <= stops[0] <= bound + allowance:
            return [f"{instance_id}: stopped at +{stops[0] - self.started:.2f}s, bound "
                    f"+{bound - self.started:.2f}s + {allowance:g} s"]  # fmt: skip
        return []


def _trial(seed: int, root: Path) -> tuple[int, list[str], list[str]]:
    trial = ProcessTrial(seed, root / f"home-{seed}")
    problems = trial.run()
    return seed, problems, trial.story


@pytest.mark.timeout(240)
def test_kills_and_interrupts_of_kernels_and_the_guard_never_let_an_instance_run_on(tmp_path):
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda seed: _trial(seed, tmp_path), range(TRIALS)))
    failures = []
    for seed, problems, story in results:
        print(f"process chaos trial seed={seed}:\n  " + "\n  ".join(story))
        if problems:
            failures.append(f"seed={seed}: {problems}\n  " + "\n  ".join(story))
    assert not failures, "\n".join(failures)
