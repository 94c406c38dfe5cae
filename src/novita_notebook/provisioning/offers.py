"""Offers: which products match a GPU, how each region's offers are judged (listing, then the
region's own stock) and ordered by the policy, and what else could be created instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CapacityError, NovitaError, ValidationError
from ..models import Cluster, Product
from ..money import format_money
from ..parsing import gpu_matches
from ..validation import match_region, region_keys
from .report import (
    BILLING_LABELS,
    OUTCOME_NO_PRODUCT,
    OUTCOME_OVER_PRICE,
    OUTCOME_ROOTFS,
    OUTCOME_UNAVAILABLE,
    SIGNAL_CREATE,
    SIGNAL_REGION,
)

#: Offer-ordering policies of create(prefer=...); "price" is the default.
PREFER = ("price", "region")

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
    in_stock: bool = False  # the region's own listing said so (else only create will tell)


@dataclass(frozen=True)
class Offer:
    """One product in one region, to be created on; ``signal`` says what vouched for its
    stock (the region's listing, or nothing yet: the create will tell)."""

    cluster: Cluster
    product: Product
    signal: str


def judge_region(
    cluster: Cluster,
    matches: Sequence[Product],
    *,
    gpu: str | None,
    billing: str,
    max_price: float | None,
    rootfs_gb: int | None,
) -> RegionVerdict:
    """Filter the matching products of one region from the unfiltered listing: offered,
    billing, rootfs, then max_price. Stock is the region listing's answer (judge_stock)."""
    what = gpu or "GPU"
    here = [p for p in matches if _in_region(p, cluster)]
    if not here:
        return RegionVerdict(cluster, [], OUTCOME_NO_PRODUCT, f"not offered: no {what} here")
    billed = [p for p in here if _offers_billing(p, billing)]
    if not billed:
        label = BILLING_LABELS.get(billing, billing)
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_NO_PRODUCT,
            f"not offered: no {label} billing for {_names(here)}",
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
    affordable = [
        p for p in sized if max_price is None or (p.price_for(billing) or 0) <= max_price + 1e-9
    ]
    if not affordable:
        cheapest = min(sized, key=lambda p: _rank_key(p, billing))
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_OVER_PRICE,
            f"over max_price: {cheapest.name} at "
            f"{format_money(cheapest.price_for(billing))}/GPU-h > {format_money(max_price)}/GPU-h",
        )
    return RegionVerdict(cluster, sorted(affordable, key=lambda p: _rank_key(p, billing)))


def judge_stock(
    verdict: RegionVerdict, listing: Sequence[Product] | Exception | None
) -> RegionVerdict:
    """Keep the candidates the region's own listing has in stock. Without that listing (it
    failed) the candidates stand unverified: the create answers INSUFFICIENT_RESOURCE if not."""
    if not verdict.candidates or listing is None or isinstance(listing, Exception):
        return verdict
    stock = {p.id: p for p in listing}
    offered = [p for p in verdict.candidates if p.id in stock]
    if not offered:
        return RegionVerdict(
            verdict.cluster,
            [],
            OUTCOME_NO_PRODUCT,
            f"not offered: the region's listing has no {_names(verdict.candidates)}",
        )
    ready = [p for p in offered if stock[p.id].available]
    if not ready:
        return RegionVerdict(
            verdict.cluster,
            [],
            OUTCOME_UNAVAILABLE,
            f"region listing: none in stock ({_names(offered)})",
        )
    return RegionVerdict(verdict.cluster, ready, in_stock=True)


def order_offers(verdicts: Sequence[RegionVerdict], prefer: str, billing: str) -> list[Offer]:
    """Every offer to try, in the policy's order. ``"price"``: cheapest per GPU-hour first
    across regions (ties: the regions' order, then more memory and CPU). ``"region"``: the
    regions' order, cheapest first within each. Offers vouched for by a region listing come
    before unverified ones of the same price."""
    offers: list[tuple[Any, Offer]] = []
    for position, verdict in enumerate(verdicts):
        signal = SIGNAL_REGION if verdict.in_stock else SIGNAL_CREATE
        for product in verdict.candidates:
            rank = _rank_key(product, billing)
            key = (
                (rank[0], not verdict.in_stock, position, rank)
                if prefer == "price"
                else (position, rank)
            )
            offers.append((key, Offer(verdict.cluster, product, signal)))
    offers.sort(key=lambda item: item[0])
    return [offer for _, offer in offers]


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
    keys = region_keys(regions)
    if keys is not None:
        ordered = [match_region(known, key, "regions") for key in keys]
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
        first = match_region(known, region, "region")
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
        region = "/".join(product.regions)
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
