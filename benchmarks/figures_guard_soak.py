"""The guard soak: 50 guarded instances for one hour of sandbox time (at 60x: a minute of wall
time), 10 % of API requests faulted, the guard process and a kernel watcher both guarding. How
late each rule acted, in guard intervals (max and p99), and the guard process's memory and
threads at start and end. ``python -m benchmarks.figures_guard --soak [--quick]``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .figures_guard import _create, _wait_gone
from .harness import Figure
from .remote_sandbox import RemoteSandbox, serving_sandbox

SANDBOX_INTERVAL = 30.0  # the guard's default interval, in sandbox seconds
#: Faults on one request in ten: 5xx answers, dropped connections, instances left out of a
#: listing, stops answered but never done.
FAULTS = {"errorRate": 0.05, "dropRate": 0.02, "listDropRate": 0.02, "stopIgnoreRate": 0.01}
TARGET_OVERRUN = 1.0  # guard intervals
FLAT = 1.10  # end / start, for memory and threads


@dataclass
class _Rule:
    instance_id: str
    kind: str  # stop_after, delete_after, idle
    bound: float  # wall time by which it should have acted (before the one interval allowed)
    after: float = 0.0  # only a stop or delete sent after this counts (a kernel's own stops)


def _process_stats(pid: int) -> tuple[float, int]:
    """(resident memory in MB, threads) of a process, from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            values[key] = value.strip()
    return int(values["VmRSS"].split()[0]) / 1024.0, int(values["Threads"])


def _plan(ids: list[str], speed: float, hour: float, rng: random.Random) -> tuple[list, list]:
    """Rules for each instance (sandbox seconds from now): deadlines spread over the hour,
    one in five a delete, one in five an idle rule (its GPU goes idle at a random moment)."""
    rules, idle = [], []
    for index, instance_id in enumerate(ids):
        at = rng.uniform(0.05, 0.9) * hour
        if index % 5 == 3:
            rules.append((instance_id, "delete_after", at))
        elif index % 5 == 4:
            idle.append((instance_id, rng.uniform(0.05, 0.4) * hour))
            rules.append((instance_id, "idle", 0.95 * hour))  # and a backstop deadline
        else:
            rules.append((instance_id, "stop_after", at))
    return rules, idle


def _store_rules(sandbox: RemoteSandbox, plan: list, speed: float, hour: float) -> list[_Rule]:
    from novita_notebook.guard.rules import GuardRules
    from novita_notebook.guard.store import GuardStore

    store = GuardStore(api_url=sandbox.api_url)
    now = datetime.now(UTC)
    out = []
    for instance_id, kind, at in plan:
        wall = timedelta(seconds=at / speed)
        if kind == "idle":
            rules = GuardRules.parse(idle_stop=timedelta(seconds=0.1 * hour / speed),
                                     stop_after=wall, now=now)  # fmt: skip
        else:
            rules = GuardRules.parse(now=now, **{kind: wall})
        store.set_rules(instance_id, rules, price_per_hour=0.2)
        if kind != "idle":
            out.append(_Rule(instance_id, kind, (now + wall).timestamp()))
    return out


def _acted(requests: list[dict[str, Any]], instance_id: str, after: float) -> float | None:
    """When the first stop or delete of an instance after ``after`` reached the sandbox."""
    for request in requests:
        path = request["path"]
        acts = request["method"] == "POST" and path.endswith(("/stop", "/delete"))
        if acts and request["time"] >= after and instance_id in request["body"]:
            return float(request["time"])
    return None


def guard_soak(quick: bool) -> list[Figure]:
    """The guard process and a kernel watcher (a Novita client's watcher, in this process)
    guard 50 instances for an hour of sandbox time at 60x (quick: 10 instances, 10 minutes
    at 120x), the guard interval 30 sandbox seconds. Rules: deadlines spread over the hour,
    a fifth deletes, a fifth idle stops (the GPU pinned idle at a random moment); five
    instances are stopped and started again by the kernel before their deadline. Faults on
    10 % of requests (5xx 5 %, dropped 2 %, instance left out of a listing 2 %, stop
    ignored 1 %). Overrun: how long after its bound (the deadline; for idle, the window plus
    the warning's grace after the GPU went idle) the first stop or delete reached the
    sandbox, in guard intervals. Memory (VmRSS) and threads of the guard process after its
    first tick and at the end."""
    from novita_notebook import Novita
    from novita_notebook.guard.process import ensure_guard_running, guard_status

    count, hour, speed = (10, 600.0, 120.0) if quick else (50, 3600.0, 60.0)
    interval = SANDBOX_INTERVAL / speed
    rng = random.Random(20261206)
    saved = os.environ.get("NOVITA_NOTEBOOK_HOME")
    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home,
        serving_sandbox(quick, speed=speed) as sandbox,
    ):
        os.environ["NOVITA_NOTEBOOK_HOME"] = home
        client = None
        pid = None
        try:
            ids = _create(sandbox, count)
            time.sleep(30.0 / speed)  # every instance reaches running
            plan, idle = _plan(ids, speed, hour, rng)
            for instance_id, _ in idle:  # busy until the moment it goes idle
                sandbox.control("POST", "utilization", {"instanceId": instance_id, "gpu": 90.0})
            rules = _store_rules(sandbox, plan, speed, hour)
            sandbox.control("POST", "faults", FAULTS)
            env = {**os.environ, "NOVITA_GUARD_AUTOSTART": "1"}
            status = ensure_guard_running(sandbox.api_url, sandbox.api_key, interval=interval,
                                          environ=env, wait=15)  # fmt: skip
            pid = status.get("pid")
            if not status.get("running") or not pid:
                raise RuntimeError(f"the guard did not start: {status}")
            os.environ["NOVITA_GUARD_AUTOSTART"] = "0"  # the kernel: its watcher only
            client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, poll_interval=interval,
                            retry_backoff=interval / 60, breaker_reset_timeout=interval)  # fmt: skip
            client.guards.show = False  # its events are counted, not printed
            client.guards.ensure_kernel_guard(interval)
            while guard_status(sandbox.api_url).get("ticks", 0) < 2:
                time.sleep(interval / 4)
            start_stats = _process_stats(pid)
            rules += _drive(sandbox, client, rules, idle, hour, speed, interval, rng)
            end_stats = _process_stats(pid)
            requests = sandbox.control("GET", "requests")["requests"]
        finally:
            if client is not None:
                client.close()
            if pid:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                _wait_gone(pid)
            os.environ.pop("NOVITA_GUARD_AUTOSTART", None)
            if saved is None:
                os.environ.pop("NOVITA_NOTEBOOK_HOME", None)
            else:
                os.environ["NOVITA_NOTEBOOK_HOME"] = saved
    return _figures(rules, requests, interval, count, hour, speed, start_stats, end_stats)


def _drive(sandbox, client, rules, idle, hour, speed, interval, rng) -> list[_Rule]:  # noqa: ANN001
    """Play the hour: GPUs going idle, and the kernel stopping and starting five instances
    (before their deadline, which the guard must then still enforce). Returns idle rules."""
    started = time.time()
    events = sorted((started + at / speed, "idle", i) for i, at in idle)
    cycled = [r for r in rules if r.kind == "stop_after" and r.bound - started > 0.4 * hour / speed]
    for rule in rng.sample(cycled, min(5, len(cycled))):
        at = started + rng.uniform(0.1, 0.3) * (rule.bound - started)
        events += [(at, "stop", rule), (at + 4 * interval, "start", rule)]
    events.sort(key=lambda e: e[0])
    out: list[_Rule] = []
    for at, what, subject in events:
        time.sleep(max(0.0, at - time.time()))
        if what == "idle":
            sandbox.control("POST", "utilization", {"instanceId": subject, "gpu": 1.0})
            window = 0.1 * hour / speed
            out.append(_Rule(subject, "idle", time.time() + window + interval, time.time()))
        else:
            with suppress(Exception):  # a faulted call: the kernel just moves on
                getattr(client, what)(subject.instance_id)
            subject.after = time.time()
    time.sleep(max(0.0, started + hour / speed + 3 * interval - time.time()))
    return out


def _figures(rules, requests, interval, count, hour, speed, start, end) -> list[Figure]:  # noqa: ANN001
    overruns, missing, late = [], [], []
    for rule in rules:
        # an idle stop may come up to one metrics point early (the unit of its evidence)
        since = rule.after if rule.kind == "idle" else max(rule.after, rule.bound - interval)
        acted = _acted(requests, rule.instance_id, since)
        if acted is None:
            missing.append(f"{rule.kind} {rule.instance_id}")
            overruns.append(float("inf"))
            continue
        overruns.append(max(0.0, acted - rule.bound) / interval)
        late.append((overruns[-1], rule.kind))
    overruns.sort()
    late.sort(reverse=True)
    worst = overruns[-1] if overruns else 0.0
    p99 = overruns[min(len(overruns) - 1, int(0.99 * len(overruns)))] if overruns else 0.0
    setting = f"{count} instances, {hour / 60:g} min of sandbox time at {speed:g}x, 10 % faults"
    common = {"rules": f"{len(rules)} ({len(missing)} never acted)", "faults": json.dumps(FAULTS)}
    if missing:
        common["never acted"] = ", ".join(missing)
    common["latest"] = ", ".join(f"{kind} {value:.2f}" for value, kind in late[:5])
    memory_ratio, threads_ratio = end[0] / start[0], end[1] / start[1]
    return [
        Figure(f"guard soak max overrun in guard intervals ({setting})", worst, "",
               TARGET_OVERRUN, target=f"<= {TARGET_OVERRUN:g} interval",
               met=worst <= TARGET_OVERRUN, notes=common),
        Figure(f"guard soak p99 overrun in guard intervals ({setting})", p99, "",
               TARGET_OVERRUN, target=f"<= {TARGET_OVERRUN:g} interval",
               met=p99 <= TARGET_OVERRUN),
        Figure("guard soak guard-process memory at the end vs the start", end[0], "MB",
               start[0], target=f"within {FLAT - 1:.0%}", met=memory_ratio <= FLAT),
        Figure("guard soak guard-process threads at the end vs the start", end[1], "",
               start[1], target=f"within {FLAT - 1:.0%}", met=threads_ratio <= FLAT),
    ]  # fmt: skip
