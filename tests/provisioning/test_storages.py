"""Network volumes over the sandbox: list/create/delete, and a create that mounts one is
pinned to the volume's region, says so in its report, and never tries another region.
"""

from __future__ import annotations

import json

import pytest

from novita_notebook.errors import CapacityError, ValidationError
from novita_notebook.provisioning import OUTCOME_CHOSEN

from .helpers import CREATE_PATH, calls


def test_storages_create_list_and_delete(client, sandbox):
    made = client.create_storage("my-data", "EU-DE-01", 20)
    assert made.cluster_id == "eu-de-1" and made.size_gb == 20
    frame = client.storages()
    row = frame[frame["name"] == "my-data"].iloc[0]
    assert row["id"] == made.id and row["region"] == "EU-DE-01" and row["size_gb"] == 20
    assert row["price_per_month"] == pytest.approx(row["price_per_hour"] * 730, abs=0.01)
    with pytest.raises(ValidationError, match="no network storage"):
        client.create_storage("nope", "AS-IN-01", 20)  # CUR_CLUSTER_NETWORK_STORAGE_NOT_SUPPORT
    with pytest.raises(ValidationError, match="size_gb"):
        client.create_storage("tiny", "EU-DE-01", 5)
    assert client.delete_storage("my-data").id == made.id
    assert client.storages().empty


def test_a_volume_in_eu_de_01_pins_the_create_there(client, sandbox):
    volume = client.create_storage("my-data", "EU-DE-01", 20)
    sandbox.clear_requests()
    instance = client.create("with-data", gpu="4090", volumes=["my-data"])

    assert instance.cluster_id == "eu-de-1"
    creates = calls(sandbox, CREATE_PATH)
    assert [json.loads(r["body"])["clusterId"] for r in creates] == ["eu-de-1"]
    body = json.loads(creates[0]["body"])
    assert body["networkStorages"] == [{"Id": volume.id, "mountPoint": "/network"}]
    assert creates[0]["ignored"] == []
    report = instance.fallback_report
    assert "volume 'my-data'" in report.restriction and "EU-DE-01" in report.restriction
    others = [a for a in report.attempts if a.region != "EU-DE-01"]
    assert others and all(a.signal == "volume" for a in others)
    assert all("volume is in EU-DE-01" in a.detail for a in others)
    assert report.chosen.region == "EU-DE-01" and report.chosen.outcome == OUTCOME_CHOSEN
    assert "only EU-DE-01" in repr(report)


def test_a_sold_out_volume_region_fails_without_trying_elsewhere(client, sandbox):
    client.create_storage("my-data", "EU-DE-01", 20)
    sandbox.set_stock(0, cluster_id="eu-de-1")
    sandbox.clear_requests()
    with pytest.raises(CapacityError) as caught:
        client.create("stuck", gpu="4090", volumes=[("my-data", "/data")])
    sent = [json.loads(r["body"])["clusterId"] for r in calls(sandbox, CREATE_PATH)]
    assert set(sent) <= {"eu-de-1"}  # a stale stock cache may try EU-DE-01, nothing else
    assert "only EU-DE-01" in str(caught.value)


def test_volume_errors_come_before_any_create(client, sandbox):
    client.create_storage("de", "EU-DE-01", 20)
    client.create_storage("sg", "AS-SGP-02", 20)
    sandbox.clear_requests()
    with pytest.raises(ValidationError, match="one region"):
        client.create("two", gpu="4090", volumes=["de", "sg"])
    with pytest.raises(ValidationError, match="no network volume"):
        client.create("missing", gpu="4090", volumes=["nothing-here"])
    with pytest.raises(ValidationError, match="regions= leaves out"):
        client.create("elsewhere", gpu="4090", volumes=["de"], regions=["AS-SGP-02"])
    with pytest.raises(ValidationError, match="volumes"):
        client.create("bad", gpu="4090", volumes=[42])
    assert calls(sandbox, CREATE_PATH) == []
