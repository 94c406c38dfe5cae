"""Doctor checks of regions: how clusters join the products' region labels (by name, else
through each cluster's own ``clusterId`` listing, as the client does), and whether such a
listing keeps only its own region, with that region's stock. Linear in the catalog's size.
"""

from __future__ import annotations

from typing import Any

from .context import Context, describe, items, plural
from .report import DIFFERS, OK, UNVERIFIED

Labels = dict[str, tuple[str, set[str]]]  # label code (upper) -> (a full label, product ids)


def _code(label: str) -> str:
    return label.strip().split(" ", 1)[0].upper()


def label_index(products: list[dict[str, Any]]) -> Labels:
    """Every region label of the unfiltered listing by its code, built in one pass."""
    index: Labels = {}
    for product in products:
        regions = product.get("regions")
        for label in regions if isinstance(regions, list) else ():
            if isinstance(label, str) and label.strip():
                entry = index.setdefault(_code(label), (label, set()))
                entry[1].add(str(product.get("id")))
    return index


def check_regions(
    ctx: Context, clusters: list[dict[str, Any]], products: list[dict[str, Any]]
) -> None:
    """Lines ``region join`` and ``clusterId filter``."""
    labels = label_index(products)
    if not clusters or not labels:
        ctx.add("region join", UNVERIFIED, "no clusters or no region labels listed to join")
        ctx.add("clusterId filter", UNVERIFIED, "no region to ask for")
        return
    joined: dict[str, str] = {}  # cluster id -> label
    listings: dict[str, list[dict[str, Any]]] = {}
    missed = []
    for cluster in clusters:
        name, cid = str(cluster.get("name") or ""), str(cluster.get("id") or "")
        hit = next((k for k in (name.upper(), cid.upper()) if k and k in labels), None)
        if hit is None:
            missed.append(cluster)
        else:
            joined[cid] = labels[hit][0]
    learned, lost = [], []
    for cluster in missed:
        cid = str(cluster.get("id") or "")
        reply = ctx.get("/products", {"clusterId": cid})
        if reply.status != 200:
            lost.append(f"{cluster.get('name')!r} ({describe(reply)})")
            continue
        listings[cid] = items(reply.data, "data")
        taken = set(joined.values())
        free = {code for code, (label, _) in labels.items() if label not in taken}
        code = _learned_code(listings[cid], labels, free)
        if code is None:
            learned.append(f"{cluster.get('name')!r} by its products")
        else:
            joined[cid] = labels[code][0]
            learned.append(f"{cluster.get('name')!r} = {labels[code][0]!r}")
    _join_line(ctx, len(clusters), missed, learned, lost)
    _filter_line(ctx, clusters, products, joined, listings)


def _learned_code(listing: list[dict[str, Any]], labels: Labels, free: set[str]) -> str | None:
    """The unclaimed label a region's listing stands for: the one every entry lists, else
    the one whose products are exactly the listing's."""
    if not listing:
        return None
    shared = set(free)
    for product in listing:
        regions = product.get("regions")
        shared &= (
            {_code(r) for r in regions if isinstance(r, str)}
            if isinstance(regions, list)
            else set()
        )
    if len(shared) == 1:
        return shared.pop()
    ids = {str(p.get("id")) for p in listing}
    exact = [code for code in (shared or free) if labels[code][1] == ids]
    return exact[0] if len(exact) == 1 else None


def _join_line(
    ctx: Context, total: int, missed: list[dict[str, Any]], learned: list[str], lost: list[str]
) -> None:
    if not missed:
        ctx.add("region join", OK, f"all {plural(total, 'cluster')}' names are region label codes")
        return
    detail = (
        f"{len(missed)} of {plural(total, 'cluster')}' names are no products' region label code "
        "(the client joins those by id, one clusterId listing each)"
    )
    if learned:
        detail += f"; joined through their own listing: {', '.join(learned)}"
    if lost:
        detail += f"; not joinable: {', '.join(lost)}"
    ctx.add("region join", DIFFERS, detail)


def _filter_line(
    ctx: Context,
    clusters: list[dict[str, Any]],
    products: list[dict[str, Any]],
    joined: dict[str, str],
    listings: dict[str, list[dict[str, Any]]],
) -> None:
    chosen = next((c for c in clusters if str(c.get("id")) in joined), None)
    if chosen is None:
        ctx.add("clusterId filter", UNVERIFIED, "no cluster could be joined to a region label")
        return
    cluster_id = str(chosen.get("id"))
    label = joined[cluster_id]
    listed = listings.get(cluster_id)
    if listed is None:
        reply = ctx.get("/products", {"clusterId": cluster_id})
        if reply.status != 200:
            ctx.add(
                "clusterId filter", DIFFERS, f"clusterId={cluster_id} answered {describe(reply)}"
            )
            return
        listed = items(reply.data, "data")
    elsewhere = sum(1 for p in listed if set(p.get("regions") or [label]) != {label})
    offered_here = sum(1 for p in products if label in (p.get("regions") or []))
    if elsewhere:
        ctx.add(
            "clusterId filter",
            DIFFERS,
            f"clusterId={cluster_id}: {elsewhere} of {len(listed)} entries list other regions "
            f"than {label!r} (the client labels each row with the region it asked about)",
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
