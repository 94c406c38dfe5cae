"""The one region resolver: a name or a cluster id, any case, against the API's clusters, with
one wording for an unknown region wherever it was typed (create, products, volumes)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.validation import match_region, region_keys


@dataclass
class Cluster:
    id: str
    name: str


CLUSTERS = [Cluster("as-sgp-2", "AS-SGP-02"), Cluster("eu-de-1", "EU-DE-01")]


@pytest.mark.parametrize("key", ["AS-SGP-02", "as-sgp-02", "as-sgp-2", " AS-SGP-2 "])
def test_a_region_is_found_by_name_or_cluster_id_in_any_case(key):
    assert match_region(CLUSTERS, key).id == "as-sgp-2"


def test_an_unknown_region_lists_the_known_ones():
    with pytest.raises(ValidationError) as caught:
        match_region(CLUSTERS, "MARS-01", "regions")
    assert caught.value.field == "regions"
    assert "unknown region 'MARS-01'; known regions: AS-SGP-02 (as-sgp-2), EU-DE-01" in str(
        caught.value
    )


def test_regions_keep_their_order_and_a_dict_orders_by_priority():
    assert region_keys("EU-DE-01, AS-SGP-02") == ["EU-DE-01", "AS-SGP-02"]
    assert region_keys({"AS-SGP-02": 2, "EU-DE-01": 1}) == ["EU-DE-01", "AS-SGP-02"]
    assert region_keys(None) is None


def test_every_surface_resolves_regions_the_same_way(client):
    """create, products and volumes refuse an unknown region in the same words."""
    words = []
    for call in (
        lambda: client.create("r-1", gpu="4090", region="MARS-01"),
        lambda: client.products(region="MARS-01"),
        lambda: client.create_storage("v-1", "MARS-01", 20),
    ):
        with pytest.raises(ValidationError) as caught:
            call()
        words.append(caught.value.message.split("unknown region", 1)[1])
    assert len(set(words)) == 1
