"""Doctor checks of the account's listings: template parameters, one instance's ``node`` and
timestamps, the not-found status, masked registry passwords and network storages.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .context import Context, describe, items
from .report import DIFFERS, OK, UNVERIFIED

MADE_UP_INSTANCE_ID = "novita-doctor-no-such-instance-0"
_UNIX_SECONDS = re.compile(r"^(-1|0|\d{9,10})$")
_TIME_KEY = re.compile(r"(Time|At)$")


def check_template_params(ctx: Context) -> None:
    """Line ``template params``: channel/isMyCommunity accepted, and honoured."""
    asked = {"channel": "private", "isMyCommunity": "true", "pageNum": 0, "pageSize": 10}
    with_them = ctx.get("/templates", asked)
    without = ctx.get("/templates", {"pageNum": 0, "pageSize": 10})
    plain = f"without them: {describe(without)}"
    if with_them.status != 200:
        ctx.add(
            "template params",
            DIFFERS,
            f"channel=private&isMyCommunity=true answered {describe(with_them)}; {plain}",
        )
        return
    if not isinstance(with_them.data, dict) or not isinstance(with_them.data.get("template"), list):
        keys = sorted(with_them.data) if isinstance(with_them.data, dict) else []
        ctx.add("template params", DIFFERS, f"no 'template' list in the answer (fields: {keys})")
        return
    listed = items(with_them.data, "template")
    others = sum(1 for t in listed if t.get("channel") not in (None, "private"))
    if others:
        ctx.add(
            "template params",
            DIFFERS,
            f"accepted, but channel=private listed {others} templates of other channels; {plain}",
        )
    else:
        ctx.add("template params", OK, f"channel and isMyCommunity accepted (HTTP 200); {plain}")


def check_instance_detail(ctx: Context, instance_id: str | None) -> None:
    """Lines ``node`` and ``timestamps`` from one instance (and the templates seen)."""
    detail: Any = None
    if instance_id is not None:
        reply = ctx.get("/gpu/instance", {"instanceId": instance_id})
        detail = reply.data if reply.status == 200 and isinstance(reply.data, dict) else None
    _node(ctx, detail, instance_id)
    _timestamps(ctx, detail)


def _node(ctx: Context, detail: dict[str, Any] | None, instance_id: str | None) -> None:
    if detail is None:
        why = "no instance on the account" if instance_id is None else "get-instance failed"
        ctx.add("node", UNVERIFIED, f"{why}: create one and run the doctor again to see node")
    elif "node" not in detail:
        ctx.add("node", DIFFERS, "absent from get-instance (assumed an array [{maxRootfsSize}])")
    elif isinstance(detail["node"], list):
        ctx.add("node", OK, "an array, as the docs show")
    elif isinstance(detail["node"], dict):
        ctx.add("node", DIFFERS, "an object, not the documented array (the client reads both)")
    else:
        ctx.add("node", DIFFERS, f"a {type(detail['node']).__name__}, not an array")


def time_shape(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        if _UNIX_SECONDS.match(value):
            return "unix-second string"
        if re.match(r"^\d{13}$", value):
            return "millisecond string"
        return '""' if value == "" else "other string (e.g. ISO date)"
    return "null" if value is None else type(value).__name__


def _time_values(value: Any) -> list[Any]:
    """Values of every ``…Time``/``…At`` field, at any depth."""
    found: list[Any] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _TIME_KEY.search(key) and not isinstance(item, dict | list):
                found.append(item)
            else:
                found += _time_values(item)
    elif isinstance(value, list):
        for item in value:
            found += _time_values(item)
    return found


#: The times the package reads from get-instance (budgets, idle rule, newest-first, mine()).
INSTANCE_TIMES = ("createdAt", "lastStartedAt", "lastStoppedAt")


def _timestamps(ctx: Context, detail: dict[str, Any] | None) -> None:
    if detail is None:
        ctx.add("timestamps", UNVERIFIED, "no instance to read: create one and run again")
        return
    missing = [key for key in INSTANCE_TIMES if key not in detail]
    seen = [detail, *ctx.answers.get("GET /gpu/instances", [])]
    seen += ctx.answers.get("GET /templates", [])
    shapes = Counter(time_shape(v) for v in _time_values(seen))
    text = ", ".join(f"{shape} x{count}" for shape, count in shapes.most_common())
    if missing:
        ctx.add(
            "timestamps",
            DIFFERS,
            f"get-instance lacks {', '.join(missing)} (budgets and ages then count from what "
            f"this client saw); {text or 'no other time seen'}",
        )
    elif set(shapes) == {"unix-second string"}:
        ctx.add("timestamps", OK, text)
    else:
        ctx.add("timestamps", DIFFERS, f"{text}; assumed unix seconds as digit strings")


def check_not_found(ctx: Context) -> None:
    """Line ``not-found status`` from get-instance of an id that cannot exist."""
    reply = ctx.get("/gpu/instance", {"instanceId": MADE_UP_INSTANCE_ID}, collect=False)
    if reply.status == 404:
        ctx.add("not-found status", OK, f"an unknown instance answers {describe(reply)}")
    elif reply.status == 400 and "NOT_FOUND" in reply.reason:
        ctx.add(
            "not-found status",
            DIFFERS,
            f"an unknown instance answers {describe(reply)} (documented; the client treats "
            "404 and this alike)",
        )
    else:
        ctx.add("not-found status", DIFFERS, f"an unknown instance answers {describe(reply)}")


def check_registry_passwords(ctx: Context) -> None:
    """Line ``registry passwords``: the listing masks them (the values are never shown)."""
    reply = ctx.get("/repository/auths")
    if reply.status != 200:
        ctx.add(
            "registry passwords",
            UNVERIFIED,
            f"GET /repository/auths answered {describe(reply)}",
            relied_on=False,
        )
        return
    auths = items(reply.data, "data")
    clear = sum(1 for a in auths if re.search(r"[^*•x\s]", str(a.get("password") or "")))
    if not auths:
        ctx.add(
            "registry passwords",
            UNVERIFIED,
            "no registry auth saved: nothing to look at (the client never needs one back)",
            relied_on=False,
        )
    elif clear:
        ctx.add("registry passwords", DIFFERS, f"{clear} of {len(auths)} listed unmasked")
    else:
        ctx.add("registry passwords", OK, f"masked in all {len(auths)} listed")


def check_storages(ctx: Context) -> None:
    """No line of its own: the listing feeds the ``endpoints`` and ``fields`` lines."""
    reply = ctx.get("/networkstorages/list", {"pageNo": 0, "pageSize": 10})
    if reply.status == 400:
        ctx.get("/networkstorages/list", {"pageNo": 1, "pageSize": 10})
