"""Doctor checks of the catalog: one entry per product id with its regions, the region join and
``clusterId`` filter (region_checks), the ``billingMethod`` filter, the shapes ``spotPrice``
comes in, and whether prices stay per GPU in a listing for several GPUs.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .context import Context, describe, items, plural
from .region_checks import check_regions
from .report import DIFFERS, OK, UNVERIFIED

_DIGITS = re.compile(r"^\d+$")
ASSUMED_SPOT_SHAPES = frozenset({"digit string", "null", "absent"})


def check_catalog(ctx: Context, clusters: list[dict[str, Any]]) -> None:
    """Lines ``catalog shape``, ``region join``, ``clusterId filter``, ``billingMethod``,
    ``spotPrice`` and ``gpuNum prices``."""
    reply = ctx.get("/products")
    if reply.status != 200:
        ctx.add("catalog shape", DIFFERS, f"GET /products answered {describe(reply)}")
        return
    products = items(reply.data, "data")
    _catalog_shape(ctx, products)
    check_regions(ctx, clusters, products)
    spot = ctx.get("/products", {"billingMethod": "spot"})
    spot_products = items(spot.data, "data") if spot.status == 200 else []
    _billing_filter(ctx, products, spot_products, spot.status, describe(spot))
    _spot_price(ctx, products + spot_products)
    _gpu_num_prices(ctx, products)


def _gpu_num_prices(ctx: Context, products: list[dict[str, Any]]) -> None:
    """Line ``gpuNum prices``: the listing for 2 GPUs keeps each product's per-GPU price."""
    reply = ctx.get("/products", {"gpuNum": 2})
    if reply.status != 200:
        ctx.add("gpuNum prices", DIFFERS, f"gpuNum=2 answered {describe(reply)}")
        return
    single = {str(p.get("id")): p.get("price") for p in products}
    pairs = [
        (_number(single[pid]), _number(p.get("price")))
        for p in items(reply.data, "data")
        if (pid := str(p.get("id"))) in single
    ]
    pairs = [(one, two) for one, two in pairs if one and two is not None]
    if not pairs:
        ctx.add("gpuNum prices", UNVERIFIED, "gpuNum=2 listed no product priced in both listings")
        return
    doubled = sum(1 for one, two in pairs if abs(two - 2 * one) < 1e-6 * one + 0.5)
    changed = sum(1 for one, two in pairs if abs(two - one) >= 1e-6 * one + 0.5)
    if doubled == len(pairs):
        ctx.add(
            "gpuNum prices",
            DIFFERS,
            f"gpuNum=2 lists {len(pairs)} prices doubled: prices are per instance there, not "
            "per GPU (prices for several GPUs are shown as estimates)",
        )
    elif changed:
        ctx.add(
            "gpuNum prices",
            DIFFERS,
            f"gpuNum=2 changes {changed} of {len(pairs)} prices (assumed per GPU, unchanged)",
        )
    else:
        ctx.add("gpuNum prices", OK, f"gpuNum=2 keeps all {len(pairs)} prices per GPU")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _catalog_shape(ctx: Context, products: list[dict[str, Any]]) -> None:
    ids = [str(p.get("id")) for p in products]
    unique = len(set(ids))
    without_regions = sum(1 for p in products if not isinstance(p.get("regions"), list))
    several = sum(1 for p in products if len(p.get("regions") or []) >= 2)
    if not products:
        ctx.add("catalog shape", UNVERIFIED, "GET /products listed nothing; run again later")
    elif unique < len(ids):
        ctx.add(
            "catalog shape",
            DIFFERS,
            f"{len(ids)} entries for {unique} product ids: one entry per product and cluster, "
            "not one per id with a regions list",
        )
    elif without_regions:
        ctx.add(
            "catalog shape",
            DIFFERS,
            f"{without_regions} of {len(ids)} products have no regions list",
        )
    else:
        many = f"{several} in several regions" if several else "each in one region"
        ctx.add("catalog shape", OK, f"{plural(unique, 'product id')} listed once each, {many}")


def _billing_filter(
    ctx: Context,
    products: list[dict[str, Any]],
    spot_products: list[dict[str, Any]],
    status: int,
    answer: str,
) -> None:
    if status != 200:
        ctx.add("billingMethod", DIFFERS, f"billingMethod=spot answered {answer}")
        return
    declared = [p for p in spot_products if isinstance(p.get("billingMethods"), list)]
    without_spot = sum(1 for p in declared if "spot" not in p["billingMethods"])
    if without_spot:
        ctx.add(
            "billingMethod",
            DIFFERS,
            f"billingMethod=spot listed {without_spot} of {len(spot_products)} products whose "
            "billingMethods lack spot (the filter looks ignored)",
        )
    elif not spot_products:
        ctx.add(
            "billingMethod", UNVERIFIED, "billingMethod=spot listed nothing (no spot offers now)"
        )
    else:
        ctx.add(
            "billingMethod",
            OK,
            f"billingMethod=spot: {len(spot_products)} of {len(products)} products, all offer spot",
        )


def spot_shape(product: dict[str, Any]) -> str:
    if "spotPrice" not in product:
        return "absent"
    value = product["spotPrice"]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        if value == "":
            return '""'
        return "digit string" if _DIGITS.match(value) else "other string"
    return type(value).__name__


def _spot_price(ctx: Context, products: list[dict[str, Any]]) -> None:
    shapes = Counter(spot_shape(p) for p in products)
    if not shapes:
        ctx.add("spotPrice", UNVERIFIED, "no products listed to look at")
        return
    detail = ", ".join(f"{shape} x{count}" for shape, count in shapes.most_common())
    odd = set(shapes) - ASSUMED_SPOT_SHAPES
    if odd:
        ctx.add(
            "spotPrice",
            DIFFERS,
            f"{detail}; assumed only digit strings, null or absent (the client parses the rest)",
        )
    else:
        ctx.add("spotPrice", OK, detail)
