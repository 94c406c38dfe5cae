"""Product choice and region fallback against the sandbox: stock out in the preferred region,
everything exhausted, stock racing away after the listing, and one listing per decision.
"""

from __future__ import annotations

import pytest

from novita_notebook.errors import CapacityError, ValidationError
from novita_notebook.provisioning import OUTCOME_CHOSEN, OUTCOME_CREATE_FAILED, OUTCOME_UNAVAILABLE

from .helpers import CREATE_PATH, PRODUCTS_PATH, calls, live_instances

FOUR_090S = ("4090.16c62g", "4090.16c96g.v2")


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
    assert "AS-SGP-02" in text and "out of stock" in text
    assert "CN-HK-01" in text and f"${instance.price_per_hour:.2f}/h" in text
    assert report.price == pytest.approx(instance.price_per_hour)
    assert list(report.to_frame()["region"]) == ["AS-SGP-02", "CN-HK-01"]
    assert "CN-HK-01" in report._repr_html_()
    assert [r["name"] for r in live_instances(sandbox)] == ["fallback-1"]


def test_a_preferred_region_is_tried_first_and_the_cheapest_offer_there_wins(sandbox, client):
    listing = client.api.products()
    instance = client.create("fallback-2", gpu="4090", region="US-CA-06")

    in_region = [
        p for p in listing if "US-CA-06" in p.regions and p.id in FOUR_090S and p.available
    ]
    cheapest = min(p.price for p in in_region)
    assert instance.region == "US-CA-06"
    assert instance.price_per_hour == pytest.approx(cheapest)
    assert instance.fallback_report.attempts[0].region == "US-CA-06"


def test_custom_region_priority_replaces_the_default(sandbox, client):
    instance = client.create("fallback-3", gpu="4090", regions={"EU-DE-01": 1, "AS-SGP-02": 2})
    assert instance.fallback_report.attempts[0].region == "EU-DE-01"
    sandbox.set_stock(0, cluster_id="eu-de-1")
    sandbox.set_stock(0, cluster_id="as-sgp-2")
    with pytest.raises(CapacityError) as caught:
        client.create("fallback-4", gpu="4090", regions=["eu-de-1", "AS-SGP-02"])
    # Only the regions asked for are tried.
    assert [a.region for a in caught.value.attempts] == ["EU-DE-01", "AS-SGP-02"]


def test_the_decision_uses_exactly_one_products_listing(sandbox, client):
    sandbox.set_stock(0, cluster_id="as-sgp-2")
    sandbox.set_stock(0, cluster_id="cn-hongkong-1")
    client.cached_products()  # a warm cache must still be refreshed once, not reused
    sandbox.clear_requests()

    instance = client.create("fallback-5", gpu="4090")

    assert instance.region == "AS-IN-01"
    assert len(calls(sandbox, PRODUCTS_PATH)) == 1
    assert len(calls(sandbox, CREATE_PATH)) == 1


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
    assert "out of stock" in message and "no such product" in message  # EU-WEST-01 has none
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


def test_stock_taken_between_listing_and_create_moves_on_to_the_next_candidate(
    sandbox, client, monkeypatch
):
    stale = client.cached_products(refresh=True)  # everything in stock in Singapore
    assert any(p.available and "AS-SGP-02" in p.regions and p.id in FOUR_090S for p in stale)
    for product_id in FOUR_090S:
        sandbox.set_stock(0, cluster_id="as-sgp-2", product_id=product_id)
    monkeypatch.setattr(client.catalog, "products", lambda refresh=False: list(stale))

    instance = client.create("fallback-8", gpu="4090")

    report = instance.fallback_report
    raced = [a for a in report.attempts if a.outcome == OUTCOME_CREATE_FAILED]
    assert raced and all(a.region == "AS-SGP-02" for a in raced)
    assert "INSUFFICIENT_RESOURCE" in raced[0].detail
    assert report.attempts[-1].outcome == OUTCOME_CHOSEN
    assert instance.region == "CN-HK-01"
    assert "create failed" in repr(report)
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
