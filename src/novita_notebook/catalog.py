"""The catalog: cached listings (products, clusters, templates) with a TTL, the price index
that prices instances, and region lookup by name or cluster id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from cachetools import TTLCache

from .api import NovitaAPI
from .errors import ValidationError
from .models import Cluster, Instance, Product, Template
from .money import format_money
from .validation import BILLING_METHODS, check_bool

__all__ = ["Catalog"]

T = TypeVar("T")


class Catalog:
    """What the API sells and where, read through one TTL cache (``ttl`` seconds; 0 = no
    cache). Concurrent callers missing the same key together make one call."""

    def __init__(self, api: NovitaAPI, ttl: float) -> None:
        self.api = api
        self._cache: TTLCache | None = TTLCache(maxsize=64, ttl=ttl) if ttl > 0 else None
        self._lock = threading.Lock()
        self._fetch_locks: dict[Any, threading.Lock] = {}
        self._index_memo: tuple[Any, Any, dict[Any, Product]] | None = None

    # -- the cache ---------------------------------------------------------------------------
    def cached(self, key: Any, load: Callable[[], T], refresh: bool = False) -> T:
        """``load()`` through the TTL cache; one loader per key at a time."""
        check_bool(refresh, "refresh")
        if self._cache is None:
            return load()
        with self._lock:
            if not refresh and key in self._cache:
                return self._cache[key]
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:
            if not refresh:
                with self._lock:
                    if key in self._cache:
                        return self._cache[key]
            value = load()
            with self._lock:
                self._cache[key] = value
            return value

    def products(self, refresh: bool = False) -> list[Product]:
        """The full GPU product listing (all regions, one entry per product × region)."""
        return list(self.cached("products", self.api.products, refresh))

    def products_for(self, gpu_num: int, refresh: bool = False) -> list[Product]:
        """The API's listing for ``gpu_num`` GPUs (its availability means "has that many")."""
        return list(
            self.cached(("products", gpu_num), lambda: self.api.products(gpu_num=gpu_num), refresh)
        )

    def clusters(self, refresh: bool = False) -> list[Cluster]:
        return list(self.cached("clusters", self.api.clusters, refresh))

    def templates(self, refresh: bool = False) -> list[Template]:
        return list(self.cached("templates", self.api.templates, refresh))

    def clear(self) -> None:
        """Forget every cached listing (the next call fetches it)."""
        if self._cache is not None:
            with self._lock:
                self._cache.clear()

    def select(
        self,
        *,
        gpu: str | None = None,
        region: str | None = None,
        gpu_num: int | None = None,
        billing: str | None = None,
        max_price: float | None = None,
        available: bool | None = None,
        refresh: bool = False,
    ) -> list[Product]:
        """The products ``Novita.products()`` shows, from checked arguments: ``gpu`` loosely
        or as a product id, ``region`` by name or cluster id, ``max_price`` per GPU-hour at
        ``billing`` (default onDemand)."""
        from .frames import gpu_matches  # pandas: only when products are filtered

        items = self.products(refresh) if gpu_num is None else self.products_for(gpu_num, refresh)
        self.clusters(refresh)
        if region is not None:
            cluster = self.find_region(region)
            items = [p for p in items if cluster.name.upper() in {r.upper() for r in p.regions}]
        if gpu is not None:
            matching = [p for p in items if p.id.lower() == gpu.lower()]  # a product id
            if not matching:
                matching = [p for p in items if gpu_matches(gpu, p.name, p.gpu_model)]
            if not matching:
                raise ValidationError(
                    f"no product matches gpu={gpu!r}"
                    + (f" in {region}" if region else "")
                    + f". Available now: {cheapest_by_model(items) or 'nothing'}",
                    field="gpu",
                    hint='Try a model number such as gpu="4090", or see Novita.products().',
                )
            items = matching
        if billing is not None:
            items = [p for p in items if not p.billing_methods or billing in p.billing_methods]
        if available is not None:
            items = [p for p in items if p.available is available]
        if max_price is not None:
            method = billing or "onDemand"
            items = [
                p
                for p in items
                if p.price_for(method) is not None and (p.price_for(method) or 0.0) <= max_price
            ]
        return items

    # -- regions -------------------------------------------------------------------------------
    def find_region(self, region: str, field: str = "region") -> Cluster:
        """The cluster named ``region`` or with that cluster id (case-insensitive)."""
        clusters = self.clusters()
        wanted = region.strip().upper()
        for cluster in clusters:
            if wanted in (cluster.id.upper(), cluster.name.upper()):
                return cluster
        known = ", ".join(f"{c.name} ({c.id})" for c in sorted(clusters, key=lambda c: c.name))
        raise ValidationError(
            f"unknown region {region!r}; known regions: {known or 'none listed'}", field=field
        )

    # -- prices --------------------------------------------------------------------------------
    def price_index(self) -> dict[Any, Product]:
        """(product_id, REGION NAME) and (product_id, cluster id) → Product, memoized per
        listing; (product_id, None) when a product costs the same everywhere."""
        products = self.cached("products", self.api.products)
        clusters = self.cached("clusters", self.api.clusters)
        memo = self._index_memo
        if memo is not None and memo[0] is products and memo[1] is clusters:
            return memo[2]
        id_of = {c.name.upper(): c.id for c in clusters}
        index: dict[Any, Product] = {}
        by_product: dict[str, list[Product]] = {}
        for product in products:
            by_product.setdefault(product.id, []).append(product)
            for region in product.regions:
                index[(product.id, region.upper())] = product
                if region.upper() in id_of:
                    index[(product.id, id_of[region.upper()])] = product
        for product_id, entries in by_product.items():
            if len({p.price for p in entries}) == 1:
                index[(product_id, None)] = entries[0]
        self._index_memo = (products, clusters, index)
        return index

    def price_of(self, instance: Instance, index: dict[Any, Product] | None = None) -> float | None:
        """USD per hour of the whole instance (all GPUs) at its billing method, or None."""
        if not instance.product_id:
            return None
        index = self.price_index() if index is None else index
        product = (
            index.get((instance.product_id, instance.cluster_id))
            or index.get((instance.product_id, (instance.region or "").upper()))
            or index.get((instance.product_id, None))
        )
        if product is None:
            return None
        billing = instance.billing_mode if instance.billing_mode in BILLING_METHODS else "onDemand"
        price = product.price_for(billing) or (product.price if billing != "spot" else None)
        if price is None:
            return None
        return price * (instance.gpu_num or 1)


def cheapest_by_model(products: Iterable[Product]) -> str:
    """``"RTX 4090 ($0.33/h), L40S ($0.79/h)"``: each available GPU model from its cheapest
    on-demand price, cheapest first (for "no such GPU" messages)."""
    best: dict[str, float] = {}
    for product in products:
        if product.available and product.price is not None and product.gpu_model:
            best[product.gpu_model] = min(best.get(product.gpu_model, product.price), product.price)
    ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))
    return ", ".join(f"{model} ({format_money(price, per_hour=True)})" for model, price in ranked)
