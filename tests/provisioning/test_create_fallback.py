"""Product choice and region fallback against the sandbox: stock out in the preferred region,
everything exhausted, stock racing away after the listing, and which listings a decision reads.
"""

from __future__ import annotations

import pytest

from novita_notebook.errors import CapacityError, ValidationError
from novita_notebook.provisioning import OUTCOME_CHOSEN, OUTCOME_CREATE_FAILED, OUTCOME_UNAVAILABLE

from .helpers import CREATE_PATH, PRODUCTS_PATH, calls, live_instances

FOUR_090S = ("4090.16c62g", "4090.16c96g.v2", "4090.12c48g", "26")  # every RTX 4090 id


def test_preferred_region_out_of_stock_falls_back_to_the_next_by_priority(sandbox, client):
    sandbox.set_stock(0, cluster_id="as-sgp-2")
    instance = client.create("fallback-1", gpu="RTX 4090")

    assert instance.region == "CN-HK-01"
    assert instance.product_name == "RTX 4090 24GB"
    report = instance.fallback_report
    assert [(a.region, a.outcome) for a in report.attempts] == [
        ("AS-SGP-02", OUTCOME_UNAVAILABLE),
        ("CN-HK-01", OUTCOME_CHOSEN),
    ]
    text = repr(report)
    assert "AS-SGP-02" in text and "region listing: none in stock" in text
    assert 'prefer="price"' in text
    assert [a.signal for a in report.attempts] == ["region listing", "region listing"]
    assert "CN-HK-01" in text and f"${instance.price_per_hour:.2f}/h" in text
    assert report.price == pytest.approx(instance.price_per_hour)
    assert list(report.to_frame()["region"]) == ["AS-SGP-02", "CN-HK-01"]
    assert "CN-HK-01" in report._repr_html_()
    assert [r["name"] for r in live_instances(sandbox)] == ["fallback-1"]


def test_a_preferred_region_is_tried_first_and_the_cheapest_offer_there_wins(sandbox, client):
    listing = client.api.products(cluster_id="us-ca-nas-6")  # that region's own stock
    instance = client.create("fallback-2", gpu="4090", region="US-CA-06", prefer="region")

    in_region = [p for p in listing if p.id in FOUR_090S and p.available]
    cheapest = min(p.price for p in in_region)
    assert instance.region == "US-CA-06"
    assert instance.price_per_hour == pytest.approx(cheapest)
    assert instance.fallback_report.attempts[0].region == "US-CA-06"
    assert 'prefer="region"' in repr(instance.fallback_report)


def test_the_default_policy_takes_the_cheapest_offer_in_stock_anywhere(sandbox, client):
    # Singapore first in region order is cheapest too; empty it and CN-HK-01's $0.35 beats
    # every $0.39+ offer of the regions listed before it in region order.
    sandbox.set_stock(0, cluster_id="as-sgp-2")
    by_price = client.create("policy-price", gpu="4090", regions=["US-CA-06", "CN-HK-01"])
    assert by_price.region == "CN-HK-01" and by_price.price_per_hour == pytest.approx(0.35)
    by_region = client.create(
        "policy-region", gpu="4090", regions=["US-CA-06", "CN-HK-01"], prefer="region"
    )
    assert by_region.region == "US-CA-06" and by_region.price_per_hour == pytest.approx(0.39)
    assert by_region.fallback_report.prefer == "region"
    with pytest.raises(ValidationError, match="prefer"):
        client.create("policy-bad", gpu="4090", prefer="cheapest")


def test_custom_region_priority_replaces_the_default(sandbox, client):
    instance = client.create(
        "fallback-3", gpu="4090", regions={"EU-DE-01": 1, "AS-SGP-02": 2}, prefer="region"
    )
    assert instance.fallback_report.attempts[0].region == "EU-DE-01"
    sandbox.set_stock(0, cluster_id="eu-de-1")
    sandbox.set_stock(0, cluster_id="as-sgp-2")
    sandbox.clear_requests()
    with pytest.raises(CapacityError) as caught:
        client.create("fallback-4", gpu="4090", regions=["eu-de-1", "AS-SGP-02"])
    # Only the regions asked for are tried (the 15-s cache of their stock listings is stale
    # now: the creates answer INSUFFICIENT_RESOURCE, and that moves on too).
    assert {a.region for a in caught.value.attempts} == {"EU-DE-01", "AS-SGP-02"}
    sent_to = {
        r["body"].split('"clusterId":"')[1].split('"')[0] for r in calls(sandbox, CREATE_PATH)
    }
    assert sent_to <= {"eu-de-1", "as-sgp-2"}


def test_the_decision_reads_one_listing_and_the_candidate_regions_stock(sandbox, client):
    sandbox.set_stock(4, cluster_id="us-ca-nas-6", product_id="H200.16c240g")
    client.cached_products()  # a warm unfiltered listing is reused: prices change rarely
    sandbox.clear_requests()

    instance = client.create("fallback-5", gpu="H200")  # US-CA-06 and EU-DE-01 sell it

    assert instance.region == "US-CA-06"  # H200 is pinned sold out in EU-DE-01
    listings = calls(sandbox, PRODUCTS_PATH)
    assert sorted(r["query"] for r in listings) == ["clusterId=eu-de-1", "clusterId=us-ca-nas-6"]
    # Both region listings were in flight together, not one after the other.
    first_answer = min(r["time"] for r in listings) + 0.001
    assert all(r["time"] <= first_answer + 0.05 for r in listings)
    assert len(calls(sandbox, CREATE_PATH)) == 1
    lines = {a.region: (a.signal, a.detail) for a in instance.fallback_report.attempts}
    assert lines["EU-DE-01"] == ("region listing", "region listing: none in stock (H200 141GB)")


def test_spot_is_planned_from_a_spot_listing(sandbox, client):
    sandbox.clear_requests()
    instance = client.create("spot-1", gpu="A100", billing="spot")
    log = sandbox.requests()
    created = next(i for i, r in enumerate(log) if r["path"] == CREATE_PATH)
    queries = [r["query"] for r in log[:created] if r["path"] == PRODUCTS_PATH]
    assert "billingMethod=spot" in queries  # the unfiltered listing, as spot
    assert all("billingMethod=spot" in q for q in queries)  # and every region listing
    # A100-80GB.spot is sold only as spot (absent from the on-demand listing) and cheapest.
    assert instance.product_id == "A100-80GB.spot"
    assert instance.billing_mode == "spot"
    body = calls(sandbox, CREATE_PATH)[0]["body"]
    assert '"billingMode":"spot"' in body.replace(" ", "")


def test_all_regions_exhausted_names_every_region_and_suggests_alternatives(sandbox, client):
    for product_id in FOUR_090S:
        sandbox.set_stock(0, product_id=product_id)
    sandbox.clear_requests()

    with pytest.raises(CapacityError) as caught:
        client.create("fallback-6", gpu="RTX 4090")

    error = caught.value
    message = str(error)
    for cluster in client.cached_clusters():
        assert cluster.name in message
    assert {a.region for a in error.attempts} == {c.name for c in client.cached_clusters()}
    assert "none in stock" in message and 'prefer="price"' in message
    assert error.alternatives, "alternatives available right now are suggested"
    for alternative in error.alternatives:
        assert alternative["gpu"] != "RTX 4090 24GB"
        assert alternative["price_per_gpu_hour"] > 0
        assert f"${alternative['price_per_gpu_hour']:.2f}/GPU-h" in message
    assert calls(sandbox, CREATE_PATH) == []
    assert live_instances(sandbox) == []


def test_other_billing_methods_are_suggested_when_on_demand_is_over_max_price(sandbox, client):
    with pytest.raises(CapacityError) as caught:
        client.create("fallback-7", gpu="4090", max_price=0.25)
    error = caught.value
    assert all(a.outcome in ("over max_price", "no such product") for a in error.attempts)
    spot = [a for a in error.alternatives if a["gpu"] == "RTX 4090 24GB" and a["billing"] == "spot"]
    assert spot and spot[0]["price_per_gpu_hour"] < 0.25
    # And taking the advice works, at a spot price under the cap (max_price is per GPU-hour).
    instance = client.create("fallback-7", gpu="4090", billing="spot", max_price=0.25, gpu_num=2)
    assert instance.billing_mode == "spot"
    assert instance.price_per_hour == pytest.approx(instance.fallback_report.price)
    assert instance.fallback_report.chosen.price_per_gpu_hour <= 0.25
    assert instance.price_per_hour == pytest.approx(
        2 * instance.fallback_report.chosen.price_per_gpu_hour
    )


def test_stock_taken_between_listing_and_create_moves_on_to_the_next_candidate(sandbox, client):
    ids = [c.id for c in client.cached_clusters()]
    client.catalog.region_listings(ids)  # cached: Singapore in stock, as of now
    for product_id in FOUR_090S:
        sandbox.set_stock(0, cluster_id="as-sgp-2", product_id=product_id)

    instance = client.create("fallback-8", gpu="4090")

    report = instance.fallback_report
    raced = [a for a in report.attempts if a.outcome == OUTCOME_CREATE_FAILED]
    assert raced and all(a.region == "AS-SGP-02" for a in raced)
    assert all(a.signal == "create" for a in raced)
    assert "INSUFFICIENT_RESOURCE" in raced[0].detail
    assert report.attempts[-1].outcome == OUTCOME_CHOSEN
    assert instance.region == "CN-HK-01"
    assert "create: INSUFFICIENT_RESOURCE" in repr(report)
    assert len(live_instances(sandbox)) == 1


def test_unknown_gpu_lists_what_is_available(sandbox, client):
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create("nope", gpu="RTX 9999")
    assert caught.value.field == "gpu"
    message = str(caught.value)
    assert 'no product matches "RTX 9999"' in message
    assert "RTX 4090 24GB ($" in message and "L40S 48GB" in message
    assert calls(sandbox, CREATE_PATH) == []


def test_several_gpus_need_an_offer_with_that_many_in_stock(sandbox, client):
    sandbox.set_stock(2, cluster_id="as-sgp-2")  # 2 GPUs: not enough for 4
    instance = client.create("fallback-9", gpu="4090", gpu_num=4)
    assert instance.region != "AS-SGP-02"
    assert instance.gpu_num == 4
    assert instance.fallback_report.attempts[0].outcome == OUTCOME_UNAVAILABLE
    per_gpu = instance.fallback_report.chosen.price_per_gpu_hour
    assert instance.price_per_hour == pytest.approx(4 * per_gpu)


def test_rootfs_beyond_every_product_maximum_is_a_validation_error(sandbox, client):
    with pytest.raises(ValidationError) as caught:
        client.create("big-disk", gpu="RTX 3090", rootfs_gb=4000)
    assert caught.value.field == "rootfs_gb" and "500" in str(caught.value)


def test_default_image_is_a_public_pytorch_jupyter_image(sandbox, client):
    instance = client.create("defaults", gpu="4090")
    raw = client.api.get_instance(instance.id)
    assert "pytorch" in raw["imageUrl"] and "notebook" in raw["imageUrl"]
    assert [(p["port"], p["type"]) for p in raw["portMappings"]] == [(8888, "http")]
    assert int(raw["rootfsSize"]) == 60
    assert instance.id in {entry["id"] for entry in client.ledger.entries()}
