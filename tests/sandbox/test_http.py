"""The HTTP layer: auth, 404/405 envelopes, bad input never 500, keep-alive, loopback binding,
prompt stop, restart keeping state, and fast start of the shared fixture.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time

import pytest
import requests
from sandbox_helpers import BASIC_INSTANCE, Api, assert_error

from novita_notebook.sandbox import DEFAULT_API_KEY, Sandbox


def test_auth_is_required_and_the_key_is_never_echoed(sandbox):
    url = sandbox.api_url + "/clusters"
    assert sandbox.api_key == DEFAULT_API_KEY
    for headers in (
        {},
        {"Authorization": "Bearer sk_wrong_key_123"},
        {"Authorization": f"Basic {DEFAULT_API_KEY}"},
        {"Authorization": "Bearer "},
        {"Authorization": DEFAULT_API_KEY},
    ):
        response = requests.get(url, headers=headers, timeout=5)
        assert_error(response, 401, "UNAUTHORIZED")
        assert "sk_wrong_key_123" not in response.text and DEFAULT_API_KEY not in response.text
    ok = requests.get(url, headers={"Authorization": f"bearer {DEFAULT_API_KEY}"}, timeout=5)
    assert ok.status_code == 200


def test_custom_api_key():
    with Sandbox(api_key="sk_custom") as sb:
        assert sb.api_key == "sk_custom"
        assert Api(sb).get("/clusters").ok
        bad = requests.get(
            sb.api_url + "/clusters", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        )
        assert bad.status_code == 401
        assert "sk_custom" not in repr(sb)


def test_unknown_paths_and_wrong_methods_get_envelopes(api, sandbox):
    assert_error(api.get("/gpu/instance/list"), 404, "RESOURCE_NOT_FOUND", "/gpu/instance/list")
    assert_error(api.session.get(sandbox.url + "/elsewhere", timeout=5), 404, "RESOURCE_NOT_FOUND")
    assert_error(
        api.session.get(sandbox.url + "/_sandbox/nothing", timeout=5), 404, "RESOURCE_NOT_FOUND"
    )
    assert_error(api.post("/clusters", {}), 405, "METHOD_NOT_ALLOWED", "POST")
    assert_error(api.get("/gpu/instance/create"), 405, "METHOD_NOT_ALLOWED")
    assert_error(
        api.session.delete(sandbox.api_url + "/gpu/instance", timeout=5), 405, "METHOD_NOT_ALLOWED"
    )
    assert_error(
        api.session.put(sandbox.api_url + "/clusters", timeout=5), 405, "METHOD_NOT_ALLOWED"
    )
    assert_error(
        api.session.get(sandbox.url + "/_sandbox/reset", timeout=5), 405, "METHOD_NOT_ALLOWED"
    )


def test_malformed_bodies_are_validator_param(api, sandbox):
    url = sandbox.api_url + "/gpu/instance/create"
    for raw in (b"{", b"[1, 2]", b"null", b'"text"', b"\xff\xfe", b"{'a': 1}"):
        response = api.session.post(
            url, data=raw, headers={"Content-Type": "application/json"}, timeout=5
        )
        assert_error(response, 400, "VALIDATOR_PARAM", "body")
    empty = api.session.post(url, data=b"", timeout=5)
    assert_error(empty, 400, "VALIDATOR_PARAM", "kind")  # empty body = {}: first missing field


def _random_value(rng: random.Random, depth: int = 0):
    choices = [
        None, True, -1, 0, 7, 10**12, 3.5, "", "x", "80/http", "a" * 600,
        "registry.sandbox.local/x:1", "4090.16c62g", "as-sgp-2", "\u00e9\u4e2d",
    ]  # fmt: skip
    if depth < 2:
        choices += [
            [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))],
            {
                k: _random_value(rng, depth + 1)
                for k in rng.sample(["key", "value", "Id", "port", "type"], 2)
            },
        ]
    return rng.choice(choices)


def test_fuzzed_bodies_never_cause_a_500(api):
    from novita_notebook.sandbox.routes import CREATE_FIELDS, ROUTES

    rng = random.Random(1234)
    posts = [path for method, path in ROUTES if method == "POST"]
    fields = sorted(CREATE_FIELDS) + [
        "instanceId",
        "template",
        "templateId",
        "id",
        "ports",
        "expandRootDisk",
    ]
    for _ in range(400):
        path = rng.choice(posts)
        body = {f: _random_value(rng) for f in rng.sample(fields, rng.randrange(1, 8))}
        if rng.random() < 0.3:
            body = {**BASIC_INSTANCE, **body}
        response = api.post(path, body)
        assert response.status_code < 500, (path, body, response.text)
        assert "Traceback" not in response.text
    for _ in range(100):
        params = {
            rng.choice(["pageSize", "pageNum", "gpuNum", "instanceId", "channel"]): str(
                _random_value(rng)
            )
        }
        path = rng.choice([p for m, p in ROUTES if m == "GET"])
        assert api.get(path, **params).status_code < 500
    assert api.get("/clusters").ok


def test_raw_protocol_abuse_keeps_the_server_alive(sandbox):
    host, port = "127.0.0.1", sandbox.port
    for payload in (
        b"GARBAGE\r\n\r\n",
        b"POST /gpu-instance/openapi/v1/gpu/instance/create HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /gpu-instance/openapi/v1/gpu/instance/create HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n",
    ):
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(payload)
            conn.settimeout(5)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            assert not data.startswith(b"HTTP/1.1 5"), data[:80]
    assert Api(sandbox).get("/clusters").ok


def test_chunked_request_bodies_are_read(sandbox):
    def chunks():
        yield json.dumps({"name": "chunky", "username": "u"})[:-1].encode()
        yield b', "password": "p"}'

    response = requests.post(
        sandbox.api_url + "/repository/auth/save",
        data=chunks(),
        headers={"Authorization": f"Bearer {sandbox.api_key}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert Api(sandbox).get("/repository/auths").json()["data"][0]["name"] == "chunky"


def test_keep_alive_reuses_one_connection(sandbox):
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    conn.request("GET", "/gpu-instance/openapi/v1/clusters", headers=headers)
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    for path in (
        "/gpu-instance/openapi/v1/products",
        "/gpu-instance/openapi/v1/nope",
        "/_sandbox/faults",
    ):
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        assert response.getheader("Content-Length") is not None
        assert response.version == 11
        response.read()
        assert conn.sock is sock, "the connection was not kept alive"
    conn.close()


def test_binds_only_the_given_host(sandbox):
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert sandbox._server.socket.getsockname()[0] == "127.0.0.1"


def test_stop_is_prompt_even_with_open_connections_and_frees_the_port():
    sb = Sandbox().start()
    api = Api(sb)
    assert api.get("/clusters").ok  # leaves a pooled keep-alive connection open
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 2.0
    with pytest.raises(requests.ConnectionError):
        api.get("/clusters")
    sb.stop()  # idempotent
    assert not sb.running


def test_restart_keeps_state_and_port(sandbox, api):
    instance_id = api.create()
    port = sandbox.port
    sandbox.restart(downtime=0.2)
    assert sandbox.port == port
    assert api.instance(instance_id)["id"] == instance_id


def test_restart_in_background_has_real_downtime(sandbox):
    api = Api(sandbox)
    sandbox.restart(downtime=0.5, wait=False)
    with pytest.raises(requests.ConnectionError):
        requests.get(sandbox.api_url + "/clusters", timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            if api.get("/clusters").ok:
                break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_constructor_validates_arguments():
    with pytest.raises(ValueError, match="speed"):
        Sandbox(speed=0)
    with pytest.raises(ValueError, match="api_key"):
        Sandbox(api_key="")
    with pytest.raises(ValueError, match="port"):
        Sandbox(port=70000)


def test_the_shared_fixture_starts_fast():
    # Target < 50 ms; asserted generously because the machine is noisy.
    started = time.perf_counter()
    with Sandbox(speed=300, seed=7) as sb:
        elapsed = time.perf_counter() - started
        assert Api(sb).get("/clusters").ok
    assert elapsed < 0.5


def test_concurrent_clients_mixed_operations(sandbox):
    errors: list[str] = []

    def worker(n: int) -> None:
        api = Api(sandbox)
        try:
            for i in range(5):
                instance_id = api.create(name=f"w{n}-{i}")
                api.get("/gpu/instances", pageSize=50)
                api.post("/gpu/instance/delete", {"instanceId": instance_id})
                api.get("/products")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_holds_thousands_of_instances_with_fast_listing(sandbox):
    sandbox.set_stock(10_000, cluster_id="as-sgp-2", product_id="4090.16c62g")
    api = Api(sandbox)
    body = {**BASIC_INSTANCE, "clusterId": "as-sgp-2"}
    for i in range(5000):
        response = api.post("/gpu/instance/create", {**body, "name": f"bulk-{i}"})
        assert response.status_code == 200
    page = api.get("/gpu/instances", pageSize=100, pageNum=49).json()
    assert page["total"] == 5000 and len(page["instances"]) == 100
    assert api.get("/gpu/instances", pageSize=100, pageNum=50).json()["instances"] == []
    assert api.get("/gpu/instances", name="bulk-4999", pageSize=100).json()["total"] == 1


def test_absurdly_deep_json_is_a_validation_error(api, sandbox):
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/gpu/instance/create", "/repository/auth/save"):
        response = api.session.post(sandbox.api_url + path, data=deep, timeout=10)
        assert_error(response, 400, "VALIDATOR_PARAM", "body")
    secretish = '{"password": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api.session.post(
        sandbox.api_url + "/repository/auth/save", data=secretish, timeout=10
    )
    assert_error(response, 400, "VALIDATOR_PARAM", "body")
    control = requests.post(f"{sandbox.url}/_sandbox/faults", data=deep, timeout=10)
    assert_error(control, 400, "VALIDATOR_PARAM", "body")
