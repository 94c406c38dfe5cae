"""Instance metrics (``GET /openapi/v1/metrics/gpu/instance``): utilisation series computed
from the instance's run, a default busy-then-idle pattern, and overrides a test can set.
"""

from __future__ import annotations

import zlib
from typing import Any

from .records import InstanceRecord
from .validate import invalid, query_int, query_str
from .world import World

BUSY_SECONDS = 600.0  # default pattern: busy for 10 min (scaled by speed) after running
BUSY_PERCENT = 88.0
IDLE_PERCENT = 2.0
MAX_POINTS = 2000
DEFAULT_WINDOW_SECONDS = 3600
DEFAULT_INTERVAL_SECONDS = 60

Query = dict[str, list[str]]


def _noise(*parts: object) -> float:
    """A stable pseudo-random number in [-1, 1) for the same inputs (same answers twice)."""
    return zlib.crc32(repr(parts).encode()) / 2**31 - 1.0


def gpu_percent(world: World, record: InstanceRecord, at: float) -> float:
    """The instance's GPU utilisation at ``at``: the latest override, else the pattern."""
    for since, value in reversed(record.utilization):
        if since <= at:
            if value is not None:
                return value
            break
    started = record.running_since or at
    busy = at - started < world.scaled(BUSY_SECONDS)
    return BUSY_PERCENT if busy else IDLE_PERCENT


def _clamp(value: float) -> float:
    return round(min(100.0, max(0.0, value)), 2)


def _rescale(result: dict[str, Any], scale: float) -> dict[str, Any]:
    """Every utilisation value in the unit the ``metricsScale`` switch asks for: 100 keeps
    percentages, 1 serves fractions 0-1 (the unit no public source settles)."""
    if scale == 100.0:
        return result

    def points(items: list[dict[str, Any]]) -> None:
        for point in items:
            point["value"] = round(point["value"] * scale / 100.0, 6)

    for value in result.values():
        if isinstance(value, dict):
            points(value["avg"])
            for entry in value["gpuIds"]:
                points(entry["items"])
        else:
            points(value)
    return result


def _empty() -> dict[str, Any]:
    return {
        "cpuUtilization": [],
        "memUtilization": [],
        "rootDiskUtilization": [],
        "gpuUtilization": {"avg": [], "gpuIds": []},
        "gpuMemUtilization": {"avg": [], "gpuIds": []},
    }


def series(
    world: World, record: InstanceRecord, start: int, end: int, interval: int
) -> dict[str, Any]:
    """Points every ``interval`` s in [start, end] while the instance runs (the latest
    ``MAX_POINTS`` when the window holds more). Each point is the value at the end of its
    bucket, so a change shows in the current bucket at once."""
    result = _empty()
    now = world.clock()
    if record.status != "running" or record.running_since is None:
        return result  # no data when not running
    # The bucket holding the start of the run is the first with data.
    first = start + max(0, (int(record.running_since) - start) // interval) * interval
    last = min(end, int(now))
    if last < first:
        return result
    first = max(first, first + ((last - first) // interval + 1 - MAX_POINTS) * interval)
    gpus: list[list[dict[str, Any]]] = [[] for _ in range(record.gpu_num)]
    mems: list[list[dict[str, Any]]] = [[] for _ in range(record.gpu_num)]
    for t in range(first, last + 1, interval):
        at = min(t + interval, now)
        base = gpu_percent(world, record, at)
        stamp = str(t)
        values = [_clamp(base + 3 * _noise(record.id, t, i)) for i in range(record.gpu_num)]
        memory = [_clamp(0.7 * v + 12 + _noise(record.id, t, i, "m")) for i, v in enumerate(values)]
        for i in range(record.gpu_num):
            gpus[i].append({"timestamp": stamp, "value": values[i]})
            mems[i].append({"timestamp": stamp, "value": memory[i]})
        avg = sum(values) / len(values)
        result["gpuUtilization"]["avg"].append({"timestamp": stamp, "value": _clamp(avg)})
        result["gpuMemUtilization"]["avg"].append(
            {"timestamp": stamp, "value": _clamp(sum(memory) / len(memory))}
        )
        cpu = _clamp(0.3 * avg + 4 + 2 * _noise(record.id, t, "c"))
        result["cpuUtilization"].append({"timestamp": stamp, "value": cpu})
        mem = _clamp(35 + 0.2 * avg + _noise(record.id, t, "r"))
        result["memUtilization"].append({"timestamp": stamp, "value": mem})
        result["rootDiskUtilization"].append({"timestamp": stamp, "value": 18.0})
    for key, per_gpu in (("gpuUtilization", gpus), ("gpuMemUtilization", mems)):
        if per_gpu[0]:
            result[key]["gpuIds"] = [
                {"gpuId": str(i), "items": items} for i, items in enumerate(per_gpu)
            ]
    return result


def get_metrics(world: World, query: Query, body: Any) -> Any:
    instance_id = query_str(query, "instanceId")
    if not instance_id:
        raise invalid("instanceId", "is required")
    now = int(world.clock())
    end = query_int(query, "endTime", minimum=0, default=now)
    # Only the parameter names are public, no limits: 0 or an omitted interval is the default
    # step, a window with more points than MAX_POINTS answers its latest ones, and a start
    # after the end an empty series (a client written from the docs is never refused).
    interval = query_int(query, "interval", minimum=0) or DEFAULT_INTERVAL_SECONDS
    if world.switches.metricsStep:
        interval = world.switches.metricsStep  # the API's own step, whatever was asked
    start = query_int(query, "startTime", minimum=0, default=max(0, end - DEFAULT_WINDOW_SECONDS))
    record = world.find(instance_id)
    if start > end:
        return _empty()
    return _rescale(series(world, record, start, end, interval), world.switches.metricsScale)
