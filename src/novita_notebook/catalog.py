"""The catalog: cached listings (products, clusters, templates) with a TTL, per-region stock
from ``clusterId`` listings fetched concurrently, the price index, and region lookup. Every
listing it hands out names regions by cluster name (``region_join``: by name, or learned from
the regions' own listings when the names are not the products' region labels).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cachetools import TTLCache

from .api import NovitaAPI
from .errors import NovitaError, ValidationError
from .models import Cluster, Instance, Product, Template
from .money import format_money
from .region_join import JOIN_NAME, RegionJoin, join_by_name, learn_join
from .validation import BILLING_METHODS, check_bool

logger = logging.getLogger(__name__)

__all__ = [
    "Catalog",
    "Selection",
    "REGION_TTL",
    "REGION_CONCURRENCY",
    "merge_entries",
    "estimated_columns",
]

T = TypeVar("T")

#: Seconds a region's ``clusterId`` listing stays fresh: long enough for a batch or a retry to
#: share it, short enough that stock (which moves by the minute) is not trusted for long.
REGION_TTL = 15.0
#: Region listings fetched at once. The API knows 8 clusters: one wave covers them all, so a
#: fallback over every region costs one round trip; the transport's own pool still bounds it.
REGION_CONCURRENCY = 8


def merge_entries(products: Iterable[Product]) -> list[Product]:
    """One entry per product id with every region, as the live unfiltered listing has it
    (undoes a split into per-region copies; first-seen order)."""
    merged: dict[str, Product] = {}
    for product in products:
        seen = merged.get(product.id)
        if seen is None:
            merged[product.id] = product
        else:
            regions = tuple(dict.fromkeys(seen.regions + product.regions))
            merged[product.id] = dataclasses.replace(seen, regions=regions)
    return list(merged.values())


def _method(billing: str | None) -> str | None:
    """``billingMethod`` to send: None for on demand (the API's default), else the method."""
    return None if billing in (None, "onDemand") else billing


@dataclasses.dataclass
class Selection:
    """What ``products()`` shows: the rows, whether their availability is each region's own
    (``per_region``), and the unfiltered entry of each product id (the aggregate)."""

    items: list[Product]
    per_region: bool
    aggregate: dict[str, Product]
    join: RegionJoin | None = None  # how the listing's region labels met the clusters


def _offers_in(product: Product, cluster: Cluster) -> bool:
    codes = {code.upper() for code in product.regions}
    return cluster.name.upper() in codes or cluster.id.upper() in codes


class Catalog:
    """What the API sells and where, read through one TTL cache (``ttl`` seconds; 0 = no
    cache). Concurrent callers missing the same key together make one call."""

    def __init__(self, api: NovitaAPI, ttl: float) -> None:
        self.api = api
        self._cache: TTLCache | None = TTLCache(maxsize=64, ttl=ttl) if ttl > 0 else None
        self._region_cache: TTLCache | None = (
            TTLCache(maxsize=256, ttl=min(ttl, REGION_TTL)) if ttl > 0 else None
        )
        self._lock = threading.Lock()
        self._fetch_locks: dict[Any, threading.Lock] = {}
        self._index_memo: tuple[Any, Any, dict[Any, Product]] | None = None
        self._join_memo: dict[tuple[str | None, int], tuple[Any, Any, RegionJoin]] = {}

    # -- the cache ---------------------------------------------------------------------------
    def cached(
        self, key: Any, load: Callable[[], T], refresh: bool = False, cache: Any = None
    ) -> T:
        """``load()`` through the TTL cache (or ``cache``); one loader per key at a time."""
        check_bool(refresh, "refresh")
        cache = self._cache if cache is None else cache
        if cache is None:
            return load()
        with self._lock:
            if not refresh and key in cache:
                return cache[key]
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:
            if not refresh:
                with self._lock:
                    if key in cache:
                        return cache[key]
            value = load()
            with self._lock:
                cache[key] = value
            return value

    def products(self, refresh: bool = False) -> list[Product]:
        """The unfiltered on-demand listing as the API layer parsed it (regions by cluster
        name). Its ``available`` is the API's aggregate ("offered somewhere with stock"),
        never one region's."""
        return self._joined(self._raw_listing(None, refresh))

    def _joined(self, products: list[Product], method: str | None = None) -> list[Product]:
        """``products`` (a cached unfiltered listing) with region labels as cluster names."""
        return self._join_of(products, method).translate(products)

    def region_join(self, refresh: bool = False, billing: str | None = None) -> RegionJoin:
        """How product region labels map to clusters: by name (a cluster's name is a label's
        code), else learned from the clusters' own ``clusterId`` listings (one call per
        cluster the names miss, the ones a create reads anyway). Worked out once per
        clusters and listing fetched; ``.method`` and ``.describe()`` say which was used."""
        method = _method(billing)
        return self._join_of(self._raw_listing(method, refresh), method, refresh)

    def _join_of(
        self, products: list[Product], method: str | None, refresh: bool = False
    ) -> RegionJoin:
        """The region join of one unfiltered listing (memoized per listing and clusters)."""
        clusters = self._clusters(refresh)
        key = (method, id(products))
        with self._lock:
            memo = self._join_memo.get(key)
        if memo is not None and memo[0] is clusters and memo[1] is products:
            return memo[2]
        names, missed = join_by_name(clusters, products)
        if not missed:
            join = RegionJoin(names, how={c.id: JOIN_NAME for c in clusters})
        else:
            raw = self._raw_regions([c.id for c in missed], method, None, refresh=False)
            join = learn_join(clusters, products, raw)
            logger.info("%s", join.describe(clusters))
        with self._lock:
            if len(self._join_memo) > 16:  # listings come and go with the cache
                self._join_memo.clear()
            self._join_memo[key] = (clusters, products, join)
        return join

    def _raw_listing(self, method: str | None, refresh: bool = False) -> list[Product]:
        key = "products" if method is None else ("products", method)
        return self.cached(key, lambda: self.api.products(billing_method=method), refresh)

    def listing(self, billing: str = "onDemand", refresh: bool = False) -> list[Product]:
        """The unfiltered listing for ``billing`` (``billingMethod`` sent for spot and monthly,
        so spot-only offers appear and prices are that method's): candidates and prices."""
        return merge_entries(
            self._joined(self._raw_listing(_method(billing), refresh), _method(billing))
        )

    def _raw_region(
        self, cluster_id: str, method: str | None, count: int | None, refresh: bool = False
    ) -> list[Product]:
        """A region's ``clusterId`` listing as the API gave it; kept ``REGION_TTL`` seconds."""

        def load() -> list[Product]:
            return self.api.products(cluster_id=cluster_id, billing_method=method, gpu_num=count)

        key = ("region", cluster_id, method, count)
        return self.cached(key, load, refresh, cache=self._region_cache)

    def _raw_regions(
        self, cluster_ids: Sequence[str], method: str | None, count: int | None, refresh: bool
    ) -> dict[str, list[Product] | NovitaError]:
        """Several regions' raw listings at once; a failed one maps to its error."""

        def one(cluster_id: str) -> list[Product] | NovitaError:
            try:
                return self._raw_region(cluster_id, method, count, refresh)
            except NovitaError as error:
                return error

        ids = list(dict.fromkeys(cluster_ids))
        if len(ids) <= 1:
            return {cluster_id: one(cluster_id) for cluster_id in ids}
        with ThreadPoolExecutor(max_workers=min(REGION_CONCURRENCY, len(ids))) as pool:
            return dict(zip(ids, pool.map(one, ids), strict=True))

    def region_listing(
        self, cluster_id: str, billing: str = "onDemand", gpu_num: int = 1, refresh: bool = False
    ) -> list[Product]:
        """One region's listing (``clusterId``): only its products, each id once, with ITS
        availability for ``gpu_num`` GPUs, labelled with that region (whatever the entries'
        ``regions`` hold: no duplicate rows, no other region's name); kept ``REGION_TTL`` s."""
        count = gpu_num if gpu_num > 1 else None
        raw = self._raw_region(cluster_id, _method(billing), count, refresh)
        return self._labelled(cluster_id, raw)

    def _labelled(self, cluster_id: str, raw: Sequence[Product]) -> list[Product]:
        try:
            cluster = next((c for c in self._clusters() if c.id == cluster_id), None)
        except NovitaError:  # labelled by id rather than lose the listing
            cluster = None
        region = (cluster.name if cluster is not None else cluster_id,)
        rows: dict[str, Product] = {}
        for product in raw:
            if product.id not in rows:
                rows[product.id] = dataclasses.replace(product, regions=region)
        return list(rows.values())

    def region_listings(
        self,
        cluster_ids: Sequence[str],
        billing: str = "onDemand",
        gpu_num: int = 1,
        refresh: bool = False,
    ) -> dict[str, list[Product] | NovitaError]:
        """Several regions' listings at once (at most ``REGION_CONCURRENCY`` in flight); a
        region whose listing failed maps to the error, so one bad answer spoils no other."""
        count = gpu_num if gpu_num > 1 else None
        raw = self._raw_regions(cluster_ids, _method(billing), count, refresh)
        return {
            cluster_id: value
            if isinstance(value, NovitaError)
            else self._labelled(cluster_id, value)
            for cluster_id, value in raw.items()
        }

    def prefetch(
        self, billing: str, cluster_ids: Sequence[str], gpu_num: int = 1
    ) -> threading.Thread:
        """Start the unfiltered listing and these regions' listings in the background, all at
        once, so a create's other reads (the name check) overlap them. Failures are left for
        the caller's own reads to meet again; a caller reading a key in flight waits for it."""

        def run() -> None:
            with ThreadPoolExecutor(max_workers=2) as pool:
                listing = pool.submit(self._raw_listing, _method(billing))
                self.region_listings(cluster_ids, billing, gpu_num)
                with contextlib.suppress(NovitaError):
                    listing.result()

        thread = threading.Thread(target=run, name="novita-catalog-prefetch", daemon=True)
        thread.start()
        return thread

    def products_for(self, gpu_num: int, refresh: bool = False) -> list[Product]:
        """The API's listing for ``gpu_num`` GPUs (its availability means "has that many")."""
        return self._joined(self._for_gpus(gpu_num, refresh))

    def _for_gpus(self, gpu_num: int, refresh: bool = False) -> list[Product]:
        return self.cached(
            ("products", gpu_num), lambda: self.api.products(gpu_num=gpu_num), refresh
        )

    def clusters(self, refresh: bool = False) -> list[Cluster]:
        return list(self._clusters(refresh))

    def _clusters(self, refresh: bool = False) -> list[Cluster]:
        """The cached cluster list itself (the same object until it is fetched again)."""
        return self.cached("clusters", self.api.clusters, refresh)

    def templates(self, refresh: bool = False) -> list[Template]:
        return list(self.cached("templates", self.api.templates, refresh))

    def clear(self) -> None:
        """Forget every cached listing (the next call fetches it)."""
        with self._lock:
            for cache in (self._cache, self._region_cache):
                if cache is not None:
                    cache.clear()

    def select(
        self,
        *,
        gpu: str | None = None,
        region: str | None = None,
        gpu_num: int | None = None,
        billing: str | None = None,
        max_price: float | None = None,
        available: bool | None = None,
        detail: bool = False,
        refresh: bool = False,
    ) -> Selection:
        """The products ``Novita.products()`` shows, from checked arguments: ``gpu`` loosely
        or as a product id, ``region`` by name or cluster id, ``max_price`` per GPU-hour at
        ``billing`` (default onDemand). With ``region``, ``detail`` or ``available`` the rows
        come from each region's own listing (its stock); otherwise from the unfiltered
        listing, whose availability is the aggregate and is labelled so."""
        from .frames import gpu_matches  # pandas: only when products are filtered

        method = _method(billing)
        count = gpu_num if gpu_num and gpu_num > 1 else None
        if count is not None and method is None:
            raw = self._for_gpus(count, refresh)
        else:
            raw = self._raw_listing(method, refresh)
        clusters = self.clusters(refresh)
        join = self._join_of(raw, method)
        items = merge_entries(join.translate(raw))
        if region is not None:
            cluster = self.find_region(region)
            clusters = [cluster]
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
        if max_price is not None:
            method_name = billing or "onDemand"
            items = [
                p
                for p in items
                if p.price_for(method_name) is not None
                and (p.price_for(method_name) or 0.0) <= max_price
            ]
        aggregate = {p.id: p for p in items}
        if not (region is not None or detail or available is not None):
            return Selection(items, False, aggregate, join)
        rows = self._region_rows(clusters, items, billing, gpu_num, refresh)
        if available is not None:
            rows = [p for p in rows if p.available is available]
        return Selection(rows, True, aggregate, join)

    def _region_rows(
        self,
        clusters: Sequence[Cluster],
        items: Sequence[Product],
        billing: str | None,
        gpu_num: int | None,
        refresh: bool,
    ) -> list[Product]:
        """``items`` as each region offering them lists them: with THAT region's stock."""
        wanted = {p.id for p in items}
        offering = [c.id for c in clusters if any(_offers_in(p, c) for p in items)]
        # Cached REGION_TTL seconds like a create's; refresh=True asks every region again.
        listings = self.region_listings(offering, billing or "onDemand", gpu_num or 1, refresh)
        rows: list[Product] = []
        for listing in listings.values():
            if isinstance(listing, NovitaError):
                raise listing
            rows.extend(p for p in listing if p.id in wanted)
        return rows

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
        raw = self._raw_listing(None)
        clusters = self.cached("clusters", self.api.clusters)
        join = self.region_join()
        memo = self._index_memo
        if memo is not None and memo[0] is raw and memo[1] is join:
            return memo[2]
        products = self._joined(raw)
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
        self._index_memo = (raw, join, index)
        return index

    def price_of(self, instance: Instance, index: dict[Any, Product] | None = None) -> float | None:
        """USD per hour of the whole instance (all GPUs) at its billing method, or None."""
        return self.listed_price(
            {
                "product_id": instance.product_id,
                "cluster_id": instance.cluster_id,
                "region": instance.region,
                "billing_mode": instance.billing_mode,
                "gpu_num": instance.gpu_num,
            },
            index,
        )

    def listed_price(
        self, fields: Mapping[str, Any], index: dict[Any, Product] | None = None
    ) -> float | None:
        """``price_of`` from an instance's fields by name (``models.listing_fields``)."""
        product_id = fields["product_id"]
        if not product_id:
            return None
        index = self.price_index() if index is None else index
        product = (
            index.get((product_id, fields["cluster_id"]))
            or index.get((product_id, (fields["region"] or "").upper()))
            or index.get((product_id, None))
        )
        if product is None:
            return None
        billing = fields["billing_mode"]
        if billing not in BILLING_METHODS:
            billing = "onDemand"
        price = product.price_for(billing) or (product.price if billing != "spot" else None)
        if price is None:
            return None
        return price * (fields["gpu_num"] or 1)


def estimated_columns(billing: str | None, gpu_num: int | None) -> list[str]:
    """The price columns of a products frame that rest on a guess (money.ESTIMATED_PRICES):
    the monthly price always, every price of a listing for several GPUs."""
    if gpu_num is not None and gpu_num > 1:
        return ["price_per_hour", "spot_per_hour", "monthly_per_hour"]
    return ["monthly_per_hour"]


def cheapest_by_model(products: Iterable[Product]) -> str:
    """``"RTX 4090 ($0.33/h), L40S ($0.79/h)"``: each available GPU model from its cheapest
    on-demand price, cheapest first (for "no such GPU" messages)."""
    best: dict[str, float] = {}
    for product in products:
        if product.available and product.price is not None and product.gpu_model:
            best[product.gpu_model] = min(best.get(product.gpu_model, product.price), product.price)
    ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))
    return ", ".join(f"{model} ({format_money(price, per_hour=True)})" for model, price in ranked)
