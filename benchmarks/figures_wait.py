"""Figures of waiting and watching: readiness calls and detection lag vs fixed 1-s polling,
watcher calls per tick for 100 instances, and the watcher's CPU use at its default interval.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from urllib.parse import urlsplit

from novita_notebook import Instance, Novita
from novita_notebook.sandbox import Sandbox
from novita_notebook.waiting import Backoff

from .harness import Figure
from .remote_sandbox import RemoteSandbox, serving_sandbox

IMAGE = "ubuntu:22.04"
PROVISIONING_SECONDS = (10, 30, 90)


def _provisioning_at_speed_1(sandbox: Sandbox, client: Novita) -> float:
    """Sandbox seconds from create to running for IMAGE, read from one calibration instance."""
    inst = client.create("calibrate", image=IMAGE, gpu="RTX 3090")
    record = sandbox.world.instances[inst.id]
    end = record.stages[-1][1] if record.stages else record.created_at
    return (end - record.created_at) * sandbox.speed


def _timed_wait(
    client: Novita, sandbox: Sandbox, instance: Instance, poll: Backoff, out: list
) -> None:
    before = client.api.requests_made
    # the Instance create() returned, as users pass it: no id/name resolution call
    result = client.wait(instance, until="running", timeout=600, poll=poll, progress="silent")
    returned = time.time()
    record = sandbox.world.instances[instance.id]
    out.append(
        {
            "calls": client.api.requests_made - before,
            "lag": returned - record.last_started_at,
            "provisioning": record.last_started_at - record.created_at,
            "status": result.status,
        }
    )


def _readiness_round(
    speed: float,
    scale: float,
    pairs: int,
    seed: int,
    adaptive_results: list[dict],
    fixed_results: list[dict],
) -> None:
    """``pairs`` waits per side at once on one sandbox (its phases seeded by ``seed``)."""
    with Sandbox(speed=speed, seed=seed) as sandbox:
        sandbox.set_stock(1000)
        # one client per wait, so each wait's request counter counts only its own polls
        clients: list[Novita] = []
        threads = []
        try:
            for index in range(pairs):
                for side, schedule, out in (
                    ("a", Backoff().scaled(1 / scale), adaptive_results),
                    ("f", Backoff.fixed(1.0 / scale), fixed_results),
                ):
                    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
                    clients.append(client)
                    client.cached_products()
                    client.cached_clusters()
                    inst = client.create(f"ready-{side}{index}", gpu="RTX 3090", image=IMAGE)
                    threads.append(
                        threading.Thread(
                            target=_timed_wait, args=(client, sandbox, inst, schedule, out)
                        )
                    )
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            for client in clients:
                client.close()


def readiness(quick: bool) -> list[Figure]:
    """For provisioning times of 10, 30 and 90 s: ``wait(until="running")`` with the default
    adaptive schedule vs a fixed 1-s poll, two rounds of 4 waits per side at once, each on its
    own client.
    Time is compressed x10 on both sides (the sandbox's speed and both poll schedules); calls
    compare as counted, lags (wait's return minus the sandbox's arrival at running) are given
    in un-scaled seconds.
    """
    scale = 60.0 if quick else 10.0
    pairs = 1 if quick else 4
    # two rounds of four: four waits per side alone moved the 10-s lag between 7 and 12 %
    rounds = 1 if quick else 2
    figures: list[Figure] = []
    with Sandbox(speed=1.0, seed=0) as calibration:
        probe = Novita(api_key=calibration.api_key, api_url=calibration.url)
        try:
            nominal_image_seconds = _provisioning_at_speed_1(calibration, probe)
        finally:
            probe.close()
    for provisioning in PROVISIONING_SECONDS:
        speed = scale * nominal_image_seconds / provisioning
        adaptive_results: list[dict] = []
        fixed_results: list[dict] = []
        for round_seed in range(rounds):
            _readiness_round(speed, scale, pairs, round_seed, adaptive_results, fixed_results)
        if len(adaptive_results) != pairs * rounds or len(fixed_results) != pairs * rounds:
            raise RuntimeError("a readiness wait failed; see the traceback above")
        adaptive_calls = statistics.mean(r["calls"] for r in adaptive_results)
        fixed_calls = statistics.mean(r["calls"] for r in fixed_results)
        adaptive_lag = statistics.mean(r["lag"] for r in adaptive_results) * scale
        fixed_lag = statistics.mean(r["lag"] for r in fixed_results) * scale
        measured = statistics.mean(r["provisioning"] for r in adaptive_results) * scale
        figures.append(
            Figure(
                f"readiness calls vs fixed 1-s polling, {provisioning} s provisioning "
                "(ratio = x fewer)",
                adaptive_calls,
                "calls",
                fixed_calls,
                ratio_of="baseline/value",
                target=">= 4x fewer calls",
                met=fixed_calls / adaptive_calls >= 4,
            )
        )
        figures.append(
            Figure(
                f"readiness detection lag vs the provisioning time, {provisioning} s provisioning",
                adaptive_lag,
                "s",
                measured,
                target="<= 10% of the provisioning time",
                met=adaptive_lag <= 0.10 * measured,
                notes={
                    "fixed 1-s polling lag": f"{fixed_lag:.2f} s",
                    "time scale": f"x{scale:g} (sandbox speed {speed:.1f}), {rounds} x {pairs} "
                    "wait(s) each",
                },
            )
        )
    return figures


def _create_raw(sandbox: RemoteSandbox, count: int, prefix: str) -> list[str]:
    """Create instances with bare HTTP (no client bookkeeping) and return their ids."""
    import http.client

    sandbox.control("POST", "stock", {"stock": 100_000})
    parts = urlsplit(sandbox.api_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {sandbox.api_key}", "Content-Type": "application/json"}
    ids = []
    try:
        for index in range(count):
            body = {
                "name": f"{prefix}-{index}",
                "productId": "3090.12c46g",
                "gpuNum": 1,
                "rootfsSize": 50,
                "imageUrl": IMAGE,
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


def watcher_calls_per_tick(quick: bool) -> list[Figure]:
    """API calls per watcher tick for 100 watched instances vs one GET per instance."""
    count = 100
    with serving_sandbox(quick, speed=1.0) as sandbox:
        ids = _create_raw(sandbox, count, "watched")
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            client.cached_products()
            watcher = client.watch(ids, interval=0.05)
            try:
                watcher.wait_for(lambda w: w.ticks >= (3 if quick else 10), timeout=60)
            finally:
                watcher.stop()
            per_tick = watcher.calls / watcher.ticks
            # the alternative: one GET per instance per tick
            before = client.api.requests_made
            for instance_id in ids:
                client.api.get_instance(instance_id)
            per_instance = client.api.requests_made - before
        finally:
            client.close()
    limit = math.ceil(count / watcher.page_size)
    return [
        Figure(
            f"watcher calls per tick vs per-instance polling ({count} instances)",
            per_tick,
            "calls",
            per_instance,
            target=f"<= ceil({count}/{watcher.page_size}) = {limit}",
            met=per_tick <= limit,
            notes={"ticks measured": str(watcher.ticks)},
        )
    ]


def watcher_cpu(quick: bool) -> list[Figure]:
    """Process CPU while a watcher follows 20 instances at its default interval."""
    seconds = 1.0 if quick else 10.0
    budget = 2.0
    with serving_sandbox(quick, speed=1.0) as sandbox:
        ids = _create_raw(sandbox, 20, "cpu")
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            client.cached_products()
            watcher = client.watch(ids)  # the default interval
            try:
                watcher.wait_for(lambda w: w.ticks >= 1, timeout=30)
                cpu_before, wall_before = time.process_time(), time.perf_counter()
                time.sleep(seconds)
                cpu = time.process_time() - cpu_before
                wall = time.perf_counter() - wall_before
            finally:
                watcher.stop()
            interval = watcher.interval
        finally:
            client.close()
    percent = 100.0 * cpu / wall
    return [
        Figure(
            f"watcher CPU in % of a core vs the {budget:g} % budget "
            f"(20 instances, default {interval:g}-s interval)",
            percent,
            "%",
            budget,
            target=f"<= {budget:g} %",
            met=percent <= budget,
            notes={"measured over": f"{wall:.1f} s, {cpu * 1000:.0f} ms CPU"},
        )
    ]
