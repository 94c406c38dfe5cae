"""create()'s arguments: bad ones are refused with a ValidationError naming the field BEFORE any
HTTP call; a cluster id for a region is accepted (the catalog documents "region by name or
cluster id") and a bare string for ``regions`` means that one region."""

from __future__ import annotations

import pytest

from novita_notebook.errors import ValidationError
from tests.sandbox_view import live_named, novita_calls


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"wait": True, "progress": "loud"}, "progress"),
        ({"max_price": float("nan")}, "max_price"),
        ({"max_price": float("inf")}, "max_price"),
        ({"gpu_num": "2"}, "gpu_num"),
    ],
)
def test_bad_create_arguments_fail_before_any_http_call(sandbox, client, options, field):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as info:
        client.create("never-made", gpu="4090", **options)
    assert info.value.field == field or field in str(info.value)
    assert novita_calls(sandbox) == []
    assert live_named(sandbox, "never-made") == []


def test_region_may_be_a_cluster_id(sandbox, client):
    made = client.create("by-cluster", gpu="4090", region="as-sgp-2")
    assert made.cluster_id == "as-sgp-2" and made.region == "AS-SGP-02"


def test_regions_as_a_bare_string_is_that_one_region(sandbox, client):
    made = client.create("bare-regions", gpu="4090", regions="EU-DE-01")
    assert made.region == "EU-DE-01"
    assert [a.region for a in made.fallback_report.attempts] == ["EU-DE-01"]
