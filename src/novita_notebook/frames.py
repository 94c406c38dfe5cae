"""Models → pandas DataFrames with real dtypes (float prices, aware UTC datetimes, ordered
categorical statuses, string ids), each column built in bulk; cost estimates used by them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from . import money
from .columns import assemble, columns_of, frame_from_records, micros, status_categories, timedeltas
from .models import (
    BILLED_STATUSES,
    Cluster,
    Instance,
    Product,
    Template,
)
from .parsing import LISTING_FIELDS, StatusError, gpu_matches, gpu_tokens, phase_of

__all__ = [
    "PRODUCT_COLUMNS",
    "REGION_COLUMNS",
    "INSTANCE_COLUMNS",
    "TEMPLATE_COLUMNS",
    "gpu_tokens",
    "gpu_matches",
    "products_frame",
    "regions_frame",
    "instances_frame",
    "listed_instances_frame",
    "templates_frame",
    "cost_so_far",
    "status_categories",
]

PRODUCT_COLUMNS = (
    "product_id",
    "product",
    "gpu",
    "vram_gb",
    "region",
    "cluster_id",
    "price_per_hour",
    "spot_per_hour",
    "monthly_per_hour",
    "cpu_per_gpu",
    "mem_per_gpu",
    "disk_per_gpu",
    "available",
    "stock",
    "available_somewhere",
    "stock_somewhere",
    "min_rootfs",
    "max_rootfs",
    "billing_methods",
)
REGION_COLUMNS = (
    "id",
    "name",
    "gpu_types",
    "products",
    "products_available",
    "cheapest_gpu",
    "cheapest_per_hour",
    "network_storage",
)
INSTANCE_COLUMNS = (
    "id",
    "name",
    "status",
    "phase",
    "region",
    "cluster_id",
    "product",
    "product_id",
    "gpus",
    "billing",
    "image",
    "created_at",
    "started_at",
    "age",
    "price_per_hour",
    "cost_so_far",
    "ssh_command",
    "jupyter_url",
    "error",
)
TEMPLATE_COLUMNS = (
    "id",
    "name",
    "image",
    "channel",
    "type",
    "rootfs_size",
    "ports",
    "min_cuda_version",
    "created_at",
)

# -- helpers -----------------------------------------------------------------------------------

#: Each column's dtype, for the frames built from records: every column converted once.
_PRODUCT_KINDS = {name: "string" for name in PRODUCT_COLUMNS} | {
    name: kind
    for kind, names in (
        ("Int64", "vram_gb cpu_per_gpu mem_per_gpu disk_per_gpu min_rootfs max_rootfs"),
        ("float64", "price_per_hour spot_per_hour monthly_per_hour"),
        ("boolean", "available available_somewhere"),
    )
    for name in names.split()
}
_REGION_KINDS = dict(
    zip(
        REGION_COLUMNS,
        ("string", "string", "string", "int64", "Int64", "string", "float64", "bool"),
        strict=True,
    )
)
_TEMPLATE_KINDS = {name: "string" for name in TEMPLATE_COLUMNS} | {
    "rootfs_size": "Int64",
    "created_at": "utc",
}
# The instance frame's columns but age (worked out from created_at), as its records carry them.
_INSTANCE_RECORDED = tuple(name for name in INSTANCE_COLUMNS if name != "age")
_INSTANCE_KINDS = {name: "string" for name in _INSTANCE_RECORDED} | {
    "status": "status",
    "gpus": "Int64",
    "created_at": "utc",
    "started_at": "utc",
    "price_per_hour": "float64",
    "cost_so_far": "float64",
}


# -- products and regions ----------------------------------------------------------------------


def products_frame(
    products: Sequence[Product],
    clusters: Sequence[Cluster],
    *,
    billing: str | None = None,
    per_region: bool = False,
    aggregate: Mapping[str, Product] | None = None,
) -> pd.DataFrame:
    """One row per product × region, cheapest first (by ``billing``'s price, default on-demand).

    Prices are USD per GPU-hour. ``available``/``stock`` are ONE region's (from its own
    listing) when ``per_region``, else <NA>: the unfiltered listing only knows
    ``available_somewhere``/``stock_somewhere``, the aggregate over every region offering the
    product (from ``aggregate`` by product id, else the row itself when not per-region).
    ``cluster_id`` is joined from the cluster listing by region name.
    """
    by_name = {c.name.upper(): c.id for c in clusters}
    rows: list[tuple[Product, str | None, float | None]] = []
    for product in products:
        regions = product.regions or (None,)
        for region in regions:
            rows.append((product, region, product.price_for(billing or "onDemand")))
    # Cheapest first; unknown prices last; then in stock, then stable names.
    stock_rank = {"high": 0, "normal": 1, "low": 2, "none": 3}
    rows.sort(
        key=lambda r: (
            r[2] is None,
            r[2] if r[2] is not None else 0.0,
            not r[0].available,
            stock_rank.get(r[0].inventory_state or "", 4),
            r[0].name,
            r[1] or "",
        )
    )
    overall = dict(aggregate or {})
    if not per_region:
        overall.update({p.id: p for p, _, _ in rows})
    somewhere = [overall.get(p.id) for p, _, _ in rows]
    here = [p if per_region else None for p, _, _ in rows]
    records = [
        (
            p.id,
            p.name,
            p.gpu_model,
            p.vram_gb,
            region,
            by_name.get((region or "").upper()),
            p.price,
            p.spot_price,
            p.price_for("monthly"),
            p.cpu_per_gpu,
            p.memory_per_gpu,
            p.disk_per_gpu,
            own.available if own else None,
            own.inventory_state if own else None,
            anywhere.available if anywhere else None,
            anywhere.inventory_state if anywhere else None,
            p.min_rootfs,
            p.max_rootfs,
            ", ".join(p.billing_methods),
        )
        for (p, region, _), own, anywhere in zip(rows, here, somewhere, strict=True)
    ]
    return frame_from_records(records, PRODUCT_COLUMNS, _PRODUCT_KINDS)


def regions_frame(
    clusters: Sequence[Cluster],
    products: Sequence[Product],
    listings: Mapping[str, Sequence[Product]] | None = None,
) -> pd.DataFrame:
    """One row per region (cluster): its GPU types, how many products it lists, and from
    ``listings`` (cluster id → that region's own ``clusterId`` listing) how many it has in
    stock and its cheapest GPU in stock. A region without its listing gets <NA> there and its
    cheapest LISTED GPU: the unfiltered listing's stock flag is an aggregate, never a region's."""
    rows: list[tuple[Any, ...]] = []
    for cluster in sorted(clusters, key=lambda c: c.name):
        own = None if listings is None else listings.get(cluster.id)
        if own is not None:
            here = list(own)
            ready = [p for p in here if p.available and p.price is not None]
            count: int | None = len([p for p in here if p.available])
        else:
            here = [p for p in products if cluster.name.upper() in {r.upper() for r in p.regions}]
            ready = [p for p in here if p.price is not None]
            count = None
        best = min(ready, key=lambda p: p.price or 0.0) if ready else None
        rows.append(
            (
                cluster.id,
                cluster.name,
                ", ".join(cluster.available_gpu_types),
                len(here),
                count,
                best.name if best else None,
                best.price if best else None,
                cluster.support_network_storage,
            )
        )
    return frame_from_records(rows, REGION_COLUMNS, _REGION_KINDS)


# -- instances -----------------------------------------------------------------------------


def cost_so_far(instance: Instance, now: datetime | None = None) -> float | None:
    """USD spent on the current (or last) run, an estimate: price × billed hours.

    Billing runs from ``pulling`` until stopped; the API gives lastStartedAt (else createdAt)
    and lastStoppedAt. None when the price is unknown.
    """
    return _run_cost(
        instance.price_per_hour,
        instance.status,
        instance.started_at or instance.created_at,
        instance.stopped_at,
        now or datetime.now(UTC),
    )


def _run_cost(
    price: float | None,
    status: str,
    start: datetime | None,
    stopped: datetime | None,
    now: datetime,
) -> float | None:
    """``cost_so_far`` from the fields it reads (``start``: started, else created)."""
    if price is None:
        return None
    if start is None:
        return 0.0
    if status in BILLED_STATUSES:
        end = now
    elif stopped is not None and stopped > start:
        end = stopped
    else:
        return 0.0
    return money.cost_so_far(price, start, end)


def instances_frame(instances: Sequence[Instance], now: datetime | None = None) -> pd.DataFrame:
    """One row per instance, newest first; status is an ordered categorical (lifecycle order,
    unknown strings last). Never includes a password."""
    names = (*LISTING_FIELDS, "price_per_hour")
    fields = [{name: getattr(i, name) for name in names} for i in instances]
    return listed_instances_frame(fields, now)


def listed_instances_frame(
    rows: Sequence[Mapping[str, Any]], now: datetime | None = None
) -> pd.DataFrame:
    """``instances_frame`` from each instance's fields by name (``parsing.LISTING_FIELDS``
    and ``price_per_hour``), so a listing needs no Instance objects. Built in bulk: one tuple
    per instance, each column converted once."""
    now = now or datetime.now(UTC)
    records = [
        (
            r["id"],
            r["name"],
            r["status"],
            phase_of(r["status"], r["status_error"]),
            r["region"],
            r["cluster_id"],
            r["product_name"],
            r["product_id"],
            r["gpu_num"],
            r["billing_mode"],
            r["image_url"],
            r["created_at"],
            r["started_at"],
            r["price_per_hour"],
            _run_cost(
                r["price_per_hour"],
                r["status"],
                r["started_at"] or r["created_at"],
                r["stopped_at"],
                now,
            ),
            r["ssh_command"],
            r["jupyter_url"],
            _error_text(r["status_error"]),
        )
        for r in _newest_first(rows)
    ]
    columns = columns_of(records, _INSTANCE_RECORDED, _INSTANCE_KINDS)
    now_naive = np.datetime64(micros(now), "us").astype("datetime64[ns]")
    columns["age"] = timedeltas(
        now_naive - np.asarray(columns["created_at"], dtype="datetime64[ns]")
    )
    return assemble(columns, INSTANCE_COLUMNS, len(records))


def _newest_first(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """By creation time then id, both descending (no time counts as the epoch). Two stable
    sorts, the one by time only when some row has one: listings rarely carry times."""
    ordered = sorted(rows, key=_ID, reverse=True)
    if any(row["created_at"] for row in ordered):
        ordered.sort(key=_created_seconds, reverse=True)
    return ordered


def _created_seconds(row: Mapping[str, Any]) -> float:
    created = row["created_at"]
    return created.timestamp() if created else 0.0


def _error_text(error: StatusError | None) -> str | None:
    """The error column: a failure's message, else its state; None when nothing failed."""
    return (error.message or error.state) if error is not None and error.is_failure else None


_ID = itemgetter("id")
# -- templates -----------------------------------------------------------------------------


def templates_frame(templates: Sequence[Template]) -> pd.DataFrame:
    """One row per template, by name."""
    ordered = sorted(templates, key=lambda t: (t.name.lower(), t.id))
    records = [
        (
            t.id,
            t.name,
            t.image,
            t.channel,
            t.type,
            t.rootfs_size,
            ", ".join(f"{port}/{kind}" for port, kind in t.flat_ports),
            t.min_cuda_version,
            t.created_at,
        )
        for t in ordered
    ]
    return frame_from_records(records, TEMPLATE_COLUMNS, _TEMPLATE_KINDS)
