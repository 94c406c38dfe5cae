"""Batches: 20 instances through 30% server errors and a 429 storm give 20 distinct instances
and nothing leaked; all-or-nothing deletes what it made; progress is reported per create.
"""

from __future__ import annotations

import threading

from novita_notebook.sandbox import faults

from .helpers import live_instances


def test_twenty_instances_through_server_errors_and_a_rate_limit_storm(
    sandbox, fast_client, monkeypatch
):
    # The sandbox counts its rate limit over a 60 s window; a 3 s window keeps the storm (and
    # its Retry-After) short enough for a test while still refusing bursts.
    monkeypatch.setattr(faults, "RATE_WINDOW_SECONDS", 3.0)
    sandbox.set_faults(errorRate=0.3, rateLimitPerMinute=40)
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def progress(done, total, row):
        with lock:
            seen.append((done, total))

    frame = fast_client.create_many(
        20, gpu="4090", concurrency=4, name_prefix="storm", progress=progress
    )
    statuses = [r for r in sandbox.requests() if r["status"] in (429, 500, 503)]
    sandbox.clear_faults()

    assert frame["error"].isna().all(), frame[frame["error"].notna()].to_string()
    assert frame["instance_id"].nunique() == 20
    assert sorted(frame["name"]) == sorted(f"storm-{n}" for n in range(1, 21))
    live = live_instances(sandbox)
    assert sorted(raw["id"] for raw in live) == sorted(frame["instance_id"])  # none leaked
    assert {r["status"] for r in statuses} >= {429}, "the storm really happened"
    assert any(r["status"] >= 500 for r in statuses)
    assert sorted(seen) == [(n, 20) for n in range(1, 21)]
    assert list(frame.columns) == [
        "name",
        "instance_id",
        "region",
        "product",
        "price_per_hour",
        "status",
        "error",
    ]


def test_all_or_nothing_deletes_what_the_batch_created(sandbox, client):
    specs = [
        {"name": "aon-1"},
        {"name": "aon-2"},
        {"name": "aon-3", "gpu": "H200", "regions": ["EU-DE-01"]},  # pinned out of stock
    ]
    frame = client.create_many(specs, gpu="4090", all_or_nothing=True, concurrency=3)

    failed = frame[frame["name"] == "aon-3"].iloc[0]
    assert failed["status"] == "failed" and "CapacityError" in failed["error"]
    others = frame[frame["name"] != "aon-3"]
    assert set(others["status"]) <= {"deleted", "skipped"}
    assert others["error"].str.contains("rolled back|not attempted").all()
    assert live_instances(sandbox) == []
    ledger_ids = {entry["id"] for entry in client.ledger.entries()}
    assert not ledger_ids & set(others["instance_id"].dropna())


def test_partial_failure_keeps_the_rest_and_says_which_failed(sandbox, client):
    specs = [
        {"name": "part-1"},
        {"name": "part-2", "gpu": "RTX 9999"},
        {"name": "part-3", "gpu_num": 2},
    ]
    frame = client.create_many(specs, gpu="4090").set_index("name")
    assert frame.loc["part-2", "status"] == "failed" and "RTX 9999" in frame.loc["part-2", "error"]
    assert frame.loc["part-3", "price_per_hour"] > frame.loc["part-1", "price_per_hour"]
    assert sorted(raw["name"] for raw in live_instances(sandbox)) == ["part-1", "part-3"]


def test_batch_with_wait_returns_running_instances(sandbox, client):
    frame = client.create_many(3, gpu="4090", wait=True, name_prefix="ready")
    assert list(frame["status"]) == ["running"] * 3


def test_an_instance_whose_wait_fails_is_reported_and_rolled_back(sandbox, client):
    specs = [
        {"name": "wf-ok"},
        {"name": "wf-broken", "image": "example/does-not-exist:1"},  # the pull fails
    ]
    frame = client.create_many(specs, gpu="4090", wait=True).set_index("name")
    broken = frame.loc["wf-broken"]
    assert broken["status"] == "failed" and broken["instance_id"]
    assert "InstanceFailedError" in broken["error"]
    assert frame.loc["wf-ok", "status"] == "running"

    frame = client.create_many(
        [{"name": "wf2-ok"}, {"name": "wf2-broken", "image": "example/does-not-exist:1"}],
        gpu="4090",
        wait=True,
        all_or_nothing=True,
    ).set_index("name")
    assert set(frame["status"]) == {"deleted"}
    assert "InstanceFailedError" in frame.loc["wf2-broken", "error"]
    assert {raw["name"] for raw in live_instances(sandbox)} == {"wf-ok", "wf-broken"}


def test_all_or_nothing_error_cells_are_one_short_line(sandbox, client):
    specs = [
        {"name": "cell-1"},
        {"name": "cell-2", "gpu": "H200", "regions": ["EU-DE-01"]},  # pinned out of stock
    ]
    frame = client.create_many(specs, gpu="4090", all_or_nothing=True, concurrency=2)
    cells = frame["error"].dropna()
    assert len(cells) == 2
    for cell in cells:
        assert "\n" not in cell and len(cell) <= 120, repr(cell)
    details = frame.attrs["errors"]
    assert "cell-2" in details and "CapacityError" in details["cell-2"]
    assert "\n" in details["cell-2"] and len(details["cell-2"]) > 120  # the whole story
