"""The enforcer: deadlines against the real sandbox over HTTP (HttpGuardBackend), and a small
fake of the backend interface only for metrics and spot edges the sandbox cannot produce yet.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from novita_notebook.errors import NotFoundError
from novita_notebook.guard.backend import HttpGuardBackend, recreate_body
from novita_notebook.guard.enforcer import Enforcer, GuardBackend, read_gpu_utilisation
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardStore

GRACE = timedelta(seconds=2)


class FakeBackend:
    """In-memory instances with driven GPU utilisation and spot state (interface fake)."""

    def __init__(self, *, metrics_available: bool = True) -> None:
        self.instances: dict[str, dict] = {}
        self.utilisation: dict[str, float] = {}
        self.calls: list[tuple[str, str]] = []
        self.events: list[tuple[str, dict]] = []
        self.metrics_available = metrics_available
        self.samples: dict[str, list[tuple[float, float]]] = {}

    def add(self, instance_id: str, **raw) -> None:
        self.instances[instance_id] = {"id": instance_id, "name": instance_id, "status": "running"}
        self.instances[instance_id].update(raw)

    def sample(self, now: float) -> None:
        """Record one utilisation point per running instance (what the cloud would measure)."""
        for instance_id, value in self.utilisation.items():
            if self.instances.get(instance_id, {}).get("status") == "running":
                self.samples.setdefault(instance_id, []).append((now, value))

    def list_instances(self):
        self.calls.append(("list", ""))
        return [dict(raw) for raw in self.instances.values()]

    def get_instance(self, instance_id):
        self.calls.append(("get", instance_id))
        if instance_id not in self.instances:
            raise NotFoundError("gone", status=404)
        return dict(self.instances[instance_id])

    def stop(self, instance_id):
        self.calls.append(("stop", instance_id))
        self.instances[instance_id]["status"] = "exited"

    def delete(self, instance_id):
        self.calls.append(("delete", instance_id))
        if instance_id not in self.instances:
            raise NotFoundError("gone")
        del self.instances[instance_id]

    def migrate(self, instance_id):
        self.calls.append(("migrate", instance_id))
        self.instances[instance_id].update(spotStatus="running", spotReclaimTime="0")

    def recreate(self, instance_id):
        self.calls.append(("recreate", instance_id))
        new_id = instance_id + "-new"
        self.add(new_id, name=self.instances[instance_id]["name"])
        return new_id

    def metrics(self, instance_id, start, end):
        self.calls.append(("metrics", instance_id))
        if not self.metrics_available:
            raise NotFoundError("no metrics endpoint", status=404)
        items = [
            {"timestamp": str(int(t)), "value": v}
            for t, v in self.samples.get(instance_id, [])
            if start.timestamp() <= t <= end.timestamp()
        ]
        # host memory in percent beside the GPU series: the evidence of the unit
        memory = [{"timestamp": item["timestamp"], "value": 35.0} for item in items]
        return {"gpuUtilization": {"avg": items, "gpuIds": []}, "memUtilization": memory}

    def notify(self, event_type, data):
        self.events.append((event_type, dict(data)))


def test_fake_and_http_backends_satisfy_the_protocol():
    assert isinstance(FakeBackend(), GuardBackend)
    backend = HttpGuardBackend("http://127.0.0.1:1/gpu-instance/openapi/v1", lambda: "sk_x")
    assert isinstance(backend, GuardBackend)
    assert backend.base_url == "http://127.0.0.1:1" and "sk_x" not in repr(backend)


def test_metrics_reader_shapes():
    avg = {"gpuUtilization": {"avg": [{"timestamp": "1767268800", "value": "12.5"}]}}
    assert read_gpu_utilisation(avg) == ((datetime(2026, 1, 1, 12, tzinfo=UTC), 12.5),)
    per_gpu = {
        "gpuUtilization": {
            "avg": [],
            "gpuIds": [
                {"gpuId": 0, "items": [{"timestamp": 1767268800, "value": 10}]},
                {"gpuId": 1, "items": [{"timestamp": 1767268800, "value": 30}]},
            ],
        }
    }
    assert read_gpu_utilisation(per_gpu)[0][1] == 20.0
    wrapped = {"data": avg}
    assert len(read_gpu_utilisation(wrapped)) == 1
    junk = {"gpuUtilization": {"avg": [{"timestamp": None, "value": 3}, "x"]}}
    assert read_gpu_utilisation(junk) == ()
    with pytest.raises(ValueError):
        read_gpu_utilisation({"cpuUtilization": []})


def _idle_setup(tmp_path, utilisation, *, metrics_available=True):
    backend = FakeBackend(metrics_available=metrics_available)
    backend.add("gpu-1")
    backend.utilisation["gpu-1"] = utilisation
    store = GuardStore(tmp_path, api_url="http://fake")
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    store.set_rules("gpu-1", GuardRules.parse(idle_stop="5m", now=t0), price_per_hour=1.0)
    enforcer = Enforcer(backend, store, actor="test", grace=GRACE * 15)  # grace 30 s
    return backend, store, enforcer, t0


def _run(backend, enforcer, t0, seconds, interval=30):
    """Tick every ``interval`` fake seconds; return the time of the stop (or None)."""
    for step in range(0, seconds + 1, interval):
        now = t0 + timedelta(seconds=step)
        backend.sample(now.timestamp())
        enforcer.tick(now)
        if ("stop", "gpu-1") in backend.calls:
            return step
    return None


def test_idle_instance_is_stopped_within_window_plus_two_intervals_after_a_warning(tmp_path):
    backend, store, enforcer, t0 = _idle_setup(tmp_path, utilisation=1.0)
    stopped_at = _run(backend, enforcer, t0, 900)
    assert stopped_at is not None and 300 <= stopped_at <= 300 + 2 * 30
    kinds = [event for event, _ in backend.events]
    assert kinds == ["guard.warning", "guard.stopped"]
    assert backend.events[0][1]["rule"] == "idle"
    assert [a["action"] for a in store.actions("gpu-1")] == ["warn", "stop"]
    metrics_calls = [c for c in backend.calls if c[0] == "metrics"]
    lists = [c for c in backend.calls if c[0] == "list"]
    assert len(metrics_calls) <= len(lists)  # one metrics call per tick at most


def test_busy_instance_is_never_stopped(tmp_path):
    backend, store, enforcer, t0 = _idle_setup(tmp_path, utilisation=60.0)
    assert _run(backend, enforcer, t0, 3600) is None
    assert backend.events == []


def test_without_metrics_the_idle_rule_does_not_act_and_says_so(tmp_path):
    backend, store, enforcer, t0 = _idle_setup(tmp_path, utilisation=0.0, metrics_available=False)
    assert _run(backend, enforcer, t0, 1200) is None
    plan = enforcer.tick(t0 + timedelta(seconds=1300)).plan
    assert any("metrics unavailable" in note for note in plan.notes)


@pytest.mark.parametrize("policy", ["notify", "migrate", "recreate"])
def test_spot_reclaim_policies(tmp_path, policy):
    backend = FakeBackend()
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    reclaim = t0 + timedelta(minutes=60)
    backend.add("spot-1", billingMode="spot", spotStatus="running", spotReclaimTime="0")
    store = GuardStore(tmp_path, api_url="http://fake")
    store.set_rules("spot-1", GuardRules.parse(on_reclaim=policy, now=t0))
    enforcer = Enforcer(backend, store, actor="test")
    enforcer.tick(t0)
    assert backend.events == []
    backend.instances["spot-1"].update(
        spotStatus="notified", spotReclaimTime=str(int(reclaim.timestamp()))
    )
    enforcer.tick(t0 + timedelta(seconds=5))  # the next tick surfaces the notice
    assert [e for e, _ in backend.events][:1] == ["spot.reclaim_notice"]
    enforcer.tick(t0 + timedelta(seconds=10))  # announced once only
    assert [e for e, _ in backend.events].count("spot.reclaim_notice") == 1
    acts = [c for c in backend.calls if c[0] in ("migrate", "recreate", "stop", "delete")]
    if policy == "notify":
        assert acts == []
    elif policy == "migrate":
        assert acts == [("migrate", "spot-1")]
        assert backend.events[-1][0] == "guard.migrated"
    else:
        assert acts == []  # waits for the reclaim
        backend.instances["spot-1"]["spotStatus"] = "reclaiming"
        enforcer.tick(t0 + timedelta(seconds=20))
        assert [c for c in backend.calls if c[0] == "recreate"] == [("recreate", "spot-1")]
        assert store.get("spot-1-new") is not None and store.get("spot-1") is None
        assert backend.events[-1][1]["newInstanceId"] == "spot-1-new"


def test_recreate_body_copies_the_instance():
    detail = {
        "name": "demo",
        "productId": "4090.16c62g",
        "gpuNum": "2",
        "rootfsSize": 60,
        "imageUrl": "ubuntu:22.04",
        "billingMode": "spot",
        "portMappings": [{"port": 8888, "type": "http"}, {"port": 2222, "type": "tcp"}],
        "envs": [{"key": "A", "value": "1"}],
        "clusterId": "as-sgp-2",
    }
    body = recreate_body(detail)
    assert body["name"] == "demo" and body["gpuNum"] == 2 and body["ports"] == "8888/http"
    assert "clusterId" not in body and body["envs"] == [{"key": "A", "value": "1"}]


# -- against the sandbox (HTTP) --------------------------------------------------------------
def status(client, instance_id):
    return client.api.get_instance(instance_id)["status"]


def test_deadline_stop_on_the_sandbox_with_warning_first(client, sandbox, tmp_path):
    inst = client.create("guarded-1", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    other = client.create("unguarded", gpu="RTX 3090", image="ubuntu:22.04", wait=True)
    store = GuardStore(tmp_path, api_url=sandbox.api_url)
    rules = GuardRules.parse(stop_after=2, idle_stop="1m")
    store.set_rules(inst.id, rules, name=inst.name, price_per_hour=inst.price_per_hour)
    backend = HttpGuardBackend(sandbox.url, lambda: sandbox.api_key)
    enforcer = Enforcer(backend, store, actor="test")
    try:
        first = enforcer.tick()
        # the sandbox serves metrics now: the idle rule has samples (busy after start)
        assert not any("metrics unavailable" in n for n in first.plan.notes)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            enforcer.tick()
            if status(client, inst.id) in ("toStop", "stopping", "exited"):
                break
            time.sleep(0.1)
        assert status(client, inst.id) in ("toStop", "stopping", "exited")
        assert status(client, other.id) == "running"
        assert [e["event"] for e in backend.events] == ["guard.warning", "guard.stopped"]
        stops = [r for r in sandbox.requests() if r["path"].endswith("/gpu/instance/stop")]
        assert len(stops) == 1
        enforcer.tick()
        assert len([r for r in sandbox.requests() if r["path"].endswith("/stop")]) == 1
        assert sandbox.api_key not in (tmp_path / "guard.json").read_text()
    finally:
        backend.close()
