"""Novita.mine(), watch_mine() and cleanup() against the sandbox over real HTTP: live status
joined from one list call, gone instances, previews, stops, deletes and the ledger after them.
"""

from __future__ import annotations

import json
import time

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.ledger import Ledger

LIST_PATH = "/gpu-instance/openapi/v1/gpu/instances"
GET_PATH = "/gpu-instance/openapi/v1/gpu/instance"


def eventually(check, timeout: float = 20.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def status_of(client, instance_id: str) -> str | None:
    for raw in client.api.list_instances():
        if raw.get("id") == instance_id:
            return raw.get("status")
    return None


@pytest.fixture
def fleet(client):
    """Two running instances and one still provisioning, all created through the package."""
    a = client.create("mine-a", "4090", wait=True, timeout=60)
    b = client.create("mine-b", "4090", wait=True, timeout=60)
    # Created through the raw API and recorded by hand, as older code paths do.
    product = client.cached_products()[0]
    raw_id = client.api.create_instance(
        {
            "name": "mine-raw",
            "productId": product.id,
            "gpuNum": 1,
            "rootfsSize": 20,
            "imageUrl": "pytorch/pytorch:latest",
            "kind": "gpu",
            "clusterId": client.cached_clusters()[0].id,
        }
    )
    client.ledger.record(client.instance(raw_id))
    return {"a": a.id, "b": b.id, "raw": raw_id}


def test_mine_joins_live_status_from_one_list_call(client, sandbox, fleet):
    Ledger(api_url="https://elsewhere.example/gpu-instance/openapi/v1").record({"id": "other"})
    sandbox.clear_requests()
    mine = client.mine()
    calls = [r for r in sandbox.requests() if r["path"] in (LIST_PATH, GET_PATH)]
    assert [r["path"] for r in calls] == [LIST_PATH]
    assert list(mine["name"]) == ["mine-a", "mine-b", "mine-raw"]
    by_name = mine.set_index("name")
    assert by_name.loc["mine-a", "status"] == "running"
    assert by_name.loc["mine-a", "phase"] == "running"
    assert by_name.loc["mine-a", "price_per_hour"] > 0
    assert by_name.loc["mine-a", "cost_so_far"] >= 0
    assert by_name.loc["mine-a", "region"] and by_name.loc["mine-a", "product"]
    assert str(mine["created_at"].dtype).startswith("datetime64")
    assert "other" not in set(mine["id"])


def test_mine_without_refresh_reads_only_the_file(client, sandbox, fleet):
    sandbox.clear_requests()
    mine = client.mine(refresh=False)
    assert len(mine) == 3 and mine["status"].isna().all()
    assert [r for r in sandbox.requests() if r["path"].startswith("/gpu-instance")] == []


def test_instances_gone_upstream_show_as_gone_and_prune_forgets_them(client, fleet):
    client.api.delete_instance(fleet["b"])
    assert eventually(lambda: status_of(client, fleet["b"]) is None)
    mine = client.mine().set_index("id")
    assert mine.loc[fleet["b"], "status"] == "gone"
    assert fleet["b"] in {e["id"] for e in client.ledger.entries()}  # not pruned by default
    pruned = client.mine(prune=True)
    assert pruned.attrs["pruned"] == [fleet["b"]]
    assert fleet["b"] not in {e["id"] for e in client.ledger.entries()}
    assert set(client.mine()["id"]) == {fleet["a"], fleet["raw"]}


def test_ledger_survives_a_new_client(client, sandbox, fleet):
    from novita_notebook import Novita

    with Novita(api_key=sandbox.api_key, api_url=sandbox.url) as fresh:
        assert set(fresh.mine()["id"]) == set(fleet.values())


def test_cleanup_dry_run_previews_and_changes_nothing(client, fleet):
    assert eventually(lambda: status_of(client, fleet["raw"]) == "running")
    preview = client.cleanup()
    assert preview.attrs["dry_run"] is True
    assert set(preview["action"]) == {"stop"}
    assert set(preview["result"]) == {"dry run"}
    assert preview.attrs["saves_per_hour"] == pytest.approx(preview["price_per_hour"].sum())
    assert {status_of(client, i) for i in fleet.values()} == {"running"}
    delete_preview = client.cleanup(delete=True)
    assert set(delete_preview["action"]) == {"delete"}
    assert len(client.ledger.entries()) == 3


def test_cleanup_needs_an_action_when_not_a_dry_run(client, fleet):
    with pytest.raises(ValidationError) as caught:
        client.cleanup(dry_run=False)
    assert caught.value.field == "dry_run"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"older_than": "soonish"}, "older_than"),
        ({"older_than": -1}, "older_than"),
        ({"older_than": [1]}, "older_than"),
        ({"names": []}, "names"),
        ({"stop": "yes"}, "stop"),
    ],
)
def test_cleanup_bad_arguments_name_the_field(client, kwargs, field):
    with pytest.raises(ValidationError) as caught:
        client.cleanup(**kwargs)
    assert caught.value.field == field


def test_cleanup_stop_stops_running_ones_and_keeps_them_in_the_ledger(client, fleet):
    done = client.cleanup(stop=True, dry_run=False, names=["mine-a", fleet["b"]])
    assert set(done["id"]) == {fleet["a"], fleet["b"]}
    assert set(done["result"]) == {"stopped"}
    assert done.attrs["saves_per_hour"] > 0
    stopped = {"toStop", "stopping", "exited"}
    assert eventually(lambda: status_of(client, fleet["a"]) in stopped)
    assert status_of(client, fleet["raw"]) not in stopped
    assert len(client.ledger.entries()) == 3
    assert eventually(lambda: status_of(client, fleet["a"]) == "exited")
    again = client.cleanup(stop=True).set_index("id")  # a stopped one is kept
    assert again.loc[fleet["a"], "action"] == "keep"
    assert again.loc[fleet["a"], "saves_per_hour"] == 0


def test_cleanup_delete_deletes_and_forgets(client, fleet):
    client.api.delete_instance(fleet["raw"])
    assert eventually(lambda: status_of(client, fleet["raw"]) is None)
    done = client.cleanup(delete=True, dry_run=False).set_index("id")
    assert done.loc[fleet["a"], "result"] == "deleted"
    assert done.loc[fleet["raw"], "action"] == "forget"
    assert client.ledger.entries() == []
    assert eventually(lambda: status_of(client, fleet["a"]) in (None, "toRemove", "removing"))


def test_cleanup_older_than_selects_by_age(client, fleet):
    assert client.cleanup(older_than="1h").empty
    assert len(client.cleanup(older_than=0)) == 3
    # Age one entry in the file itself (record() keeps the first creation time on purpose).
    data = json.loads(client.ledger.path.read_text())
    for entry in data["instances"]:
        if entry["id"] == fleet["a"]:
            entry["created_at"] = "2020-01-01T00:00:00+00:00"
    client.ledger.path.write_text(json.dumps(data))
    old = client.cleanup(older_than="24h")
    assert list(old["id"]) == [fleet["a"]]


def test_watch_mine_watches_the_live_ledger_instances(client, fleet):
    client.api.delete_instance(fleet["b"])
    assert eventually(lambda: status_of(client, fleet["b"]) is None)
    watcher = client.watch_mine(interval=0.1)
    try:
        assert eventually(lambda: set(watcher.latest) == {fleet["a"], fleet["raw"]}, timeout=10)
    finally:
        watcher.stop()
