"""build_payload: a status change keeps its shape; a generic event (guards, spot notices)
carries its type in ``event`` and its own ``data``, and signs and verifies like any other.
"""

from __future__ import annotations

import pytest
from webhook_helpers import SECRET, make_change

from novita_notebook.errors import ValidationError
from novita_notebook.webhooks import WebhookEvent, build_payload, sign, verify_signature
from novita_notebook.webhooks.payload import encode

STATUS_KEYS = {
    "id",
    "event",
    "instanceId",
    "name",
    "status",
    "previousStatus",
    "timestamp",
    "observedAt",
    "instance",
}


def test_a_status_change_keeps_its_shape():
    payload = build_payload(make_change(), event_id="e1", timestamp=1_700_000_000)
    assert set(payload) == STATUS_KEYS
    assert (payload["id"], payload["event"]) == ("e1", "instance.running")
    assert payload["timestamp"] == "2023-11-14T22:13:20Z"


@pytest.mark.parametrize("kind", ["guard.warning", "guard.stopped", "spot.reclaim_notice"])
def test_generic_events_carry_type_and_data_and_verify(kind):
    event = WebhookEvent(kind, "inst-42", "demo-1", {"action": "stop", "in_seconds": 600})
    payload = build_payload(event, event_id="e2")
    assert set(payload) == {"id", "event", "instanceId", "name", "timestamp", "data"}
    assert payload["event"] == kind and payload["data"]["in_seconds"] == 600
    body = encode(payload)
    assert verify_signature(body, sign(body, SECRET), SECRET) == payload


def test_an_event_without_an_instance_has_null_ids():
    payload = build_payload(WebhookEvent("guard.stopped"))
    assert payload["instanceId"] is None and payload["name"] is None and payload["data"] == {}


def test_build_payload_refuses_other_objects():
    with pytest.raises(ValidationError) as caught:
        build_payload({"event": "guard.warning"})
    assert caught.value.field == "event"
