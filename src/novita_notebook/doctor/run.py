"""run_doctor: the checks in order, each an ok/differs/unverified/failed line; the key check
first (a rejected key, or an answer that is not the API's, stops the run), latency last.
"""

from __future__ import annotations

import statistics
from urllib.parse import urlsplit

from ..errors import key_rejected
from .account_checks import (
    check_instance_detail,
    check_not_found,
    check_registry_passwords,
    check_storages,
    check_template_params,
)
from .catalog_checks import check_catalog
from .context import Context, describe, items, plural
from .fields import unknown_fields
from .instance_checks import check_instances, listed_instances
from .known_fields import KNOWN_FIELDS
from .paging import check_paging
from .probe import Probe, host_of
from .report import DIFFERS, FAILED, OK, UNVERIFIED, DoctorReport

__all__ = ["run_doctor", "DEFAULT_TIMEOUT", "LINE_ORDER"]

DEFAULT_TIMEOUT = 10.0
LINE_ORDER = (
    "key", "latency", "paging base", "catalog shape", "region join", "clusterId filter",
    "billingMethod", "spotPrice", "gpuNum prices", "template params", "node", "timestamps",
    "instance statuses", "metrics", "spot fields", "not-found status", "bad-key status",
    "registry passwords", "endpoints", "fields",
)  # fmt: skip


def _check_input(api_url: object, api_key: object, timeout: object) -> None:
    from ..config import is_loopback_host
    from ..errors import ValidationError

    parts = urlsplit(api_url.strip()) if isinstance(api_url, str) else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationError("api_url: must be an http(s) URL", field="api_url")
    if parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname):
        raise ValidationError(
            "api_url: plain http:// is allowed only for loopback hosts (the key would travel "
            "unencrypted); use https://",
            field="api_url",
        )
    if not isinstance(api_key, str) or not api_key.strip() or any(c.isspace() for c in api_key):
        raise ValidationError("api_key: must be a non-empty string without spaces", field="api_key")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 120:
        raise ValidationError("timeout: must be a number of seconds in (0, 120]", field="timeout")


def run_doctor(api_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> DoctorReport:
    """Check the client's assumptions against the API at ``api_url`` with read-only GETs.

    ``api_url`` may be the host (``https://api.novita.ai``) or the full v1 base. ``timeout``
    bounds each call (connect at most ~3 s). A rejected key or an unreachable API gives one
    ``failed`` line and stops there. Raises ValidationError on bad arguments, before any call.
    """
    _check_input(api_url, api_key, timeout)
    probe = Probe(api_url, api_key, float(timeout))
    ctx = Context(probe)
    try:
        if _check_key(ctx):
            _run_checks(ctx)
            _check_latency(ctx)
    finally:
        probe.close()
    order = {name: i for i, name in enumerate(LINE_ORDER)}
    lines = sorted(ctx.lines.values(), key=lambda line: order.get(line.name, len(order)))
    calls = len(probe.durations) + probe.timeouts
    return DoctorReport(host_of(api_url), lines, calls=calls, private=ctx.private)


def _check_key(ctx: Context) -> bool:
    """Line ``key``. False (stop) when the key was refused or nothing API-like answered."""
    reply = ctx.get("/clusters")
    if reply.problem:
        ctx.add("key", FAILED, f"GET /clusters: {reply.problem}. Nothing else was checked.")
        return False
    if key_rejected(reply.status, reply.reason):
        ctx.add(
            "key",
            FAILED,
            f"rejected ({describe(reply)}): the key is wrong, expired or revoked; check "
            "NOVITA_API_KEY. Nothing else was checked.",
        )
        return False
    if reply.status == 0:
        ctx.add("key", FAILED, f"the API did not answer ({reply.error}); nothing was checked")
        return False
    if reply.status != 200:
        ctx.add("key", UNVERIFIED, f"GET /clusters answered {describe(reply)}")
        return True
    if not isinstance(reply.data, dict) or not isinstance(reply.data.get("data"), list):
        ctx.add(
            "key",
            FAILED,
            "GET /clusters answered JSON without a 'data' list: not the Novita API's answer. "
            "Nothing else was checked.",
        )
        return False
    clusters = items(reply.data, "data")
    ctx.add("key", OK, f"accepted (GET /clusters listed {plural(len(clusters), 'cluster')})")
    return True


def _check_bad_key(ctx: Context) -> None:
    """Line ``bad-key status``: how the API answers a wrong key (the client reads 401/403 and
    the documented 400 account reasons alike)."""
    reply = ctx.probe.get_with_wrong_key("/clusters")
    if reply.problem:
        ctx.add("bad-key status", FAILED, f"GET /clusters with a wrong key: {reply.problem}")
    elif reply.status in (401, 403):
        ctx.add("bad-key status", OK, f"a wrong key is answered {describe(reply)}")
    elif key_rejected(reply.status, reply.reason):
        ctx.add(
            "bad-key status",
            DIFFERS,
            f"a wrong key is answered {describe(reply)} (documented; the client reads it as a "
            "key failure too)",
        )
    elif reply.status == 200:
        ctx.add("bad-key status", DIFFERS, "a wrong key was ACCEPTED (HTTP 200)")
    else:
        ctx.add("bad-key status", DIFFERS, f"a wrong key is answered {describe(reply)}")


def _run_checks(ctx: Context) -> None:
    clusters = items((ctx.answers.get("GET /clusters") or [None])[0], "data")
    found: dict[str, str | None] = {"instance": None}

    def paging() -> None:
        found["instance"] = check_paging(ctx)

    steps = [
        ("catalog shape", lambda: check_catalog(ctx, clusters)),
        ("paging base", paging),
        ("template params", lambda: check_template_params(ctx)),
        ("node", lambda: check_instance_detail(ctx, found["instance"])),
        ("instance statuses", lambda: check_instances(ctx, listed_instances(ctx))),
        ("not-found status", lambda: check_not_found(ctx)),
        ("bad-key status", lambda: _check_bad_key(ctx)),
        ("registry passwords", lambda: check_registry_passwords(ctx)),
        ("endpoints", lambda: check_storages(ctx)),
        ("endpoints", lambda: _check_endpoints(ctx)),
        ("fields", lambda: _check_fields(ctx)),
    ]
    for name, step in steps:
        ctx.begin_check()
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - an answer no check foresaw is a finding
            ctx.add(
                name,
                DIFFERS,
                f"an answer has a shape the doctor cannot read ({type(exc).__name__}: {exc})",
            )


def _check_latency(ctx: Context) -> None:
    durations = ctx.probe.durations
    if not durations:
        return
    median = statistics.median(durations) * 1000
    slowest = max(durations) * 1000
    text = f"median {median:.0f} ms over {len(durations)} calls (slowest {slowest:.0f} ms)"
    if ctx.probe.timeouts:
        seconds = ctx.probe.timeout[1]
        ctx.add("latency", DIFFERS, f"{text}; {ctx.probe.timeouts} timed out after {seconds:g} s")
    else:
        ctx.add("latency", OK, text)


def _check_endpoints(ctx: Context) -> None:
    broken = {e: t for e, t in ctx.refused.items() if not t.startswith("HTTP ")}
    if ctx.refused:
        found = "; ".join(f"{endpoint}: {text}" for endpoint, text in sorted(ctx.refused.items()))
        ctx.add("endpoints", FAILED if broken else DIFFERS, found)
    else:
        ctx.add("endpoints", OK, f"all {len(ctx.answers)} endpoints read answered 200")


def _check_fields(ctx: Context) -> None:
    found = []
    for endpoint, answers in sorted(ctx.answers.items()):
        new = sorted({path for answer in answers for path in unknown_fields(endpoint, answer)})
        if new:
            found.append(f"{endpoint}: {', '.join(new)}")
    covered = sum(1 for endpoint in ctx.answers if endpoint in KNOWN_FIELDS)
    if found:
        ctx.add("fields", DIFFERS, "not in the contract fixtures: " + "; ".join(found))
    elif covered:
        ctx.add("fields", OK, f"every field of {covered} endpoints read is in the fixtures")
    else:
        ctx.add("fields", UNVERIFIED, "no endpoint read has contract fixtures")
