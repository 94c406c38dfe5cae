"""The sandbox's own control endpoints under ``/_sandbox/`` (no auth, never faulted): reset,
stock, faults, the request log, behaviour switches, GPU utilisation, forced spot notices, SSH
faults and the GPU reading an instance's nvidia-smi prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .validate import ApiError, check_object, get_int, get_str, invalid

if TYPE_CHECKING:
    from .app import Sandbox

CONTROL_PATHS = frozenset(
    {
        "/_sandbox/reset",
        "/_sandbox/stock",
        "/_sandbox/faults",
        "/_sandbox/requests",
        "/_sandbox/config",
        "/_sandbox/utilization",
        "/_sandbox/spot/reclaim",
        "/_sandbox/gpu",
        "/_sandbox/ssh/sever",
        "/_sandbox/ssh/refuse",
        "/_sandbox/ssh/hostkey",
        "/_sandbox/ssh/forwarding",
    }
)


def _number(body: dict[str, Any], key: str, low: float, high: float | None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise invalid(key, "must be a number")
    if value < low or (high is not None and value > high):
        raise invalid(key, f"must be between {low:g} and {high:g}" if high else f">= {low:g}")
    return float(value)


def handle(app: Sandbox, method: str, path: str, body: Any) -> Any:
    """The JSON answer of one control request (ApiError for bad input)."""
    world = app.world
    if path == "/_sandbox/reset" and method == "POST":
        app.reset()
        return {}
    if path == "/_sandbox/stock" and method == "POST":
        check_object(body, {"clusterId", "productId", "stock"})
        stock = get_int(body, "stock", required=True, minimum=0)
        cluster_id = get_str(body, "clusterId")
        product_id = get_str(body, "productId")
        with world.lock:
            return {"updated": world.set_stock(stock, cluster_id, product_id)}
    if path == "/_sandbox/faults" and method == "POST":
        return {"faults": app.faults.configure(body)}
    if path == "/_sandbox/faults" and method == "GET":
        return {"faults": app.faults.settings}
    if path == "/_sandbox/requests" and method == "GET":
        return {"requests": app.log.entries()}
    if path == "/_sandbox/requests" and method == "DELETE":
        app.log.clear()
        return {}
    if path == "/_sandbox/config" and method in ("GET", "POST"):
        with world.lock:
            if method == "POST":
                world.switches.update(body)
            return {"config": world.switches.as_dict()}
    if path == "/_sandbox/utilization" and method == "POST":
        check_object(body, {"instanceId", "gpu"})
        instance_id = get_str(body, "instanceId", required=True, min_len=1)
        gpu = _number(body, "gpu", 0, 100)
        with world.lock:
            world.set_utilization(instance_id, gpu)
        return {"instanceId": instance_id, "gpu": gpu}
    if path == "/_sandbox/spot/reclaim" and method == "POST":
        check_object(body, {"instanceId", "noticeSeconds"})
        instance_id = get_str(body, "instanceId", required=True, min_len=1)
        notice = _number(body, "noticeSeconds", 0, None)
        with world.lock:
            record = world.reclaim_notice(instance_id, 3600.0 if notice is None else notice)
            return {
                "instanceId": instance_id,
                "spotReclaimTime": str(int(record.spot_reclaim_time or 0)),
            }
    if path.startswith("/_sandbox/ssh/") or path == "/_sandbox/gpu":
        return _machines(app, method, path, body)
    raise ApiError("METHOD_NOT_ALLOWED", f"method {method} not allowed on {path}", status=405)


def _machines(app: Sandbox, method: str, path: str, body: Any) -> Any:
    """The instances' hosts: their GPU reading and SSH faults."""
    if method != "POST":
        raise ApiError("METHOD_NOT_ALLOWED", f"method {method} not allowed on {path}", status=405)
    if path == "/_sandbox/ssh/refuse":
        check_object(body, {"count"})
        count = get_int(body, "count", required=True, minimum=0)
        app.machines.refuse(count)
        return {"count": count}
    if path == "/_sandbox/ssh/forwarding":
        allowed = check_object(body, {"allowed"}).get("allowed")
        if not isinstance(allowed, bool):
            raise invalid("allowed", "must be true or false")
        app.machines.allow_forwarding(allowed)
        return {"allowed": allowed}
    if path == "/_sandbox/ssh/sever":
        check_object(body, {"instanceId"})
        return {"severed": app.machines.sever(get_str(body, "instanceId") or None)}
    check_object(body, {"instanceId"})
    instance_id = get_str(body, "instanceId", required=True, min_len=1)
    if path == "/_sandbox/gpu":
        return app.machines.gpu_reading(instance_id)
    return {"instanceId": instance_id, "fingerprint": app.machines.rotate_host_key(instance_id)}
