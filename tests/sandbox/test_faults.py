"""Injected faults (each kind) and the request log, over HTTP and through the Python API.
Faults only touch the Novita namespace; control and proxy endpoints keep answering.
"""

from __future__ import annotations

import time

import pytest
import requests
from sandbox_helpers import BASIC_INSTANCE, Api, assert_error


def control(sandbox, path: str, body=None, method: str = "POST") -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", json=body, timeout=10)


def test_error_rate_answers_5xx_before_any_side_effect(sandbox, api):
    assert control(sandbox, "faults", {"errorRate": 1.0}).json() == {"faults": {"errorRate": 1.0}}
    statuses = set()
    for _ in range(20):
        response = api.post("/gpu/instance/create", BASIC_INSTANCE)
        assert response.status_code in (500, 503)
        body = response.json()
        assert body["code"] == response.status_code and body["reason"] in {
            "UNKNOWN",
            "SERVICE_UNAVAILABLE",
        }
        statuses.add(response.status_code)
    assert statuses == {500, 503}
    # Control endpoints are never faulted; nothing was created.
    assert control(sandbox, "faults", {}).json() == {"faults": {}}
    assert api.get("/gpu/instances").json()["total"] == 0


def test_partial_error_rate_is_roughly_honoured(sandbox, api):
    sandbox.set_faults(errorRate=0.5)
    failures = sum(api.get("/clusters").status_code >= 500 for _ in range(200))
    assert 50 < failures < 150


def test_latency_is_added(sandbox, api):
    sandbox.set_faults(latencyMs=150)
    started = time.monotonic()
    assert api.get("/clusters").ok
    assert time.monotonic() - started >= 0.14
    assert sandbox.requests()[-1]["status"] == 200


def test_rate_limit_answers_429_with_integer_retry_after(sandbox, api):
    sandbox.set_faults(rateLimitPerMinute=5)
    assert all(api.get("/clusters").ok for _ in range(5))
    limited = api.get("/clusters")
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
    retry_after = limited.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
    # Control and proxy endpoints are outside the limit.
    assert control(sandbox, "requests", method="GET").ok


def test_rate_limit_window_slides(sandbox):
    from novita_notebook.sandbox.faults import Faults

    faults = Faults()
    faults.configure({"rateLimitPerMinute": 2})
    assert faults.decide(False, now=100.0).error is None
    assert faults.decide(False, now=130.0).error is None
    blocked = faults.decide(False, now=150.0)
    assert blocked.error is not None and blocked.retry_after == 10
    assert faults.decide(False, now=160.5).error is None  # the first request left the window


def test_drop_rate_closes_without_a_response_and_logs_status_zero(sandbox, api):
    sandbox.clear_requests()
    sandbox.set_faults(dropRate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.get("/clusters")
    sandbox.clear_faults()
    assert api.get("/clusters").ok  # the server keeps serving
    log = sandbox.requests()
    assert [e["status"] for e in log] == [0, 200]


def test_ambiguous_create_creates_then_drops(sandbox, api):
    sandbox.set_faults(ambiguousCreateRate=1.0)
    assert api.get("/clusters").ok  # only creates are affected
    with pytest.raises(requests.ConnectionError):
        api.post("/gpu/instance/create", {**BASIC_INSTANCE, "name": "ambiguous-1"})
    sandbox.clear_faults()
    listed = api.get("/gpu/instances", name="ambiguous-1").json()
    assert listed["total"] == 1
    # An invalid create is still answered (nothing was created, nothing to be ambiguous about).
    sandbox.set_faults(ambiguousCreateRate=1.0)
    assert api.post("/gpu/instance/create", {**BASIC_INSTANCE, "gpuNum": 0}).status_code == 400


def test_fault_settings_are_validated(sandbox):
    for body, field in [
        ({"errorRate": 1.5}, "errorRate"),
        ({"dropRate": -0.1}, "dropRate"),
        ({"latencyMs": -1}, "latencyMs"),
        ({"latencyMs": "10"}, "latencyMs"),
        ({"rateLimitPerMinute": True}, "rateLimitPerMinute"),
        ({"chaos": 1}, "chaos"),
    ]:
        assert_error(control(sandbox, "faults", body), 400, "VALIDATOR_PARAM", field)
    assert_error(control(sandbox, "faults", [1]), 400, "VALIDATOR_PARAM", "body")
    with pytest.raises(ValueError, match="errorRate"):
        sandbox.set_faults(errorRate=2)
    with pytest.raises(ValueError, match="bogus"):
        sandbox.set_faults(bogus=1)
    assert sandbox.set_faults(error_rate=0.25, latency_ms=5) == {
        "errorRate": 0.25,
        "latencyMs": 5.0,
    }
    assert control(sandbox, "faults", method="GET").json() == {
        "faults": {"errorRate": 0.25, "latencyMs": 5.0}
    }


def test_faults_do_not_touch_the_proxy(sandbox, api):
    instance_id = api.create(ports="80/http")
    api.wait_for(instance_id, "running")
    time.sleep(0.1)  # the app boots shortly after running
    sandbox.set_faults(errorRate=1.0, dropRate=1.0)
    page = requests.get(f"{sandbox.url}/_sandbox/proxy/{instance_id}/80/", timeout=5)
    assert page.status_code == 200


def test_request_log_records_every_call(sandbox, api):
    sandbox.clear_requests()
    started = time.time()
    api.get("/products", clusterId="as-sgp-2")
    api.post("/repository/auth/save", {"name": "n", "username": "u", "password": "hunter2"})
    api.get("/nope")
    log = control(sandbox, "requests", method="GET").json()["requests"]
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/gpu-instance/openapi/v1/products", 200),
        ("POST", "/gpu-instance/openapi/v1/repository/auth/save", 200),
        ("GET", "/gpu-instance/openapi/v1/nope", 404),
    ]
    assert log[0]["query"] == "clusterId=as-sgp-2" and log[0]["body"] == ""
    assert all(started - 1 <= e["time"] <= time.time() + 1 for e in log)
    assert '"username": "u"' in log[1]["body"] and "hunter2" not in log[1]["body"]
    assert sandbox.requests() == log
    assert control(sandbox, "requests", method="DELETE").json() == {}
    assert sandbox.requests() == []


def test_request_log_is_thread_safe_under_load(sandbox):
    import threading

    sandbox.clear_requests()

    def worker() -> None:
        api = Api(sandbox)
        for _ in range(25):
            api.get("/clusters")

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = sandbox.requests()
    assert len(log) == 150 and all(e["status"] == 200 for e in log)
