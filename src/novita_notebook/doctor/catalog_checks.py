"""Doctor checks of the catalog: one entry per product id with its regions, the ``clusterId``
and ``billingMethod`` filters, and the shapes ``spotPrice`` comes in.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .context import Context, describe, items, plural
from .report import DIFFERS, OK, UNKNOWN

_DIGITS = re.compile(r"^\d+$")
ASSUMED_SPOT_SHAPES = frozenset({"digit string", "null", "absent"})


def check_catalog(ctx: Context, clusters: list[dict[str, Any]]) -> None:
    """Lines ``catalog shape``, ``clusterId filter``, ``billingMethod`` and ``spotPrice``."""
    reply = ctx.get("/products")
    if reply.status != 200:
        ctx.add("catalog shape", DIFFERS, f"GET /products answered {describe(reply)}")
        return
    products = items(reply.data, "data")
    _catalog_shape(ctx, products)
    _cluster_filter(ctx, products, clusters)
    spot = ctx.get("/products", {"billingMethod": "spot"})
    spot_products = items(spot.data, "data") if spot.status == 200 else []
    _billing_filter(ctx, products, spot_products, spot.status, describe(spot))
    _spot_price(ctx, products + spot_products)


def _catalog_shape(ctx: Context, products: list[dict[str, Any]]) -> None:
    ids = [str(p.get("id")) for p in products]
    unique = len(set(ids))
    without_regions = sum(1 for p in products if not isinstance(p.get("regions"), list))
    several = sum(1 for p in products if len(p.get("regions") or []) >= 2)
    if not products:
        ctx.add("catalog shape", UNKNOWN, "GET /products listed nothing; run again later")
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


def _region_label_of(cluster: dict[str, Any], products: list[dict[str, Any]]) -> str | None:
    """The ``"CODE (City)"`` label products use for ``cluster`` (labels start with its name)."""
    name = str(cluster.get("name") or "")
    for product in products:
        for label in product.get("regions") or []:
            if isinstance(label, str) and name and label.split(" (")[0] == name:
                return label
    return None


def _cluster_filter(
    ctx: Context, products: list[dict[str, Any]], clusters: list[dict[str, Any]]
) -> None:
    chosen = next(
        ((c, label) for c in clusters if (label := _region_label_of(c, products)) is not None),
        None,
    )
    if chosen is None:
        ctx.add("clusterId filter", UNKNOWN, "no cluster's name matches a product region label")
        return
    cluster, label = chosen
    cluster_id = str(cluster.get("id"))
    reply = ctx.get("/products", {"clusterId": cluster_id})
    if reply.status != 200:
        ctx.add("clusterId filter", DIFFERS, f"clusterId={cluster_id} answered {describe(reply)}")
        return
    listed = items(reply.data, "data")
    elsewhere = sum(1 for p in listed if set(p.get("regions") or [label]) != {label})
    offered_here = sum(1 for p in products if label in (p.get("regions") or []))
    if elsewhere:
        ctx.add(
            "clusterId filter",
            DIFFERS,
            f"clusterId={cluster_id}: {elsewhere} of {len(listed)} entries list other regions "
            f"than {label!r} (one region's availability cannot be read this way)",
        )
    elif len(listed) != offered_here:
        ctx.add(
            "clusterId filter",
            DIFFERS,
            f"clusterId={cluster_id}: {len(listed)} products, but {offered_here} of the "
            f"unfiltered listing name {label!r}",
        )
    else:
        ctx.add(
            "clusterId filter",
            OK,
            f"clusterId={cluster_id}: {len(listed)} of {len(products)} products, all in {label!r}",
        )


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
        ctx.add("billingMethod", UNKNOWN, "billingMethod=spot listed nothing (no spot offers now)")
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
        ctx.add("spotPrice", UNKNOWN, "no products listed to look at")
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
