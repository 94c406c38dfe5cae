"""What a webhook carries: the JSON object built for an instance status change or for any
other event (guards, spot notices), and the canonical bytes that get signed and sent.

Every payload is a JSON object with these keys:

- ``id``: the event id (hex); the same across retries, so receivers drop duplicates.
- ``event``: the event's type. ``instance.<status>`` (``instance.running``,
  ``instance.exited`` …) for a status change; any other dotted name for a generic event:
  ``guard.warning``, ``guard.stopped``, ``spot.reclaim_notice``.
- ``instanceId``, ``name``: the instance concerned (``None`` when there is none).
- ``timestamp``: the send time, ISO 8601 UTC; it must agree with ``X-Webhook-Timestamp``.

A status change (``build_payload(StatusChange)``) adds ``status``, ``previousStatus``,
``observedAt`` and ``instance`` (connection details, never a password). A generic event
(``build_payload(WebhookEvent)``) adds ``data``: a JSON object chosen by its sender.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from ..models import Instance, StatusChange

__all__ = ["WebhookEvent", "build_payload", "connection_info", "encode", "event_name"]

# Dotted lowercase names; "instance." belongs to status changes so the two kinds never collide.
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclasses.dataclass(frozen=True)
class WebhookEvent:
    """An event other than a status change, e.g. ``WebhookEvent("guard.warning", "inst-1",
    "demo-1", {"action": "stop", "in_seconds": 600})``."""

    type: str
    instance_id: str | None = None
    name: str | None = None
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not _EVENT_TYPE.match(self.type):
            raise ValidationError(
                "event type must be a dotted lowercase name such as 'guard.warning'", field="type"
            )
        if self.type.startswith("instance."):
            raise ValidationError(
                "'instance.*' types are status changes; send a StatusChange", field="type"
            )
        if not isinstance(self.data, Mapping):
            raise ValidationError("event data must be a mapping", field="data")
        try:
            json.dumps(dict(self.data))
        except (TypeError, ValueError):
            raise ValidationError("event data must be JSON-serialisable", field="data") from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_name(event: StatusChange | WebhookEvent) -> str:
    """The payload's ``event`` value for a status change or a generic event."""
    if isinstance(event, WebhookEvent):
        return event.type
    return f"instance.{event.new_status}"


def connection_info(change: StatusChange) -> dict[str, Any]:
    """What a receiver needs to connect — and nothing secret (no SSH password, no raw data)."""
    inst: Instance | None = change.instance
    if inst is None:
        return {"id": change.instance_id, "name": change.name, "status": change.new_status}
    return {
        "id": inst.id,
        "name": inst.name,
        "status": inst.status,
        "phase": inst.phase,
        "region": inst.region,
        "product": inst.product_name,
        "gpuNum": inst.gpu_num,
        "portMappings": [
            {"port": p.port, "type": p.type, "endpoint": p.endpoint} for p in inst.port_mappings
        ],
        "sshCommand": inst.ssh_command,
        "jupyterUrl": inst.jupyter_url,
        "statusError": (
            {"state": inst.status_error.state, "message": inst.status_error.message}
            if inst.status_error is not None
            else None
        ),
    }


def build_payload(
    event: StatusChange | WebhookEvent,
    *,
    event_id: str | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """The JSON object sent for one event; ``timestamp`` is the send time (unix s)."""
    if not isinstance(event, StatusChange | WebhookEvent):
        raise ValidationError("expected a StatusChange or a WebhookEvent", field="event")
    seconds = int(time.time() if timestamp is None else timestamp)
    payload: dict[str, Any] = {
        "id": event_id or uuid.uuid4().hex,
        "event": event_name(event),
        "instanceId": event.instance_id,
        "name": event.name,
        "timestamp": _iso(datetime.fromtimestamp(seconds, tz=UTC)),
    }
    if isinstance(event, WebhookEvent):
        payload["data"] = dict(event.data)
        return payload
    payload["status"] = event.new_status
    payload["previousStatus"] = event.old_status
    payload["observedAt"] = _iso(event.time) if isinstance(event.time, datetime) else None
    payload["instance"] = connection_info(event)
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    """Canonical JSON bytes: compact and key-sorted, so the same payload signs the same."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
