"""Models → pandas DataFrames with real dtypes (float prices, aware UTC datetimes, ordered
categorical statuses, string ids), each column built in bulk; cost estimates used by them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

try:  # the documented low-level constructor (pandas >= 3.0)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pragma: no cover - older pandas
    _from_blocks = None

from . import money
from .models import (
    BILLED_STATUSES,
    STATUS_ORDER,
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


def _frame_from_records(
    records: Sequence[tuple[Any, ...]], names: Sequence[str], kinds: Mapping[str, str]
) -> pd.DataFrame:
    """A frame from row tuples: transposed at C speed, each column converted once to its
    dtype in ``kinds`` (string, float64, Int64, boolean, int64, bool, status, utc)."""
    return _assemble(_columns(records, names, kinds), names, len(records))


def _columns(
    records: Sequence[tuple[Any, ...]], names: Sequence[str], kinds: Mapping[str, str]
) -> dict[str, Any]:
    values = list(zip(*records, strict=True)) if records else [()] * len(names)
    return {
        name: _CONVERTERS[kinds[name]](column) for name, column in zip(names, values, strict=True)
    }


def status_categories(statuses: Iterable[str]) -> list[str]:
    """STATUS_ORDER followed by any unknown status strings (sorted), for an ordered categorical."""
    known = set(STATUS_ORDER)
    extra = sorted({s for s in statuses if s and s not in known})
    return [*STATUS_ORDER, *extra]


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
    return _frame_from_records(records, PRODUCT_COLUMNS, _PRODUCT_KINDS)


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
    return _frame_from_records(rows, REGION_COLUMNS, _REGION_KINDS)


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
    and ``price_per_hour``), so a listing needs no Instance objects. Built in bulk: one tuple per instance, each column converted once."""
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
    columns = _columns(records, _INSTANCE_RECORDED, _INSTANCE_KINDS)
    now_naive = np.datetime64(_micros(now), "us").astype("datetime64[ns]")
    columns["age"] = _timedeltas(
        now_naive - np.asarray(columns["created_at"], dtype="datetime64[ns]")
    )
    return _assemble(columns, INSTANCE_COLUMNS, len(records))


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
_STRING_ARRAY = pd.StringDtype().construct_array_type()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min
_STATUS_DTYPE = pd.CategoricalDtype(list(STATUS_ORDER), ordered=True)
_STATUS_CODES = {status: index for index, status in enumerate(STATUS_ORDER)}
_DATETIME_ARRAY = pd.arrays.DatetimeArray
_TIMEDELTA_ARRAY = pd.arrays.TimedeltaArray
_UTC_NS = pd.DatetimeTZDtype("ns", UTC)


def _bulk_strings(values: Sequence[Any]) -> Any:
    """A ``string`` array in one conversion (None → <NA>), as ``pd.Series(dtype="string")``.
    A column of nothing but None (no ssh, no jupyter, no error: most of a listing) is a copy
    of one made before, a twentieth of converting it."""
    if values and values.count(None) == len(values):
        missing = _MISSING_STRINGS.get(len(values))
        if missing is None:
            if len(_MISSING_STRINGS) > 16:
                _MISSING_STRINGS.clear()
            missing = _MISSING_STRINGS[len(values)] = _STRING_ARRAY._from_sequence(
                values, dtype=pd.StringDtype()
            )
        return missing.copy()
    return _STRING_ARRAY._from_sequence(values, dtype=pd.StringDtype())


_MISSING_STRINGS: dict[int, Any] = {}


def _bulk_categories(statuses: Sequence[str]) -> pd.Categorical:
    """The ordered status categorical from codes (a dict lookup each, no value inference)."""
    categories = status_categories(statuses)
    if len(categories) == len(STATUS_ORDER):
        code, dtype = _STATUS_CODES, _STATUS_DTYPE
    else:
        code = {status: index for index, status in enumerate(categories)}
        dtype = pd.CategoricalDtype(categories, ordered=True)
    codes = np.fromiter((code.get(s, -1) for s in statuses), dtype=np.int16, count=len(statuses))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _bulk_ints(values: Sequence[Any]) -> Any:
    """An ``Int64`` array (None → <NA>), built from a value array and a mask when every value
    is an int or None (what the parse gives), else by pandas' own conversion."""
    count = len(values)
    if all(type(v) is int or v is None for v in values):
        try:
            data = np.fromiter((0 if v is None else v for v in values), np.int64, count)
        except OverflowError:
            return pd.array(values, dtype="Int64")
        mask = np.fromiter((v is None for v in values), bool, count)
        return pd.arrays.IntegerArray(data, mask)
    return pd.array(values, dtype="Int64")


def _bulk_floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype="float64")


def _micros(value: datetime) -> int:
    if value.tzinfo is None:  # naive times are UTC, as pd.to_datetime(utc=True) reads them
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


def _assemble(columns: Mapping[str, Any], names: Sequence[str], length: int) -> pd.DataFrame:
    """The frame from ready-made column arrays (each already ``length`` long and of its final
    dtype), handed to pandas as its blocks (numpy columns of one dtype stacked into one, as
    pandas consolidates them), so nothing is re-checked or re-inferred: that was most of
    building a small frame. Falls back to ``_from_arrays``, then to the public constructor,
    on a pandas without the block API."""
    arrays = [columns[name] for name in names]
    labels = _column_index(tuple(names))
    if _from_blocks is not None:
        blocks: list[tuple[Any, np.ndarray]] = []
        stacked: dict[np.dtype, list[int]] = {}
        for position, array in enumerate(arrays):
            if isinstance(array, np.ndarray):
                stacked.setdefault(array.dtype, []).append(position)
            else:
                blocks.append((array, np.array([position], dtype=np.intp)))
        for positions in stacked.values():
            block = np.vstack([arrays[position] for position in positions])
            blocks.append((block, np.array(positions, dtype=np.intp)))
        return _from_blocks(blocks, pd.RangeIndex(length), labels)
    try:  # pragma: no cover - pandas before 3.0
        return pd.DataFrame._from_arrays(
            arrays, columns=labels, index=pd.RangeIndex(length), verify_integrity=False
        )
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the fast path
        return pd.DataFrame(dict(zip(names, arrays, strict=True)), copy=False)


_COLUMN_INDEXES: dict[tuple[str, ...], pd.Index] = {}


def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The columns Index of a frame: made once per set of names (inferring its dtype was a
    tenth of a small frame), handed out as a copy so that renaming one frame's columns never
    reaches another."""
    index = _COLUMN_INDEXES.get(names)
    if index is None:
        index = _COLUMN_INDEXES[names] = pd.Index(names)
    return index.copy()


def _naive_times(values: Sequence[datetime | None]) -> np.ndarray:
    """UTC wall times as naive ``datetime64[ns]`` (NaT for None), exact to the microsecond."""
    micros = np.fromiter(
        (_NAT if v is None else _micros(v) for v in values), dtype=np.int64, count=len(values)
    )
    return micros.view("datetime64[us]").astype("datetime64[ns]")


def _utc_times(naive: np.ndarray) -> Any:
    """Naive UTC ``datetime64[ns]`` wall times → an aware UTC array, without a copy (they
    already are the UTC instants); as ``DatetimeIndex(naive).tz_localize(UTC).array``."""
    try:
        return _DATETIME_ARRAY._simple_new(naive, dtype=_UTC_NS)
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the fast path
        return pd.DatetimeIndex(naive).tz_localize(UTC).array


def _timedeltas(values: np.ndarray) -> Any:
    """``timedelta64[ns]`` values (NaT where unknown) as pandas' array of them, without the
    re-validation a plain numpy column gets when the frame is assembled."""
    try:
        return _TIMEDELTA_ARRAY._simple_new(values, dtype=values.dtype)
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the fast path
        return values


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
    return _frame_from_records(records, TEMPLATE_COLUMNS, _TEMPLATE_KINDS)


_CONVERTERS: dict[str, Any] = {
    "string": _bulk_strings,
    "float64": _bulk_floats,
    "Int64": _bulk_ints,
    "boolean": lambda values: pd.array(values, dtype="boolean"),
    "int64": lambda values: np.array(values, dtype=np.int64),
    "bool": lambda values: np.array(values, dtype=bool),
    "status": _bulk_categories,
    "utc": lambda values: _utc_times(_naive_times(values)),
}
