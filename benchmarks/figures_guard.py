"""Figures of the guard: the guard process's CPU (from /proc/<pid>/stat) while it guards 20
instances at its default interval, and a soak: 50 guarded instances for an hour of sandbox time
with injected faults, a guard process and a kernel watcher (how late each rule acted, in guard
intervals; the process's memory and threads at start and end).
``python -m benchmarks.figures_guard [--quick] [--cpu | --soak]``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from urllib.parse import urlsplit

from .harness import Figure
from .remote_sandbox import RemoteSandbox, serving_sandbox

INSTANCES = 20
BUDGET_PERCENT = 0.5


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _create(sandbox: RemoteSandbox, count: int) -> list[str]:
    import http.client

    sandbox.control("POST", "stock", {"stock": 100_000})
    parts = urlsplit(sandbox.api_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {sandbox.api_key}", "Content-Type": "application/json"}
    ids = []
    try:
        for index in range(count):
            body = {
                "name": f"guarded-{index}",
                "productId": "3090.12c46g",
                "gpuNum": 1,
                "rootfsSize": 50,
                "imageUrl": "ubuntu:22.04",
                "kind": "gpu",
            }
            connection.request(
                "POST", f"{parts.path}/gpu/instance/create", json.dumps(body), headers
            )
            response = connection.getresponse()
            payload = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"create failed: {response.status} {payload}")
            ids.append(payload["id"])
    finally:
        connection.close()
    return ids


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until the guard process has exited (reaped if it is our child), so that its last
    status write cannot land in the temporary home while that is being removed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return
            except (FileNotFoundError, IndexError):
                return
        time.sleep(0.05)


def guard_cpu(quick: bool) -> list[Figure]:
    """CPU of the guard process (utime+stime from /proc/<pid>/stat over a window after its
    first tick) guarding 20 instances with a deadline and an idle rule each (one list call
    and 20 metrics calls per tick), at the default 30-s interval (quick: 1 s, 3 s window)."""
    from novita_notebook.guard.process import ensure_guard_running, guard_status
    from novita_notebook.guard.rules import GuardRules
    from novita_notebook.guard.store import GuardStore

    window = 3.0 if quick else 65.0
    interval = 1.0 if quick else None
    saved = os.environ.get("NOVITA_NOTEBOOK_HOME")
    # ignore_cleanup_errors: a guard that outlives SIGTERM's grace must not fail the figure
    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home,
        serving_sandbox(quick, speed=50.0) as sandbox,
    ):
        os.environ["NOVITA_NOTEBOOK_HOME"] = home
        try:
            store = GuardStore(api_url=sandbox.api_url)
            for instance_id in _create(sandbox, INSTANCES):
                rules = GuardRules.parse(stop_after="1d", idle_stop="30m")
                store.set_rules(instance_id, rules, price_per_hour=0.2)
            env = {**os.environ, "NOVITA_GUARD_AUTOSTART": "1"}
            status = ensure_guard_running(
                sandbox.api_url, sandbox.api_key, interval=interval, environ=env, wait=15
            )
            pid = status.get("pid")
            if not status.get("running") or not pid:
                raise RuntimeError(f"the guard did not start: {status}")
            try:
                deadline = time.monotonic() + 30
                while guard_status(sandbox.api_url).get("ticks", 0) < 1:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the guard made no tick in 30 s")
                    time.sleep(0.05)
                cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
                time.sleep(window)
                cpu = _cpu_seconds(pid) - cpu_before
                wall = time.monotonic() - wall_before
                ticks = guard_status(sandbox.api_url).get("ticks")
                used_interval = guard_status(sandbox.api_url).get("interval")
            finally:
                os.kill(pid, signal.SIGTERM)
                _wait_gone(pid)
        finally:
            if saved is None:
                os.environ.pop("NOVITA_NOTEBOOK_HOME", None)
            else:
                os.environ["NOVITA_NOTEBOOK_HOME"] = saved
    percent = 100.0 * cpu / wall
    return [
        Figure(
            f"guard process CPU in % of a core vs the {BUDGET_PERCENT:g} % budget "
            f"({INSTANCES} instances, {used_interval:g}-s interval)",
            percent,
            "%",
            BUDGET_PERCENT,
            target=f"<= {BUDGET_PERCENT:g} %",
            met=percent <= BUDGET_PERCENT,
            notes={"measured over": f"{wall:.1f} s, {cpu * 1000:.0f} ms CPU, {ticks} ticks"},
        )
    ]


if __name__ == "__main__":
    from .figures_guard_soak import guard_soak

    args = sys.argv[1:]
    chosen = [f for flag, f in (("--cpu", guard_cpu), ("--soak", guard_soak)) if flag in args]
    for measure in chosen or [guard_cpu, guard_soak]:
        for figure in measure("--quick" in args):
            print(figure.line(), flush=True)
            for key, value in figure.notes.items():
                print(f"    {key}: {value}", flush=True)
