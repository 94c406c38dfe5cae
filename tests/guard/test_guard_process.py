"""The guard process for real: a "kernel" subprocess creates guarded instances on the sandbox,
starts the guard and is SIGKILLed; the guard stops every instance on time, then exits.
Also: one guard per ledger and API URL, the opt-out, and claims across processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from tests.guard.polling import wait_for

from novita_notebook.guard.process import ensure_guard_running, guard_paths, guard_status
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardStore

INTERVAL = 1.0
DEADLINE_SECONDS = 6.0

KERNEL = r"""
import json, sys, time
from novita_notebook import Novita

client = Novita()  # key and URL from the environment, as a notebook would
ids = []
for name in ("kernel-a", "kernel-b"):
    # the rules go with create; the first guarded create starts the guard process
    inst = client.create(name, gpu="RTX 3090", image="ubuntu:22.04", wait=True,
                         stop_after=float(sys.argv[1]))
    ids.append((inst.id, client.guards.store.get(inst.id).rules.stop_after.timestamp()))
status = client.guard_status()
print(json.dumps({"ids": ids, "guard_pid": status.get("pid"), "running": status["running"]}),
      flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_guard_outlives_a_sigkilled_kernel_and_stops_every_instance_on_time(sandbox, tmp_path):
    env = {
        **os.environ,
        "NOVITA_API_KEY": sandbox.api_key,
        "NOVITA_API_URL": sandbox.url,
        "NOVITA_GUARD_INTERVAL": str(INTERVAL),
    }
    kernel = subprocess.Popen(
        [sys.executable, "-c", KERNEL, str(DEADLINE_SECONDS)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a Jupyter kernel has
    )
    guard_pid = None
    try:
        report = json.loads(kernel.stdout.readline())
        assert report["running"], report
        guard_pid = report["guard_pid"]
        # the kernel and its whole process group die without any cleanup (a kernel restart)
        os.killpg(kernel.pid, signal.SIGKILL)
        kernel.wait(timeout=5)
        deadlines = dict(report["ids"])
        for instance_id in deadlines:
            wait_for(
                lambda i=instance_id: sandbox.world.instances[i].status == "exited",
                DEADLINE_SECONDS + 5,
            )
        stops = {}
        for request in sandbox.requests():
            if request["path"].endswith("/gpu/instance/stop") and request["method"] == "POST":
                stops.setdefault(json.loads(request["body"])["instanceId"], []).append(
                    request["time"]
                )
        assert set(stops) == set(deadlines)
        for instance_id, deadline in deadlines.items():
            assert len(stops[instance_id]) == 1
            assert deadline <= stops[instance_id][0] <= deadline + INTERVAL
        # nothing guarded is live any more: the guard exits by itself
        assert wait_for(lambda: not _alive(guard_pid), 5 * INTERVAL + 3)
        store = GuardStore(api_url=sandbox.api_url)
        logged = [a for a in store.actions() if a["action"] == "stop"]
        assert len(logged) == 2 and all(a["actor"] == f"guard pid {guard_pid}" for a in logged)
        warnings = [a for a in store.actions() if a["action"] == "warn"]
        assert len(warnings) == 2
        assert guard_status(sandbox.api_url)["running"] is False
    finally:
        if kernel.poll() is None:
            kernel.kill()
        if guard_pid and _alive(guard_pid):
            os.kill(guard_pid, signal.SIGTERM)


def test_one_guard_per_ledger_and_the_opt_out(sandbox, monkeypatch):
    store = GuardStore(api_url=sandbox.api_url)
    store.set_rules("not-a-real-instance", GuardRules.parse(stop_after="1h"))
    opted_out = ensure_guard_running(
        sandbox.url, sandbox.api_key, environ={"NOVITA_GUARD_AUTOSTART": "0"}
    )
    assert opted_out["running"] is False and "AUTOSTART" in opted_out["reason"]
    # a held lock: a second guard exits at once and says who holds it
    from filelock import FileLock

    paths = guard_paths(sandbox.url)
    paths["lock"].parent.mkdir(parents=True, exist_ok=True)
    paths["status"].write_text(json.dumps({"pid": 4242, "started": "then", "state": "running"}))
    env = {**os.environ, "NOVITA_API_KEY": sandbox.api_key, "NOVITA_API_URL": sandbox.url}
    with FileLock(str(paths["lock"])):
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "novita_notebook.guard"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert second.returncode == 0
    assert "already running" in second.stderr and "pid 4242" in second.stderr
    assert time.monotonic() - started < 10
    assert sandbox.api_key not in second.stderr + second.stdout


def test_guard_once_forgets_gone_instances_and_never_writes_the_key(sandbox, tmp_path):
    store = GuardStore(api_url=sandbox.api_url)
    set_earlier = datetime.now(UTC) - timedelta(minutes=5)  # past the not-listed-yet grace
    store.set_rules("gone-instance", GuardRules.parse(stop_after="1h", now=set_earlier))
    env = {**os.environ, "NOVITA_API_KEY": sandbox.api_key, "NOVITA_API_URL": sandbox.url}
    done = subprocess.run(
        [sys.executable, "-m", "novita_notebook.guard", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    assert store.get("gone-instance") is None
    assert [a["action"] for a in store.actions()] == ["forget"]
    home = store.directory
    for path in home.iterdir():
        if path.is_file():
            assert sandbox.api_key not in path.read_text(errors="replace"), path.name


# -- claims across processes -----------------------------------------------------------------
def _race(directory: str, holder: str, start_at: float, results) -> None:
    store = GuardStore(directory, api_url="http://127.0.0.1:1")
    while time.time() < start_at:
        time.sleep(0.001)
    won = [store.claim("shared", f"stop:key-{n}", holder, ttl=60) for n in range(5)]
    results.put((holder, won))


def test_claims_across_processes_act_exactly_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 1.5
    holders = ["kernel-1", "kernel-2", "guard"]
    processes = [
        context.Process(target=_race, args=(str(tmp_path), h, start_at, results)) for h in holders
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=15) for _ in holders)
    for process in processes:
        process.join(timeout=10)
    for n in range(5):
        winners = [h for h in holders if outcomes[h][n]]
        assert len(winners) == 1, (n, outcomes)
    claims = GuardStore(tmp_path, api_url="http://127.0.0.1:1").claims()
    assert len(claims) == 5


def test_two_kernels_and_the_guard_stop_one_instance_once(client, sandbox):
    """Three enforcers (as two kernels and the guard would) tick at once on one instance
    past its deadline: exactly one stop request reaches the API."""
    from concurrent.futures import ThreadPoolExecutor

    from novita_notebook.guard.backend import HttpGuardBackend
    from novita_notebook.guard.enforcer import Enforcer

    inst = client.create("shared", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    GuardStore(api_url=sandbox.api_url).set_rules(inst.id, GuardRules.parse(stop_after=0.5))
    time.sleep(0.6)
    sandbox.clear_requests()
    backends = [HttpGuardBackend(sandbox.url, lambda: sandbox.api_key) for _ in range(3)]
    enforcers = [
        Enforcer(b, GuardStore(api_url=sandbox.api_url), actor=f"actor-{n}")
        for n, b in enumerate(backends)
    ]
    now = datetime.now(UTC)
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda e: e.tick(now), enforcers))
    stops = [r for r in sandbox.requests() if r["path"].endswith("/gpu/instance/stop")]
    assert len(stops) == 1
    events = [e["event"] for b in backends for e in b.events]
    assert events.count("guard.stopped") == 1 and events.count("guard.warning") == 1
    for backend in backends:
        backend.close()


def test_a_guard_of_a_local_sandbox_that_is_gone_exits(monkeypatch):
    """A loopback API that stays unreachable is a sandbox that ended: the guard exits (a
    real API being unreachable is retried: the machine may just be offline)."""
    from novita_notebook.sandbox import Sandbox

    server = Sandbox(speed=300, seed=7).start()
    pid = None
    try:
        GuardStore(api_url=server.api_url).set_rules("far-off", GuardRules.parse(stop_after="1d"))
        status = ensure_guard_running(server.url, server.api_key, interval=0.3, wait=10)
        pid = status["pid"]
        assert status["running"]
        server.stop()
        assert wait_for(lambda: not _alive(pid), 18, step=0.2)
        status = guard_status(server.url)
        assert status["state"] == "exited"
        with open(status["log_file"], encoding="utf-8") as log:
            assert "the local API (a sandbox) is gone" in log.read()
        pid = None
    finally:
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
        server.stop()
