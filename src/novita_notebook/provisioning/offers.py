"""Offers: which products match a GPU, how each region's offers are judged and ranked
(cheapest first), the order regions are tried in, and what else could be created instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CapacityError, NovitaError, ValidationError
from ..frames import gpu_matches
from ..models import Cluster, Product
from ..money import format_money
from .report import (
    BILLING_LABELS,
    OUTCOME_NO_PRODUCT,
    OUTCOME_OVER_PRICE,
    OUTCOME_ROOTFS,
    OUTCOME_UNAVAILABLE,
)

#: Regions tried first (lower first); every other cluster the API lists follows in API order.
DEFAULT_REGION_PRIORITY: dict[str, int] = {"AS-SGP-02": 1, "CN-HK-01": 2, "AS-IN-01": 3}


def capacity_failure(error: NovitaError) -> bool:
    """True when the API refused a create for lack of stock (try the next offer)."""
    return isinstance(error, CapacityError) or error.reason in (
        "INSUFFICIENT_RESOURCE",
        "MIGRATE_INSUFFICIENT_RESOURCE",
    )


def _compact(text: str) -> str:
    return "".join(re.findall(r"[a-z0-9]+", text.lower()))


def match_gpu(products: Iterable[Product], gpu: str | None) -> list[Product]:
    """Products whose id or name matches ``gpu`` the way ``Novita.products(gpu=)`` does:
    ``"4090"``, ``"rtx 4090"``, ``"RTX 4090 24GB"`` or a product id; ``"L4"`` does not match
    ``"L40S"``. When an exact model and a longer one both match, the exact model wins."""
    products = list(products)
    if not gpu:
        return products
    by_id = [p for p in products if p.id == gpu]
    if by_id:
        return by_id
    matches = [p for p in products if gpu_matches(gpu, p.name, p.gpu_model)]
    exact = [
        p
        for p in matches
        if _compact(p.gpu_model) == _compact(gpu) or _compact(p.name) == _compact(gpu)
    ]
    return exact or matches


def _in_region(product: Product, cluster: Cluster) -> bool:
    codes = {code.upper() for code in product.regions}
    return cluster.name.upper() in codes or cluster.id.upper() in codes


def _offers_billing(product: Product, billing: str) -> bool:
    if product.billing_methods and billing not in product.billing_methods:
        return False
    return product.price_for(billing) is not None


def _rank_key(product: Product, billing: str) -> tuple[Any, ...]:
    """Cheapest first; ties: more memory per GPU, more CPU per GPU, then id."""
    return (
        product.price_for(billing),
        -(product.memory_per_gpu or 0),
        -(product.cpu_per_gpu or 0),
        product.id,
    )


def _names(products: Iterable[Product]) -> str:
    return ", ".join(dict.fromkeys(p.name for p in products))


@dataclass
class RegionVerdict:
    """The offers of one region that may be tried (ranked), or why none may."""

    cluster: Cluster
    candidates: list[Product]
    outcome: str | None = None
    detail: str | None = None


def judge_region(
    cluster: Cluster,
    matches: Sequence[Product],
    *,
    gpu: str | None,
    billing: str,
    max_price: float | None,
    rootfs_gb: int | None,
) -> RegionVerdict:
    """Filter the matching products of one region: billing, rootfs, stock, then max_price."""
    what = gpu or "GPU"
    here = [p for p in matches if _in_region(p, cluster)]
    if not here:
        return RegionVerdict(cluster, [], OUTCOME_NO_PRODUCT, f"no such product: no {what} here")
    billed = [p for p in here if _offers_billing(p, billing)]
    if not billed:
        label = BILLING_LABELS.get(billing, billing)
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_NO_PRODUCT,
            f"no such product: no {label} billing for {_names(here)}",
        )
    sized = [
        p for p in billed if rootfs_gb is None or not p.max_rootfs or rootfs_gb <= p.max_rootfs
    ]
    if not sized:
        largest = max(p.max_rootfs or 0 for p in billed)
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_ROOTFS,
            f"rootfs too large: {_names(billed)} allows at most {largest} GB, asked {rootfs_gb} GB",
        )
    available = [p for p in sized if p.available]
    if not available:
        return RegionVerdict(cluster, [], OUTCOME_UNAVAILABLE, f"out of stock: {_names(sized)}")
    affordable = [
        p for p in available if max_price is None or (p.price_for(billing) or 0) <= max_price + 1e-9
    ]
    if not affordable:
        cheapest = min(available, key=lambda p: _rank_key(p, billing))
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_OVER_PRICE,
            f"over max_price: {cheapest.name} at "
            f"{format_money(cheapest.price_for(billing))}/GPU-h > {format_money(max_price)}/GPU-h",
        )
    return RegionVerdict(cluster, sorted(affordable, key=lambda p: _rank_key(p, billing)))


def order_regions(
    clusters: Sequence[Cluster],
    *,
    region: str | None = None,
    regions: Sequence[str] | Mapping[str, int] | None = None,
) -> list[Cluster]:
    """The clusters to try, in order. Default: AS-SGP-02, CN-HK-01, AS-IN-01, then the others
    as the API lists them. ``regions`` (names or ids; a list in order, or {name: priority})
    replaces that list entirely; ``region`` goes first in any case."""
    known = list(clusters)

    def find(key: Any, field: str) -> Cluster:
        text = str(key).strip().upper()
        for cluster in known:
            if text in (cluster.name.upper(), cluster.id.upper()):
                return cluster
        names = ", ".join(c.name for c in known)
        raise ValidationError(
            f"{field}: unknown region {key!r}; the API knows {names}", field=field
        )

    if regions is not None:
        if isinstance(regions, str):
            regions = [r for r in regions.split(",") if r.strip()]
        if isinstance(regions, Mapping):
            for key, priority in regions.items():
                if isinstance(priority, bool) or not isinstance(priority, int | float):
                    raise ValidationError(
                        f"regions: priority of {key!r} must be a number, got {priority!r}",
                        field="regions",
                    )
            keys = [k for k, _ in sorted(regions.items(), key=lambda item: item[1])]
        else:
            keys = list(regions)
        if not keys:
            raise ValidationError("regions: must name at least one region", field="regions")
        ordered = [find(key, "regions") for key in keys]
    else:
        position = {c.name: i for i, c in enumerate(known)}
        ordered = sorted(
            known,
            key=lambda c: (
                DEFAULT_REGION_PRIORITY.get(c.name, len(DEFAULT_REGION_PRIORITY) + 1),
                position[c.name],
            ),
        )
    if region is not None:
        first = find(region, "region")
        ordered = [first] + [c for c in ordered if c.id != first.id]
    unique: list[Cluster] = []
    for cluster in ordered:
        if all(cluster.id != seen.id for seen in unique):
            unique.append(cluster)
    return unique


def find_alternatives(
    products: Sequence[Product],
    *,
    gpu: str | None,
    billing: str,
    tried: Sequence[Cluster],
    limit: int = 5,
) -> list[dict[str, Any]]:
    """What could be created right now instead: the same GPU in other regions or with another
    billing method first, then other GPU models closest in VRAM; cheapest offer of each."""
    matched_ids = {p.id for p in match_gpu(products, gpu)} if gpu else set()
    wanted_vram = [p.vram_gb for p in products if p.id in matched_ids and p.vram_gb]
    target_vram = wanted_vram[0] if wanted_vram else None
    options: dict[tuple[str, str], dict[str, Any]] = {}
    for product in products:
        if not product.available:
            continue
        region = product.regions[0] if product.regions else ""
        for method in ("onDemand", "spot", "monthly"):
            if not _offers_billing(product, method):
                continue
            same_gpu = product.id in matched_ids
            in_tried = any(_in_region(product, c) for c in tried)
            if same_gpu and method == billing and in_tried:
                continue  # that is exactly what just failed
            if same_gpu and method == billing:
                closeness = 0.0
            elif same_gpu:
                closeness = 1.0
            else:
                distance = abs((product.vram_gb or 0) - target_vram) if target_vram else 0
                closeness = 2.0 + distance / 1000.0 + (0 if method == billing else 0.5)
            price = product.price_for(method)
            key = (product.name, method)
            option = {
                "gpu": product.name,
                "product_id": product.id,
                "region": region,
                "billing": method,
                "price_per_gpu_hour": price,
                "_rank": (closeness, price),
            }
            if key not in options or option["_rank"] < options[key]["_rank"]:
                options[key] = option
    ranked = sorted(options.values(), key=lambda o: o["_rank"])[:limit]
    for option in ranked:
        option.pop("_rank")
    return ranked


def describe_alternatives(alternatives: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{a['gpu']} {BILLING_LABELS.get(a['billing'], a['billing'])} in {a['region']} "
        f"({format_money(a['price_per_gpu_hour'])}/GPU-h)"
        for a in alternatives
    )


def unknown_gpu_error(gpu: str, products: Sequence[Product], billing: str) -> ValidationError:
    cheapest: dict[str, float] = {}
    for product in products:
        price = product.price_for(billing) or product.price
        if product.available and price is not None:
            cheapest[product.name] = min(price, cheapest.get(product.name, price))
    ranked = sorted(cheapest.items(), key=lambda item: item[1])
    listing = (
        ", ".join(f"{name} ({format_money(price, per_hour=True)})" for name, price in ranked)
        or "nothing"
    )
    hint = None
    models = sorted({p.gpu_model for p in products if p.name in cheapest and p.gpu_model})
    close = difflib.get_close_matches(gpu.upper(), models, n=1, cutoff=0.0)
    if close:
        hint = f'Try gpu="{close[0]}" or see Novita.products().'
    return ValidationError(
        f'gpu: no product matches "{gpu}". Available now: {listing}.', field="gpu", hint=hint
    )
