"""products() and regions() over the live catalog shape: a region's stock comes only from its
own clusterId listing; the unfiltered listing's flag is shown as the aggregate it is.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from tests.provisioning.helpers import PRODUCTS_PATH, calls


def _cluster_queries(sandbox) -> list[str]:
    return [
        parse_qs(r["query"]).get("clusterId", [""])[0]
        for r in calls(sandbox, PRODUCTS_PATH, "GET")
        if "clusterId" in r["query"]
    ]


def test_an_empty_region_never_shows_available(client, sandbox):
    sandbox.set_stock(0, cluster_id="as-sgp-2")
    here = client.products(gpu="4090", region="AS-SGP-02")
    assert len(here) == 2  # two RTX 4090 products are offered in Singapore
    assert not here["available"].any()
    assert set(here["stock"]) == {"none"}
    # ... while the same products are in stock elsewhere: the aggregate says so, labelled.
    assert here["available_somewhere"].all()

    everywhere = client.products(gpu="4090")
    sgp = everywhere[everywhere["region"] == "AS-SGP-02"]
    assert len(sgp) == 2
    assert sgp["available"].isna().all() and sgp["stock"].isna().all()
    assert sgp["available_somewhere"].all()

    detailed = client.products(gpu="4090", detail=True)
    assert not detailed[detailed["region"] == "AS-SGP-02"]["available"].any()
    assert detailed[detailed["region"] == "CN-HK-01"]["available"].all()

    in_stock = client.products(gpu="4090", available=True)
    assert "AS-SGP-02" not in set(in_stock["region"])
    assert in_stock["available"].all()


def test_available_filter_asks_only_the_regions_offering_a_match(client, sandbox):
    sandbox.clear_requests()
    client.products(gpu="H200", available=True)
    # H200 is offered in US-CA-06 and EU-DE-01 only: two region listings, no more.
    assert sorted(_cluster_queries(sandbox)) == ["eu-de-1", "us-ca-nas-6"]
    client.products(gpu="H200")
    assert len(_cluster_queries(sandbox)) == 2  # no per-region listing without a stock question


def test_regions_count_stock_from_each_region_listing(client, sandbox):
    sandbox.set_stock(0, cluster_id="as-sgp-2")
    frame = client.regions().set_index("name")
    assert frame.loc["AS-SGP-02", "products_available"] == 0
    assert frame.loc["AS-SGP-02", "products"] > 0
    assert frame.loc["CN-HK-01", "products_available"] > 0
    assert set(_cluster_queries(sandbox)) == set(frame["id"])
    cheap = client.regions(detail=False).set_index("name")
    assert cheap["products_available"].isna().all()  # unknown, never a guessed count
