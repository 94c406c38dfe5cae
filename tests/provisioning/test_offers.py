"""Pure provisioning rules: accepted input forms, GPU matching, region order and ranking.
No HTTP: these run on hand-made Products and Clusters.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novita_notebook.errors import ValidationError
from novita_notebook.models import Cluster, Product
from novita_notebook.provisioning import (
    OUTCOME_CHOSEN,
    OUTCOME_NO_PRODUCT,
    OUTCOME_OVER_PRICE,
    OUTCOME_UNAVAILABLE,
    Attempt,
    FallbackReport,
    find_alternatives,
    judge_region,
    match_gpu,
    order_regions,
    prepare_request,
)
from novita_notebook.provisioning.offers import judge_stock, order_offers
from novita_notebook.validation import Problems, format_ports, parse_envs, parse_ports

CLUSTERS = [
    Cluster("us-ca-nas-6", "US-CA-06"),
    Cluster("as-in-1", "AS-IN-01"),
    Cluster("eu-de-1", "EU-DE-01"),
    Cluster("cn-hongkong-1", "CN-HK-01"),
    Cluster("as-sgp-2", "AS-SGP-02"),
]


def product(
    pid, name, region, price, *, available=True, mem=62, cpu=16, spot=None, max_rootfs=1000
):
    from novita_notebook.models import gpu_model_of, vram_gb_of

    methods = ("onDemand", "spot") if spot is not None else ("onDemand",)
    return Product(
        id=pid,
        name=name,
        cpu_per_gpu=cpu,
        memory_per_gpu=mem,
        disk_per_gpu=100,
        available=available,
        min_rootfs=10,
        max_rootfs=max_rootfs,
        regions=(region,),
        price=price,
        spot_price=spot,
        billing_methods=methods,
        gpu_model=gpu_model_of(name),
        vram_gb=vram_gb_of(name),
    )


CATALOG = [
    product("4090.a", "RTX 4090 24GB", "AS-SGP-02", 0.35, spot=0.18),
    product("4090.b", "RTX 4090 24GB", "AS-SGP-02", 0.35, mem=96),
    product("4090.a", "RTX 4090 24GB", "CN-HK-01", 0.33, available=False),
    product("L4.x", "L4 24GB", "AS-IN-01", 0.25),
    product("L40S.x", "L40S 48GB", "AS-SGP-02", 0.86),
    product("L40.x", "L40 48GB", "EU-DE-01", 0.70),
]


# -- ports and envs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given",
    [
        "8888/http,22/tcp",
        "8888/http, 22",
        ["8888/http", 22],
        {8888: "http", 22: "tcp"},
        [(8888, "HTTP"), {"port": 22}],
    ],
)
def test_every_port_form_gives_the_same_ports(given):
    problems = Problems()
    ports = parse_ports(given, problems)
    assert not problems
    assert sorted(ports) == [(22, "tcp"), (8888, "http")]
    assert format_ports([(8888, "http"), (22, "tcp")]) == "8888/http,22/tcp"


def test_a_port_without_a_type_is_tcp():
    assert parse_ports([8888, "22/tcp"], Problems()) == [(8888, "tcp"), (22, "tcp")]


def test_envs_accept_dicts_and_pairs_and_stringify_values():
    problems = Problems()
    assert parse_envs({"A": 1, "B_2": "x"}, problems) == [("A", "1"), ("B_2", "x")]
    assert parse_envs([("A", "1"), {"key": "B", "value": None}], problems) == [
        ("A", "1"),
        ("B", ""),
    ]
    assert not problems


def test_env_value_that_is_too_long_is_named_by_key_not_echoed():
    secret = "s3cr3t" * 1000
    with pytest.raises(ValidationError) as caught:
        prepare_request("ok", envs={"TOKEN": secret})
    assert "TOKEN" in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_several_problems_are_listed_together():
    with pytest.raises(ValidationError) as caught:
        prepare_request("-bad-", gpu_num=9, billing="weekly")
    fields = [f for f, _ in caught.value.problems]
    assert fields == ["name", "gpu_num", "billing"]
    assert caught.value.field == "name"


# -- GPU matching -----------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["4090", "rtx 4090", "RTX 4090 24GB", "rtx4090", "RTX-4090"])
def test_gpu_names_match_fuzzily(query):
    assert {p.id for p in match_gpu(CATALOG, query)} == {"4090.a", "4090.b"}


def test_short_model_does_not_match_a_longer_one():
    assert {p.id for p in match_gpu(CATALOG, "L4")} == {"L4.x"}
    assert {p.id for p in match_gpu(CATALOG, "L40")} == {"L40.x"}
    assert {p.id for p in match_gpu(CATALOG, "L40S")} == {"L40S.x"}
    assert match_gpu(CATALOG, "RTX 9999") == []
    assert [p.id for p in match_gpu(CATALOG, "4090.b")] == ["4090.b"]


# -- region order --------------------------------------------------------------------------------------
def test_default_order_puts_priority_regions_first_then_api_order():
    names = [c.name for c in order_regions(CLUSTERS)]
    assert names == ["AS-SGP-02", "CN-HK-01", "AS-IN-01", "US-CA-06", "EU-DE-01"]


def test_preferred_region_goes_first_by_name_or_id():
    assert order_regions(CLUSTERS, region="eu-de-1")[0].name == "EU-DE-01"
    assert [c.name for c in order_regions(CLUSTERS, region="CN-HK-01")][:2] == [
        "CN-HK-01",
        "AS-SGP-02",
    ]


def test_custom_regions_replace_the_default_list_or_dict():
    assert [c.name for c in order_regions(CLUSTERS, regions=["US-CA-06", "as-in-1"])] == [
        "US-CA-06",
        "AS-IN-01",
    ]
    ordered = order_regions(CLUSTERS, regions={"EU-DE-01": 2, "CN-HK-01": 1}, region="AS-SGP-02")
    assert [c.name for c in ordered] == ["AS-SGP-02", "CN-HK-01", "EU-DE-01"]


def test_unknown_region_lists_the_known_ones():
    with pytest.raises(ValidationError) as caught:
        order_regions(CLUSTERS, regions=["MARS-01"])
    assert caught.value.field == "regions"
    assert "MARS-01" in str(caught.value) and "AS-SGP-02" in str(caught.value)


# -- ranking inside a region ---------------------------------------------------------------------------
def test_ties_prefer_more_memory_per_gpu():
    sgp = CLUSTERS[4]
    verdict = judge_region(
        sgp,
        match_gpu(CATALOG, "4090"),
        gpu="4090",
        billing="onDemand",
        max_price=None,
        rootfs_gb=None,
    )
    assert [p.id for p in verdict.candidates] == ["4090.b", "4090.a"]


def test_region_outcomes_explain_why_nothing_fits():
    matches = match_gpu(CATALOG, "4090")
    common = {"gpu": "4090", "billing": "onDemand", "rootfs_gb": None}
    hk = judge_region(CLUSTERS[3], matches, max_price=None, **common)
    assert hk.candidates and hk.outcome is None  # the listing offers it; stock is not its call
    sold_out = [dataclasses.replace(p, available=False) for p in hk.candidates]
    hk = judge_stock(hk, sold_out)  # the region's own listing says none in stock
    assert hk.outcome == OUTCOME_UNAVAILABLE and "none in stock" in hk.detail
    assert "RTX 4090 24GB" in hk.detail
    india = judge_region(CLUSTERS[1], matches, max_price=None, **common)
    assert india.outcome == OUTCOME_NO_PRODUCT
    cheap = judge_region(CLUSTERS[4], matches, max_price=0.30, **common)
    assert cheap.outcome == OUTCOME_OVER_PRICE and "$0.35/GPU-h" in cheap.detail
    spot = judge_region(
        CLUSTERS[4], matches, gpu="4090", billing="spot", max_price=None, rootfs_gb=None
    )
    assert [p.id for p in spot.candidates] == ["4090.a"]


def test_policies_order_offers_by_price_or_by_region():
    matches = match_gpu(CATALOG, "4090")
    common = {"gpu": "4090", "billing": "onDemand", "rootfs_gb": None, "max_price": None}
    verdicts = [judge_region(c, matches, **common) for c in CLUSTERS]
    open_ = [v for v in verdicts if v.candidates]
    by_price = order_offers(open_, "price", "onDemand")
    prices = [o.product.price for o in by_price]
    assert prices == sorted(prices)
    by_region = order_offers(open_, "region", "onDemand")
    regions = [o.cluster.name for o in by_region]
    assert regions == sorted(regions, key=[v.cluster.name for v in open_].index)
    assert {o.product.id for o in by_price} == {o.product.id for o in by_region}


def test_alternatives_offer_other_billing_and_other_models_with_prices():
    alternatives = find_alternatives(CATALOG, gpu="4090", billing="onDemand", tried=CLUSTERS)
    assert {"gpu": "RTX 4090 24GB", "billing": "spot"}.items() <= alternatives[0].items()
    assert alternatives[0]["price_per_gpu_hour"] == 0.18
    assert any(a["gpu"] == "L40S 48GB" for a in alternatives)


def test_report_reads_like_the_storyboard():
    report = FallbackReport("RTX 4090", 1, "onDemand")
    report.add(Attempt("AS-SGP-02", OUTCOME_UNAVAILABLE, "out of stock: RTX 4090 24GB"))
    report.add(
        Attempt(
            "CN-HK-01",
            OUTCOME_CHOSEN,
            "chosen: RTX 4090 24GB at $0.35/h (on demand)",
            price_per_hour=0.35,
        )
    )
    assert repr(report).splitlines() == [
        'policy: prefer="price": the cheapest offer in stock first, across regions '
        "(ties: region order)",
        "AS-SGP-02  out of stock: RTX 4090 24GB",
        "CN-HK-01   chosen: RTX 4090 24GB at $0.35/h (on demand)",
    ]
    assert report.price == 0.35 and report.chosen.region == "CN-HK-01"
    frame = report.to_frame()
    assert list(frame["region"]) == ["AS-SGP-02", "CN-HK-01"]
    page = report._repr_html_()
    assert "<table" in page and "CN-HK-01" in page and "out of stock" in page


# -- properties -----------------------------------------------------------------------------------
valid_ports = st.integers(1, 65535).filter(lambda p: p not in (2222, 2223, 2224))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(valid_ports, st.sampled_from(["tcp", "http"])),
        max_size=15,
        unique_by=lambda t: t[0],
    )
)
def test_ports_survive_the_round_trip_through_the_body_format(pairs):
    problems = Problems()
    assert parse_ports(format_ports(pairs), problems) == pairs
    assert not problems


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(CATALOG),
    st.sampled_from([str.lower, str.upper, lambda s: s.replace(" ", "-"), lambda s: f"  {s}  "]),
)
def test_every_product_is_found_by_its_own_name_in_any_case(item, spell):
    assert item.id in {p.id for p in match_gpu(CATALOG, spell(item.name))}


def test_progress_false_means_silent_as_in_wait(client):
    # Same vocabulary as Novita.wait: False (or "silent") switches the live display off.
    instance = client.create("quiet-1", gpu="4090", wait=True, progress=False)
    assert instance.status == "running"
