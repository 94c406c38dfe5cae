"""Guard and spot events in words: the notebook's warning line, with the exact call that
extends or cancels the announced action (also what the panel shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["event_text", "cancel_call", "extend_call"]

_DONE = {
    "guard.stopped": "stopped (the disk is kept)",
    "guard.deleted": "deleted",
    "guard.migrated": "migrated to another cluster",
    "guard.recreated": "recreated",
}
_PAST = {"stop": "stopped", "delete": "deleted", "migrate": "migrated", "recreate": "recreated"}
#: The rule name ``unguard`` takes for each rule a warning can come from.
_CANCEL_RULE = {
    "stop_after": "stop_after",
    "delete_after": "delete_after",
    "idle": "idle",
    "idle_stop": "idle",
    "budget_per_hour": "budget",
    "budget_total": "budget",
    "budget": "budget",
}


def _to_the_second(value: Any) -> str:
    """An ISO time as people read it (``2026-12-01 18:00:05 UTC``); anything else as it is."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _target(payload: Mapping[str, Any]) -> str:
    return str(payload.get("name") or payload.get("instanceId") or "?")


def extend_call(payload: Mapping[str, Any], duration: str = "1h") -> str | None:
    """``novita.extend('demo-1', '1h')`` for a deadline warning, else None."""
    if payload.get("rule") not in ("stop_after", "delete_after"):
        return None
    rule = "" if payload.get("rule") == "stop_after" else ", rule='delete_after'"
    return f"novita.extend({_target(payload)!r}, {duration!r}{rule})"


def cancel_call(payload: Mapping[str, Any]) -> str:
    """``novita.unguard('demo-1', 'idle')``: removes the rule the warning comes from."""
    rule = _CANCEL_RULE.get(str(payload.get("rule") or ""))
    names = f", {rule!r}" if rule else ""
    return f"novita.unguard({_target(payload)!r}{names})"


def event_text(event_type: str, payload: Mapping[str, Any]) -> str:
    """One or two lines for a person: what, why, when, and how to extend or cancel."""
    who = f"{_target(payload)} ({payload.get('instanceId')})"
    reason = payload.get("reason") or ""
    if event_type == "guard.warning" and payload.get("action") == "none":
        return f"Guard warning: {who}: {reason}."  # a rule that cannot act, and why
    if event_type == "guard.failed":
        return (
            f"Guard FAILED for {who}: {reason}. It may still be billing: the guard tries "
            f"again every interval; check it with novita.instance({_target(payload)!r})."
        )
    if event_type == "guard.warning":
        action = payload.get("action") or "stop"
        due = _to_the_second(payload.get("action_due") or payload.get("due") or "soon")
        verb = _PAST.get(str(action), str(action))
        text = f"Guard warning: {who} will be {verb} at {due}: {reason}."
        extend = extend_call(payload)
        text += f"\n  Cancel: {cancel_call(payload)}"
        if extend:
            text += f"  |  Extend: {extend}  (or %novita extend {_target(payload)} 1h)"
        for note in ("busy", "unpulled"):
            if payload.get(note):
                text += f"\n  {payload[note]}"
        return text
    if event_type in _DONE:
        extra = f" as {payload['newInstanceId']}" if payload.get("newInstanceId") else ""
        return f"Guard: {who} {_DONE[event_type]}{extra}: {reason}."
    if event_type == "spot.reclaim_notice":
        policy = payload.get("on_reclaim") or "notify"
        return (
            f"Spot reclaim notice: {who} is reclaimed at {payload.get('reclaim_time')} "
            f"(on_reclaim={policy})."
        )
    return f"{event_type}: {who} {reason}".strip()
