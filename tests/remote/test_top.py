"""The GPU's own view over SSH: ``top`` reads the instance's nvidia-smi (the product's GPU, the
utilisation set through the sandbox's control, its processes) next to price and spend; the
guard's idle rule reads it when the metrics fail, and never stops an instance that a remote
kernel or a run keeps busy.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from novita_notebook.errors import NetworkError
from novita_notebook.guard.backend import HttpGuardBackend
from novita_notebook.guard.enforcer import gather
from novita_notebook.guard.policy import decide
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardRecord
from novita_notebook.remote import activity


def test_top_matches_the_product_gpu_and_the_utilisation_set(client, instance, sandbox):
    sandbox.set_utilization(instance.id, 73)
    frame = client.top(instance.name)
    (row,) = frame.to_dict("records")
    assert instance.product_name.startswith("RTX 4090")
    assert row["gpu_name"] == "NVIDIA GeForce RTX 4090" and row["memory_total_mib"] == 24564
    assert row["utilization_pct"] == 73 and 0 < row["memory_used_mib"] < 24564
    assert row["temperature_c"] > 31 and 18 < row["power_w"] <= row["power_limit_w"] == 450
    assert row["price_per_hour"] == instance.price_per_hour and row["cost_so_far"] >= 0
    assert row["instance"] == instance.id and row["name"] == "remote-1"
    assert frame.attrs["source"] == "nvidia-smi over SSH"
    sandbox.set_utilization(instance.id, 5)
    assert client.top(instance).loc[0, "utilization_pct"] == 5


def test_top_shows_every_gpu_and_the_python_processes(client, sandbox):
    two = client.wait(client.create("two-gpus", gpu="RTX 4090", gpu_num=2, image="ubuntu:22.04"),
                      until="running", timeout=30)  # fmt: skip
    kernel = client.kernel(two)
    frame = client.top(two)
    assert list(frame["gpu"]) == [0, 1] and set(frame["gpu_name"]) == {"NVIDIA GeForce RTX 4090"}
    assert frame["processes"].sum() >= 1
    assert f"{kernel.process.pid} " in " ".join(frame["process_list"])


class MetricsDown(HttpGuardBackend):
    """The guard's real backend with the metrics endpoint failing (the sandbox's metrics
    always answer; this is the edge the nvidia-smi source is for)."""

    def metrics(self, instance_id, start, end):
        raise NetworkError("metrics endpoint unreachable")


def _idle_actions(plan):
    return [a for a in plan.actions if a.rule == "idle"]


def test_the_idle_rule_reads_nvidia_smi_and_never_stops_a_busy_instance(client, instance, sandbox):
    api = client.config.api_url
    backend = MetricsDown(api, lambda: sandbox.api_key)
    sandbox.set_utilization(instance.id, 0)
    now = datetime.now(UTC)
    rules = dataclasses.replace(GuardRules.parse(idle_stop="10m"), set_at=now - timedelta(hours=1))
    record = GuardRecord(instance.id, rules, name=instance.name)

    state = gather(backend, [record], now).states[instance.id]
    assert state.utilisation_source == "nvidia-smi over SSH" and state.metrics_error is None
    assert state.utilisation[-1][1] == 0 and state.busy is None
    earlier = ((now - timedelta(minutes=30), 0.0),)  # as if read at every tick for half an hour

    def plan_for(seen):
        looked = dataclasses.replace(seen, utilisation=earlier + seen.utilisation,
                                     started_at=now - timedelta(hours=1))  # fmt: skip
        return decide(datetime.now(UTC), [record], {instance.id: looked})

    assert _idle_actions(plan_for(state))  # idle and not busy: the rule acts

    during = []
    client.kernel(instance).execute(
        "print('working', flush=True)\nimport time; time.sleep(0.3)",
        output=lambda _: during.append(gather(backend, [record], now).states[instance.id]),
    )
    assert "remote kernel is running a cell" in during[0].busy
    busy_plan = plan_for(during[0])
    assert not _idle_actions(busy_plan)
    assert any("busy" in note for note in busy_plan.notes)

    run = client.run(instance, "import time\ntime.sleep(1.5)", detach=True)
    running = gather(backend, [record], now).states[instance.id]
    assert f"active runs: {run.id}" in running.busy and not _idle_actions(plan_for(running))
    run.wait()
    assert _idle_actions(plan_for(gather(backend, [record], now).states[instance.id]))

    activity.mark_busy(api, instance.id, "job 7", "job 7 is running", pid=99999999)
    stale = gather(backend, [record], now).states[instance.id]  # its holder is gone: not busy
    assert stale.busy is None
    backend.close()


def test_metrics_in_an_unverified_unit_give_way_to_nvidia_smi_and_the_status_says_so(
    client, instance, sandbox, monkeypatch
):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")  # the status computes the plan itself
    backend = HttpGuardBackend(client.config.api_url, lambda: sandbox.api_key)
    sandbox.configure(metrics_scale=1)  # the API answers fractions: nothing proves the unit
    sandbox.set_utilization(instance.id, 40)
    now = datetime.now(UTC)
    record = GuardRecord(instance.id, GuardRules.parse(idle_stop="10m"), name=instance.name)
    unknown = gather(backend, [record], now).states[instance.id]
    assert unknown.utilisation_source == "nvidia-smi over SSH"
    assert unknown.utilisation[-1][1] == 40  # percent, as the GPU reports it
    known = gather(backend, [record], now, metrics_unit="fraction").states[instance.id]
    assert known.utilisation_source == "metrics" and known.utilisation[-1][1] <= 1

    client.guard(instance, idle_stop="10m")
    from novita_notebook.guard.enforcer import Enforcer

    store = client.guards.store  # a guard process notes what it read, for the status to say
    Enforcer(backend, store).plan(now, store.records())
    assert store.get(instance.id).idle_reading == "nvidia-smi over SSH"
    backend.close()
    sandbox.configure(metrics_scale=100)  # percent, proven by a value above 1
    metrics = "idle rule reads the metrics endpoint"
    assert client.guard_status()["idle_readings"] == {instance.id: metrics}

    from novita_notebook.guard.kernel import ClientGuardBackend

    def unavailable(self, instance_id, start, end):
        raise NetworkError("metrics endpoint unreachable")

    monkeypatch.setattr(ClientGuardBackend, "metrics", unavailable)
    status = client.guard_status()
    said = "idle rule reads nvidia-smi over SSH"
    assert status["idle_readings"] == {instance.id: said}
    assert said in str(status) and said in status._repr_html_()
