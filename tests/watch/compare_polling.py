"""Adaptive (Backoff) vs fixed 1-s polling on the sandbox: API calls and detection lag per wait.
Run by hand (not collected by pytest): ``python tests/watch/compare_polling.py [--speed 10]``.

Times are scaled: at ``--speed S`` the sandbox runs S times faster and both schedules are
shrunk by S, so results read as real-time seconds. Provisioning of ~10 s is a start from
exited (queue 1 s + starting 10 s); ~30 s and ~90 s are creates whose pull time follows the
image size. Lag = when wait() returned minus when the sandbox switched to running.
"""

from __future__ import annotations

import argparse
import statistics
import time

from novita_notebook import Novita
from novita_notebook.sandbox import Sandbox, catalog
from novita_notebook.sandbox import world as sandbox_world
from novita_notebook.waiting import Backoff

CASES = {
    "~10 s (start)": ("start", "ubuntu:22.04"),
    "~30 s (create)": ("create", "ollama/ollama:latest"),
    "~90 s (create)": ("create", "vllm/vllm-openai:latest"),
}


def one_wait(sandbox, client, product_id, kind, image, schedule, speed):
    """Returns (GET calls made by the wait, lag in real-time seconds, nominal seconds)."""
    body = {"name": "bench", "productId": product_id, "gpuNum": 1, "rootfsSize": 20,
            "imageUrl": image, "kind": "gpu"}  # fmt: skip
    instance_id = client.api.create_instance(body)
    started = time.time()
    quick = Backoff(initial=0.005, cap=0.02)
    if kind == "start":
        client.wait(instance_id, poll=quick, timeout=120)
        client.api.stop_instance(instance_id)
        client.wait(instance_id, until="exited", poll=quick, timeout=120)
        started = time.time()
        client.api.start_instance(instance_id)
        nominal = sandbox_world.QUEUE_SECONDS + sandbox_world.STARTING_SECONDS
    else:
        nominal = (
            sandbox_world.QUEUE_SECONDS
            + sandbox_world.CREATING_SECONDS
            + catalog.pull_seconds(image)
        )
    sandbox.clear_requests()
    client.wait(instance_id, poll=schedule, timeout=600)
    done = time.time()
    calls = sum(1 for r in sandbox.requests() if r["path"].endswith("/gpu/instance"))
    client.api.delete_instance(instance_id)
    return calls, (done - (started + nominal / speed)) * speed, nominal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with Sandbox(speed=args.speed, seed=1) as sandbox:
        sandbox.set_stock(100)
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        product_id = next(p.id for p in client.api.products() if p.available)
        schedules = {
            "adaptive": Backoff().scaled(1 / args.speed),
            "fixed 1 s": Backoff.fixed(1 / args.speed),
        }
        for case, (kind, image) in CASES.items():
            for name, schedule in schedules.items():
                runs = [
                    one_wait(sandbox, client, product_id, kind, image, schedule, args.speed)
                    for _ in range(args.runs)
                ]
                lags = [lag for _, lag, _ in runs]
                print(
                    f"{case:15} nominal {runs[0][2]:5.1f} s  {name:9}  "
                    f"calls {statistics.mean(c for c, _, _ in runs):5.1f}  "
                    f"lag mean {statistics.mean(lags):4.2f} s  max {max(lags):4.2f} s"
                )
        client.close()


if __name__ == "__main__":
    main()
