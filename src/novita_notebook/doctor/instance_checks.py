"""Doctor checks of the account's instances (read-only): the statuses they show and any
statusError on a healthy one, the metrics endpoint's shape, value range and step for a
running instance, and the spot fields of a spot instance.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .context import Context, describe, items
from .probe import OPENAPI_PREFIX
from .report import DIFFERS, OK, UNVERIFIED

#: The documented statuses, plus "pending" (seen live).
KNOWN_STATUSES = frozenset(
    {
        "pending", "toCreate", "creating", "pulling", "running", "toStart", "starting",
        "toStop", "stopping", "exited", "toRestart", "restarting", "toRemove", "removing",
        "removed", "toReset", "resetting", "migrating", "freezing",
    }
)  # fmt: skip
SPOT_STATUSES = frozenset({"", "running", "notified", "reclaiming", "terminated"})
METRICS_PATH = "/metrics/gpu/instance"
METRICS_STEP = 60  # the step the idle rule asks for
METRICS_WINDOW = 900
_SERIES = ("cpuUtilization", "memUtilization", "rootDiskUtilization")
_PER_GPU = ("gpuUtilization", "gpuMemUtilization")
_UNIX_SECONDS = re.compile(r"^\d{9,10}$")


def listed_instances(ctx: Context) -> list[dict[str, Any]]:
    """The newest instances of the account (one page of 50)."""
    reply = ctx.get("/gpu/instances", {"pageNum": 0, "pageSize": 50})
    return items(reply.data, "instances") if reply.status == 200 else []


def check_instances(ctx: Context, listed: list[dict[str, Any]]) -> None:
    """Lines ``instance statuses``, ``metrics`` and ``spot fields``."""
    _statuses(ctx, listed)
    running = [i for i in listed if i.get("status") == "running"]
    _metrics(ctx, running[0] if running else None)
    spot = next((i for i in listed if i.get("billingMode") == "spot"), None)
    _spot_fields(ctx, spot)


def _has_error(instance: dict[str, Any]) -> bool:
    error = instance.get("statusError")
    return isinstance(error, dict) and bool(error.get("state") or error.get("message"))


def _statuses(ctx: Context, listed: list[dict[str, Any]]) -> None:
    if not listed:
        ctx.add("instance statuses", UNVERIFIED, "no instance on the account to look at")
        return
    seen = sorted({str(i.get("status")) for i in listed})
    odd = [s for s in seen if s not in KNOWN_STATUSES]
    healthy_errors = sum(1 for i in listed if i.get("status") == "running" and _has_error(i))
    if odd:
        ctx.add(
            "instance statuses",
            DIFFERS,
            f"undocumented status(es) {', '.join(map(repr, odd))} (the client shows them as "
            "'unknown' and counts a statusError there as a failure)",
        )
    elif healthy_errors:
        ctx.add(
            "instance statuses",
            DIFFERS,
            f"{healthy_errors} running instance(s) carry a statusError (assumed: only failed "
            "ones; the client warns, and fails a wait only once it stands 120 s)",
        )
    else:
        ctx.add("instance statuses", OK, f"all documented: {', '.join(seen)}")


def _values(data: dict[str, Any]) -> tuple[list[Any], list[Any], list[str]]:
    """(values, the GPU average's timestamps, shape problems) of a metrics answer."""
    values: list[Any] = []
    problems: list[str] = []
    for key in _SERIES:
        series = data.get(key)
        if not isinstance(series, list):
            problems.append(f"{key} is not a list")
            continue
        values += [p.get("value") for p in series if isinstance(p, dict)]
    stamps: list[Any] = []
    for key in _PER_GPU:
        block = data.get(key)
        if not isinstance(block, dict) or not isinstance(block.get("avg"), list):
            problems.append(f"{key} has no avg list")
            continue
        points = [p for p in block["avg"] if isinstance(p, dict)]
        values += [p.get("value") for p in points]
        if key == "gpuUtilization":
            stamps = [p.get("timestamp") for p in points]
    return values, stamps, problems


def _metrics(ctx: Context, instance: dict[str, Any] | None) -> None:
    if instance is None:
        ctx.add(
            "metrics",
            UNVERIFIED,
            "no running instance: start one and run the doctor again (the idle rule reads "
            "its GPU utilisation)",
        )
        return
    now = int(time.time())
    params = {
        "instanceId": str(instance.get("id")),
        "startTime": now - METRICS_WINDOW,
        "endTime": now,
        "interval": METRICS_STEP,
    }
    reply = ctx.get(METRICS_PATH, params, namespace=OPENAPI_PREFIX)
    if reply.status != 200 or not isinstance(reply.data, dict):
        ctx.add(
            "metrics", DIFFERS, f"GET {OPENAPI_PREFIX}{METRICS_PATH} answered {describe(reply)}"
        )
        return
    values, stamps, problems = _values(reply.data)
    if problems:
        ctx.add("metrics", DIFFERS, "shape: " + "; ".join(problems))
        return
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) < len(values):
        ctx.add("metrics", DIFFERS, f"{len(values) - len(numbers)} values are not numbers")
        return
    if not numbers:
        ctx.add("metrics", UNVERIFIED, "no points yet for the running instance; run again later")
        return
    verdict = _range_and_step(numbers, stamps)
    ctx.add("metrics", *verdict)


def _range_and_step(numbers: list[float], stamps: list[Any]) -> tuple[str, str]:
    low, high = min(numbers), max(numbers)
    if low < 0 or high > 100:
        return DIFFERS, f"values from {low:g} to {high:g}: not percentages 0-100"
    if high <= 1:
        return DIFFERS, (
            f"all {len(numbers)} values within 0-1 (max {high:g}): fractions, not percentages "
            "(the idle rule compares with a percentage)"
        )
    if not all(isinstance(s, str) and _UNIX_SECONDS.match(s) for s in stamps):
        return DIFFERS, "timestamps are not unix-second strings"
    seconds = sorted(int(s) for s in stamps)
    steps = {b - a for a, b in zip(seconds, seconds[1:], strict=False)}
    if steps and steps != {METRICS_STEP}:
        shown = ", ".join(str(s) for s in sorted(steps))
        return DIFFERS, f"points every {shown} s, asked every {METRICS_STEP} s"
    step = f"every {METRICS_STEP} s" if steps else "one point so far (step not seen)"
    if not steps:
        return UNVERIFIED, f"values 0-100 (max {high:g}); {step}: run again in a few minutes"
    return OK, f"{len(stamps)} points {step}, values 0-100 (max {high:g})"


def _spot_fields(ctx: Context, listed: dict[str, Any] | None) -> None:
    if listed is None:
        ctx.add(
            "spot fields",
            UNVERIFIED,
            "no spot instance on the account: spot reclaim notices cannot be checked",
        )
        return
    reply = ctx.get("/gpu/instance", {"instanceId": str(listed.get("id"))})
    detail = reply.data if reply.status == 200 and isinstance(reply.data, dict) else None
    if detail is None:
        ctx.add(
            "spot fields", DIFFERS, f"get-instance of the spot instance answered {describe(reply)}"
        )
        return
    missing = [k for k in ("spotStatus", "spotReclaimTime") if k not in detail]
    if missing:
        ctx.add(
            "spot fields",
            DIFFERS,
            f"get-instance of a spot instance lacks {', '.join(missing)}: reclaim notices "
            "cannot be seen",
        )
        return
    status, when = detail["spotStatus"], detail["spotReclaimTime"]
    if status not in SPOT_STATUSES:
        ctx.add("spot fields", DIFFERS, f"spotStatus {status!r} is not one of the known values")
    elif not (isinstance(when, str) and (when == "0" or _UNIX_SECONDS.match(when))):
        ctx.add("spot fields", DIFFERS, f"spotReclaimTime {when!r} is not unix seconds or '0'")
    elif "spotStatus" in listed or "spotReclaimTime" in listed:
        ctx.add(
            "spot fields",
            DIFFERS,
            "list items carry the spot fields too (assumed only get-instance has them; the "
            "client reads each spot instance anyway)",
        )
    else:
        ctx.add(
            "spot fields",
            OK,
            f"spotStatus {status!r}, spotReclaimTime {when!r} on get-instance; not in list items",
        )
