"""DataFrames and caches against the sandbox: dtypes, sorting, fuzzy GPU matching, filters,
instances with prices and costs, and zero HTTP calls within the cache TTL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.frames import cost_so_far, gpu_matches, gpu_tokens, instances_frame
from novita_notebook.models import STATUS_ORDER, Instance
from tests.api_helpers import api_requests, create_raw, wait_status


def test_products_dtypes_and_cheapest_first(client):
    df = client.products()
    assert len(df) > 10
    assert df["price_per_hour"].dtype == "float64"
    assert df["spot_per_hour"].dtype == "float64"
    assert pd.api.types.is_string_dtype(df["product_id"])
    assert pd.api.types.is_string_dtype(df["region"])
    assert str(df["available"].dtype) == "boolean"  # <NA>: stock is known per region only
    assert str(df["vram_gb"].dtype) == "Int64"
    prices = df["price_per_hour"].dropna().tolist()
    assert prices == sorted(prices)
    assert df["cluster_id"].notna().all()  # joined from the cluster listing
    assert set(df["stock"].dropna()) <= {"none", "low", "normal", "high"}


@pytest.mark.parametrize(
    "query", ["4090", "rtx 4090", "RTX 4090 24GB", "RTX4090", "nvidia rtx 4090"]
)
def test_products_fuzzy_gpu(client, query):
    df = client.products(gpu=query)
    assert len(df) > 0
    assert set(df["gpu"]) == {"RTX 4090"}


def test_products_gpu_by_product_id(client):
    product_id = client.cached_products()[0].id
    df = client.products(gpu=product_id)
    assert set(df["product_id"]) == {product_id}


def test_gpu_tokens_keep_models_apart():
    assert not gpu_matches("A10", "A100 80GB SXM", "A100")
    assert not gpu_matches("L40", "L40S 48GB", "L40S")
    assert not gpu_matches("L4", "L40S 48GB", "L40S")
    assert gpu_matches("l40s", "L40S 48GB", "L40S")
    assert gpu_matches("24 gb 4090", "RTX 4090 24GB", "RTX 4090")
    assert gpu_tokens("GeForce RTX4090") == ["rtx", "4090"]


def test_unknown_gpu_lists_models(client):
    with pytest.raises(ValidationError) as info:
        client.products(gpu="RTX 9999")
    assert info.value.field == "gpu" and "RTX 4090 ($" in str(info.value)
    assert "Available now" in str(info.value) and info.value.hint


def test_region_by_name_or_id(client):
    cluster = client.cached_clusters()[0]
    by_name = client.products(region=cluster.name)
    by_id = client.products(region=cluster.id.upper())
    assert len(by_name) > 0 and by_name.equals(by_id)
    assert set(by_name["region"]) == {cluster.name}
    with pytest.raises(ValidationError, match="unknown region") as info:
        client.products(region="MARS-01")
    assert cluster.name in str(info.value)


def test_billing_available_and_max_price(client):
    spot = client.products(billing="spot", available=True, max_price=0.5)
    assert len(spot) > 0
    assert (spot["spot_per_hour"] <= 0.5).all()
    assert spot["available"].all()
    assert spot["billing_methods"].str.contains("spot").all()
    values = spot["spot_per_hour"].tolist()
    assert values == sorted(values)  # sorted by the chosen billing method's price
    unavailable = client.products(available=False)
    assert not unavailable["available"].any()
    cheap = client.products(max_price=0.25)
    assert (cheap["price_per_hour"] <= 0.25).all()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"billing": "weekly"}, "billing"),
        ({"max_price": -1}, "max_price"),
        ({"gpu_num": 0}, "gpu_num"),
        ({"available": "yes"}, "available"),
        ({"gpu": ""}, "gpu"),
        ({"refresh": 1}, "refresh"),
    ],
)
def test_products_validation_before_network(client, kwargs, field):
    with pytest.raises(ValidationError) as info:
        client.products(**kwargs)
    assert info.value.field == field
    assert client.requests_made == 0


def test_gpu_num_asks_the_api(client, sandbox):
    df = client.products(gpu_num=2)
    assert len(df) > 0
    assert "gpuNum=2" in api_requests(sandbox, "/products")[-1]["query"]


def test_regions_frame(client):
    df = client.regions()
    assert len(df) == len(client.cached_clusters())
    assert df["cheapest_per_hour"].dtype == "float64"
    assert (df["products_available"] <= df["products"]).all()
    row = df.iloc[0]
    cheapest = client.products(region=row["id"], available=True)["price_per_hour"].min()
    assert row["cheapest_per_hour"] == pytest.approx(cheapest)


def test_caches_make_no_calls_within_ttl(client, sandbox):
    client.products()
    client.regions()
    client.templates()
    sandbox.clear_requests()
    before = client.requests_made
    for _ in range(3):
        client.products(gpu="4090")
        client.regions()
        client.templates()
        client.cached_products()
        client.cached_clusters()
        client.cached_templates()
    assert api_requests(sandbox) == []
    assert client.requests_made == before
    client.products(refresh=True)
    assert len(api_requests(sandbox, "/products")) == 1
    client.clear_cache()
    client.templates()
    listed = [r["query"] for r in api_requests(sandbox, "/templates")]
    # one listing per template channel, none twice
    assert listed and len(set(listed)) == len(listed)
    client.templates()
    assert len(api_requests(sandbox, "/templates")) == len(listed)


def test_cache_ttl_expires(sandbox):
    from novita_notebook import Novita

    with Novita(api_key=sandbox.api_key, api_url=sandbox.url, cache_ttl=0.2) as client:
        client.cached_products()
        client.cached_products()
        assert len(api_requests(sandbox, "/products")) == 1
        import time

        time.sleep(0.3)
        client.cached_products()
        assert len(api_requests(sandbox, "/products")) == 2


def test_concurrent_cache_misses_fetch_once(client, sandbox):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.cached_products(), range(16)))
    assert all(r == results[0] for r in results)
    assert len(api_requests(sandbox, "/products")) == 1


def test_instances_frame_dtypes_prices_and_costs(client):
    first = create_raw(client, "frame-a", gpu_num=2)
    create_raw(client, "frame-b")
    wait_status(client, first, "running")
    df = client.instances()
    assert set(df["name"]) >= {"frame-a", "frame-b"}
    assert isinstance(df["status"].dtype, pd.CategoricalDtype) and df["status"].cat.ordered
    assert list(df["status"].cat.categories[: len(STATUS_ORDER)]) == list(STATUS_ORDER)
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]"
    assert pd.api.types.is_timedelta64_dtype(df["age"])
    assert df["price_per_hour"].dtype == "float64" and df["cost_so_far"].dtype == "float64"
    assert pd.api.types.is_string_dtype(df["id"])
    row = df.set_index("name").loc["frame-a"]
    product = next(
        p
        for p in client.cached_products()
        if p.id == row["product_id"] and p.regions[0] == row["region"]
    )
    assert row["price_per_hour"] == pytest.approx(product.price * 2)
    assert row["gpus"] == 2 and row["status"] == "running"
    assert row["cost_so_far"] >= 0
    assert "password" not in " ".join(df.columns)


def test_instances_status_filter_and_validation(client):
    running = create_raw(client, "filter-run")
    wait_status(client, running, "running")
    df = client.instances(status="running")
    assert set(df["status"]) == {"running"}
    assert len(client.instances(status=["provisioning", "stopped"])) == 0
    with pytest.raises(ValidationError, match="not a status or phase"):
        client.instances(status="sleeping")


def test_unknown_status_kept_and_sorted_last():
    now = datetime.now(UTC)
    insts = [
        Instance(id="1", name="a", status="hibernating", created_at=now),
        Instance(id="2", name="b", status="running", created_at=now - timedelta(hours=1)),
    ]
    df = instances_frame(insts, now)
    assert list(df["status"].cat.categories)[-1] == "hibernating"
    assert df.sort_values("status")["status"].tolist() == ["running", "hibernating"]
    assert df["phase"].tolist() == ["unknown", "running"]


def test_cost_estimate():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    running = Instance(
        id="1", name="a", status="running", price_per_hour=2.0, started_at=now - timedelta(hours=3)
    )
    assert cost_so_far(running, now) == pytest.approx(6.0)
    stopped = Instance(
        id="2",
        name="b",
        status="exited",
        price_per_hour=1.0,
        started_at=now - timedelta(hours=5),
        stopped_at=now - timedelta(hours=4),
    )
    assert cost_so_far(stopped, now) == pytest.approx(1.0)
    assert cost_so_far(Instance(id="3", name="c", status="running"), now) is None


def test_templates_frame(client):
    df = client.templates()
    assert len(df) > 0 and pd.api.types.is_string_dtype(df["id"])
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]"
    assert df["ports"].str.contains("/").any()
    official = client.templates(channel="official")
    assert set(official["channel"]) == {"official"}


def test_instances_frame_pages_through_the_api(client, sandbox):
    sandbox.set_stock(1000)
    ids = {create_raw(client, f"many-{i}") for i in range(130)}
    sandbox.clear_requests()
    df = client.instances()
    assert set(df["id"]) == ids and df["id"].is_unique
    pages = api_requests(sandbox, "/gpu/instances")
    assert [p["query"].split("&")[0] for p in pages] == ["pageNum=0", "pageNum=1"]
    assert df["price_per_hour"].notna().all()


def _series_frame(instances, now):
    """The instances frame built one Series per column (the way it was first written): the
    bulk builder must give exactly this, values and dtypes."""
    ordered = sorted(
        instances, key=lambda i: (i.created_at.timestamp() if i.created_at else 0.0, i.id)
    )[::-1]
    strings = lambda values: pd.Series(values, dtype="string")  # noqa: E731
    floats = lambda values: pd.Series(  # noqa: E731
        [float("nan") if v is None else v for v in values], dtype="float64"
    )
    times = lambda values: pd.Series(  # noqa: E731
        pd.to_datetime(list(values), utc=True), dtype="datetime64[ns, UTC]"
    )
    statuses = [i.status for i in ordered]
    created = times([i.created_at for i in ordered])
    categories = [*STATUS_ORDER, *sorted({s for s in statuses if s not in STATUS_ORDER})]
    return pd.DataFrame(
        {
            "id": strings([i.id for i in ordered]),
            "name": strings([i.name for i in ordered]),
            "status": pd.Categorical(statuses, categories=categories, ordered=True),
            "phase": strings([i.phase for i in ordered]),
            "region": strings([i.region for i in ordered]),
            "cluster_id": strings([i.cluster_id for i in ordered]),
            "product": strings([i.product_name for i in ordered]),
            "product_id": strings([i.product_id for i in ordered]),
            "gpus": pd.Series([i.gpu_num for i in ordered], dtype="Int64"),
            "billing": strings([i.billing_mode for i in ordered]),
            "image": strings([i.image_url for i in ordered]),
            "created_at": created,
            "started_at": times([i.started_at for i in ordered]),
            "age": pd.Timestamp(now) - created,
            "price_per_hour": floats([i.price_per_hour for i in ordered]),
            "cost_so_far": floats([cost_so_far(i, now) for i in ordered]),
            "ssh_command": strings([i.ssh_command for i in ordered]),
            "jupyter_url": strings([i.jupyter_url for i in ordered]),
            "error": strings(
                [
                    i.status_error.message or i.status_error.state if i.failed else None
                    for i in ordered
                ]
            ),
        }
    )


def test_bulk_instances_frame_equals_the_per_column_build():
    from novita_notebook.models import StatusError

    now = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    insts = [
        Instance(
            id=str(n),
            name=f"n{n}",
            status=["running", "exited", "pulling", "hibernating"][n % 4],
            region=None if n % 3 else "US-CA-06",
            gpu_num=None if n % 5 == 0 else n % 4 + 1,
            price_per_hour=None if n % 2 else 0.35 * n,
            created_at=None if n % 7 == 0 else now - timedelta(minutes=n, microseconds=n * 7),
            started_at={1: (now - timedelta(seconds=n)).replace(tzinfo=None), 3: None}.get(
                n % 6, now - timedelta(seconds=n)
            ),
            status_error=StatusError("pullFailed", "no such image") if n == 5 else None,
            ssh_command="ssh root@h -p 1" if n % 4 == 0 else None,
        )
        for n in range(23)
    ]
    built = instances_frame(insts, now)
    pd.testing.assert_frame_equal(built, _series_frame(insts, now))
    assert built.dtypes.equals(_series_frame(insts, now).dtypes)
    empty = instances_frame([], now)
    assert list(empty.columns) == list(_series_frame([], now).columns)
    assert empty.dtypes.equals(_series_frame([], now).dtypes)


PRODUCT_DTYPES = {
    "product_id": "string",
    "product": "string",
    "gpu": "string",
    "vram_gb": "Int64",
    "region": "string",
    "cluster_id": "string",
    "price_per_hour": "float64",
    "spot_per_hour": "float64",
    "monthly_per_hour": "float64",
    "cpu_per_gpu": "Int64",
    "mem_per_gpu": "Int64",
    "disk_per_gpu": "Int64",
    "available": "boolean",
    "stock": "string",
    "available_somewhere": "boolean",
    "stock_somewhere": "string",
    "min_rootfs": "Int64",
    "max_rootfs": "Int64",
    "billing_methods": "string",
}
REGION_DTYPES = {
    "id": "string",
    "name": "string",
    "gpu_types": "string",
    "products": "int64",
    "products_available": "Int64",
    "cheapest_gpu": "string",
    "cheapest_per_hour": "float64",
    "network_storage": "bool",
}


@pytest.mark.parametrize("per_region", [False, True])
def test_products_and_regions_keep_every_column_and_dtype(client, per_region):
    products = client.products(available=True) if per_region else client.products()
    regions = client.regions(detail=per_region)
    for frame, expected in ((products, PRODUCT_DTYPES), (regions, REGION_DTYPES)):
        assert list(frame.columns) == list(expected)
        assert {c: str(t) for c, t in frame.dtypes.items()} == expected
        assert frame.index.equals(pd.RangeIndex(len(frame)))
    assert products["stock"].isna().all() != per_region
    assert regions["products_available"].isna().all() != per_region
    empty = client.products(max_price=0.0001)
    assert len(empty) == 0
    assert {c: str(t) for c, t in empty.dtypes.items()} == PRODUCT_DTYPES
