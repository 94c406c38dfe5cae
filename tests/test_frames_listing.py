"""Novita.instances() builds its frame from models.listing_fields without making Instances:
the frame must be exactly the one the Instance route gives (columns, order, dtypes, values),
for the sandbox's instances and for the live shapes the sandbox cannot produce."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

import novita_notebook.client as client_module
from novita_notebook.frames import INSTANCE_COLUMNS, instances_frame, listed_instances_frame
from novita_notebook.models import Instance
from novita_notebook.parsing import LISTING_FIELDS, listing_fields
from tests.api_helpers import create_raw

FIXTURES = Path(__file__).resolve().parent / "contract" / "fixtures"
NOW = datetime(2026, 11, 27, 12, 0, 0, 654321, tzinfo=UTC)


class _FrozenDatetime(datetime):
    """The client's clock, fixed so that age and cost_so_far compare exactly."""

    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206 - datetime's own signature
        return NOW if tz is not None else NOW.replace(tzinfo=None)


def _edge_rows() -> list[dict]:
    """Live shapes: statusError, no times at all, numbers as strings, spot, an unknown
    status, "0"/"-1" times, a product the catalog does not know, secrets in the dict."""
    base = json.loads((FIXTURES / "instances.json").read_text())["response"]["instances"][0]
    single = json.loads((FIXTURES / "instance.json").read_text())["response"]
    changes = [
        {
            "id": "edge-failed",
            "status": "pulling",
            "statusError": {"state": "pullFailed", "message": "no such image"},
            "createdAt": "1764200000",
            "lastStartedAt": "0",
        },
        {"id": "edge-state", "statusError": {"state": "oom", "message": ""}},
        {
            "id": "edge-strings",
            "status": "exited",
            "gpuNum": "2",
            "cpuNum": "32",
            "memory": "124.0",
            "createdAt": "1764100000",
            "lastStartedAt": "1764150000",
            "lastStoppedAt": "1764160000",
        },
        {
            "id": "edge-spot",
            "billingMode": "spot",
            "spotStatus": "notified",
            "spotReclaimTime": "1764300000",
            "createdAt": 1764200100,
            "lastStartedAt": 1764200200,
        },
        {"id": "edge-unknown", "status": "hibernating", "productId": "no-such-product"},
        {
            "id": "edge-secret",
            "connectComponentSSH": {
                "sshCommand": "ssh root@host.example -p 30022",
                "password": "hunter2-secret",
                "isRunning": True,
            },
            "connectComponentJupyter": {"address": "https://jupyter.example", "isRunning": True},
            "sshPassword": "hunter2-secret",
        },
    ]
    bare = {"id": "edge-bare", "name": "bare", "status": "creating"}
    return [base, single, bare, *({**copy.deepcopy(base), **change} for change in changes)]


def _instance_route(client, raws: list[dict], now: datetime) -> pd.DataFrame:
    """The frame as it was built before: a full Instance per raw dict, priced and dated."""
    instances = [Instance.from_api(raw, client=client) for raw in raws]
    index = client.catalog.price_index()
    recorded = client.ledger.created_times()
    for inst in instances:
        inst.price_per_hour = client.catalog.price_of(inst, index)
        if inst.created_at is None:
            inst.created_at = recorded.get(inst.id)
    return instances_frame(instances, now)


def test_listing_fields_give_the_instance_routes_frame():
    raws = _edge_rows()
    instances = [Instance.from_api(copy.deepcopy(raw)) for raw in raws]
    rows = [listing_fields(copy.deepcopy(raw)) for raw in raws]
    for n, (inst, row) in enumerate(zip(instances, rows, strict=True)):
        inst.price_per_hour = row["price_per_hour"] = None if n % 3 == 0 else 0.25 * n
    pd.testing.assert_frame_equal(
        listed_instances_frame(rows, NOW), instances_frame(instances, NOW)
    )
    for inst, row in zip(instances, rows, strict=True):
        assert list(row) == [*LISTING_FIELDS, "price_per_hour"]
        for name, value in row.items():
            assert getattr(inst, name) == value, name


def test_instances_equals_the_instance_route(client, sandbox, monkeypatch):
    sandbox.set_stock(1000)
    made = [create_raw(client, f"frame-{n}") for n in range(3)]
    create_raw(client, "frame-spot", billing="spot")
    # a creation time on record for one instance the list view gives without one
    client.ledger.record(
        Instance.from_api({"id": made[0], "name": "frame-0", "createdAt": "1764000000"})
    )
    served = client.api.list_instances()
    raws = [*served, *_edge_rows()]
    monkeypatch.setattr(client_module, "datetime", _FrozenDatetime)
    # the live shapes reach instances() as the API would send them (the sandbox cannot)
    monkeypatch.setattr(client.api, "list_instances", lambda: copy.deepcopy(raws))

    listed = client.instances()
    expected = _instance_route(client, copy.deepcopy(raws), NOW)
    pd.testing.assert_frame_equal(listed, expected)
    assert tuple(listed.columns) == INSTANCE_COLUMNS
    assert listed.loc[listed["id"] == made[0], "created_at"].iloc[0] == datetime.fromtimestamp(
        1764000000, tz=UTC
    )
    # A statusError on an instance still pulling is a warning, not (yet) a failure; the error
    # column shows it either way. An unknown status with one counts as failed.
    failing = listed.loc[listed["id"] == "edge-failed"].iloc[0]
    assert failing["phase"] == "provisioning" and failing["error"] == "no such image"
    assert listed.loc[listed["id"] == "edge-unknown", "status"].iloc[0] == "hibernating"
    assert listed["price_per_hour"].notna().sum() >= 4
    assert "hunter2-secret" not in listed.to_string()
    assert not listed.map(lambda v: "hunter2" in str(v)).any().any()


@pytest.mark.parametrize(
    "wanted",
    ["running", ["exited", "failed"], "provisioning", "pulling", "unknown"],
)
def test_status_filter_equals_the_instance_route(client, monkeypatch, wanted):
    raws = _edge_rows()
    monkeypatch.setattr(client_module, "datetime", _FrozenDatetime)
    monkeypatch.setattr(client.api, "list_instances", lambda: copy.deepcopy(raws))
    keep = {wanted} if isinstance(wanted, str) else set(wanted)
    kept = [
        raw
        for raw, inst in zip(raws, (Instance.from_api(r) for r in raws), strict=True)
        if inst.status in keep or inst.phase in keep
    ]
    listed = client.instances(status=wanted)
    pd.testing.assert_frame_equal(listed, _instance_route(client, kept, NOW))
    assert len(listed) == len(kept) > 0


def test_an_empty_listing_keeps_the_columns_and_dtypes(client):
    listed = client.instances()
    pd.testing.assert_frame_equal(listed, instances_frame([], NOW))
    assert list(listed.columns) == list(INSTANCE_COLUMNS)


def test_frames_share_no_column_a_user_can_change():
    rows = [
        listing_fields({"id": f"i-{n}", "name": f"n{n}", "status": "running"}) for n in range(5)
    ]
    for row in rows:
        row["price_per_hour"] = None
    first = listed_instances_frame(rows, NOW)
    first.loc[0, "ssh_command"] = "ssh root@changed -p 1"
    first.columns.name = "renamed"
    second = listed_instances_frame(rows, NOW)
    assert second["ssh_command"].isna().all() and second.columns.name is None
