"""A volume name means one volume: create_storage refuses a name in use, delete_storage is
idempotent, and region= is never silently overridden by a volume's region."""

from __future__ import annotations

import pytest

from novita_notebook.errors import ValidationError


def test_a_name_already_used_is_refused_before_the_create(client, sandbox):
    first = client.create_storage("my-data", "EU-DE-01", 20)
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create_storage("my-data", "AS-SGP-02", 50)
    assert caught.value.field == "name" and first.id in caught.value.message
    assert not [r for r in sandbox.requests() if r["method"] == "POST"]
    assert list(client.storages()["name"]) == ["my-data"]
    # name-based uses keep working
    assert client.delete_storage("my-data").id == first.id


def test_deleting_a_volume_twice_is_fine(client):
    made = client.create_storage("twice", "EU-DE-01", 20)
    assert client.delete_storage("twice").id == made.id
    assert client.delete_storage("twice") is None
    assert client.delete_storage(made.id) is None
    assert client.storages().empty


def test_region_is_not_silently_overridden_by_a_volume(client, sandbox):
    client.create_storage("de-data", "EU-DE-01", 20)
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create("vol-x", gpu="4090", region="AS-SGP-02", volumes=["de-data"])
    error = caught.value
    assert error.field == "region"
    assert "AS-SGP-02" in error.message and "EU-DE-01" in error.message
    assert not [r for r in sandbox.requests() if r["path"].endswith("/gpu/instance/create")]
    # the volume's own region, or none, is fine
    made = client.create("vol-x", gpu="4090", region="EU-DE-01", volumes=["de-data"])
    assert made.region == "EU-DE-01"
