"""Novita: the facade users hold. Composes the core client (config, transport, endpoints,
DataFrames, caches, lifecycle) with the provisioning, watching and ledger mixins.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from cachetools import TTLCache

from .api import NovitaAPI
from .config import Config, load_config
from .errors import NotFoundError, NovitaError, ValidationError
from .http import RateLimiter, Transport
from .ledger import LedgerMixin
from .models import (
    GONE_STATUSES,
    PHASES,
    STATUS_ORDER,
    Cluster,
    Instance,
    Product,
    Template,
    parse_time,
)
from .provision import ProvisioningMixin
from .validation import (
    BILLING_METHODS,
    Problems,
    check_bool,
    check_gpu_num,
    normalise_billing,
    port_dicts,
    require_max_price,
    require_text,
)
from .watch import WatchMixin

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .ledger import Ledger

__all__ = ["Novita"]

logger = logging.getLogger("novita_notebook")

T = TypeVar("T")


def _frames() -> ModuleType:
    """frames.py imports pandas (slow): load it only when a DataFrame is asked for."""
    from . import frames

    return frames


class Novita(ProvisioningMixin, WatchMixin, LedgerMixin):
    """The client: ``Novita()`` reads NOVITA_API_KEY (arguments, then environment, then .env).

    Catalog and instances as DataFrames (``products()``, ``regions()``, ``instances()``,
    ``templates()``), single instances (``instance()``), lifecycle by id or exact name
    (``start``, ``stop``, ``restart``, ``delete``, ``edit``), and through the mixins creation,
    waiting, watching and the local ledger. ``Novita.sandbox()`` runs an offline cloud.
    Use as a context manager or call ``close()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        budget_per_hour: float | None = None,
        default_region: str | None = None,
        poll_interval: float | None = None,
        max_concurrency: int = 8,
        timeout: float | tuple[float, float] = (5, 30),
        max_retries: int = 4,
        cache_ttl: float = 300,
        rate_limit_per_second: float | None = None,
        env_file: str | bool | None = None,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 60.0,
        breaker_threshold: int = 5,
        breaker_reset_timeout: float = 30.0,
    ) -> None:
        config, key = load_config(
            api_key,
            api_url,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            budget_per_hour=budget_per_hour,
            default_region=default_region,
            poll_interval=poll_interval,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            cache_ttl=cache_ttl,
            rate_limit_per_second=rate_limit_per_second,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            breaker_threshold=breaker_threshold,
            breaker_reset_timeout=breaker_reset_timeout,
            env_file=env_file,
        )
        self.config: Config = config
        self.max_concurrency: int = config.max_concurrency
        self.rate_limiter: RateLimiter | None = (
            RateLimiter(config.rate_limit_per_second) if config.rate_limit_per_second else None
        )
        self.transport = Transport(
            config.api_url,
            key,
            timeout=config.timeout,
            max_retries=config.max_retries,
            max_concurrency=config.max_concurrency,
            rate_limiter=self.rate_limiter,
            retry_backoff=config.retry_backoff,
            retry_backoff_max=config.retry_backoff_max,
            breaker_threshold=config.breaker_threshold,
            breaker_reset_timeout=config.breaker_reset_timeout,
        )
        del key  # from here on the raw key lives only in the transport
        self.api = NovitaAPI(self.transport)
        self.sandbox_server: Any = None
        self._cache: TTLCache | None = (
            TTLCache(maxsize=64, ttl=config.cache_ttl) if config.cache_ttl > 0 else None
        )
        self._cache_lock = threading.Lock()
        self._fetch_locks: dict[Any, threading.Lock] = {}
        self._price_index_memo: tuple[Any, Any, dict[Any, Product]] | None = None
        self._ledger: Ledger | None = None
        self._ledger_lock = threading.Lock()
        self._closed = False
        super().__init__()

    # -- construction helpers ----------------------------------------------------------------
    @classmethod
    def sandbox(cls, speed: float = 1.0, seed: int | None = 0, **client_kwargs: Any) -> Novita:
        """Start an in-process sandbox cloud and return a client bound to it.

        ``close()`` (or leaving a ``with`` block) stops the sandbox; it is kept as
        ``client.sandbox_server`` (``.url``, ``.set_faults(...)``, ``.requests()``...).
        """
        for name in ("api_key", "api_url"):
            if name in client_kwargs:
                raise ValidationError(
                    f"{name} cannot be given to Novita.sandbox(); the sandbox provides it",
                    field=name,
                )
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise ValidationError(
                f"speed must be a number > 0 (1 = real time, 60 = a minute per second), "
                f"got {speed!r}",
                field="speed",
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValidationError(f"seed must be an integer, got {seed!r}", field="seed")
        from .sandbox import Sandbox  # lazy: the sandbox is only needed offline

        server = Sandbox(speed=speed, seed=0 if seed is None else seed)
        server.start()
        try:
            client = cls(api_key=server.api_key, api_url=server.url, **client_kwargs)
        except BaseException:
            server.stop()
            raise
        client.sandbox_server = server
        return client

    @property
    def ledger(self) -> Ledger:
        """The local ledger of instances created through this package (built on first use)."""
        if self._ledger is None:
            with self._ledger_lock:
                if self._ledger is None:
                    from .ledger import Ledger  # written concurrently; keep the import late

                    self._ledger = Ledger(api_url=self.config.api_url)
        return self._ledger

    @property
    def requests_made(self) -> int:
        """HTTP requests this client has sent (every retry counts)."""
        return self.api.requests_made

    def close(self) -> None:
        """Release connections (and stop the sandbox this client started). Idempotent."""
        if self._closed:
            return
        self._closed = True
        parent_close = getattr(super(), "close", None)
        try:
            if callable(parent_close):
                parent_close()  # mixins may own watchers or senders
        finally:
            self.transport.close()
            if self.sandbox_server is not None:
                self.sandbox_server.stop()

    def __enter__(self) -> Novita:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = " (sandbox)" if self.sandbox_server is not None else ""
        return f"<Novita {self.config.api_url}{where} key={self.config.masked_key}>"

    # -- caches ------------------------------------------------------------------------------
    def _cached(self, key: Any, load: Callable[[], T], refresh: bool) -> T:
        """``load()`` through the TTL cache; one loader per key at a time, so concurrent
        callers missing together make one call."""
        check_bool(refresh, "refresh")
        if self._cache is None:
            return load()
        with self._cache_lock:
            if not refresh and key in self._cache:
                return self._cache[key]
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:
            if not refresh:
                with self._cache_lock:
                    if key in self._cache:
                        return self._cache[key]
            value = load()
            with self._cache_lock:
                self._cache[key] = value
            return value

    def cached_products(self, refresh: bool = False) -> list[Product]:
        """The full GPU product listing (all regions, one entry per product × region)."""
        return list(self._cached("products", self.api.products, refresh))

    def cached_clusters(self, refresh: bool = False) -> list[Cluster]:
        return list(self._cached("clusters", self.api.clusters, refresh))

    def cached_templates(self, refresh: bool = False) -> list[Template]:
        return list(self._cached("templates", self.api.templates, refresh))

    def clear_cache(self) -> None:
        """Forget cached products, clusters and templates (the next call fetches them)."""
        if self._cache is not None:
            with self._cache_lock:
                self._cache.clear()

    # -- regions and prices --------------------------------------------------------------------
    def _find_region(self, region: str, clusters: list[Cluster]) -> Cluster:
        wanted = region.strip().upper()
        for cluster in clusters:
            if wanted in (cluster.id.upper(), cluster.name.upper()):
                return cluster
        known = ", ".join(f"{c.name} ({c.id})" for c in sorted(clusters, key=lambda c: c.name))
        raise ValidationError(
            f"unknown region {region!r}; known regions: {known or 'none listed'}", field="region"
        )

    def _price_index(self) -> dict[Any, Product]:
        """(product_id, REGION NAME) and (product_id, cluster id) → Product, memoized per
        catalog listing."""
        products = self._cached("products", self.api.products, False)
        clusters = self._cached("clusters", self.api.clusters, False)
        memo = self._price_index_memo
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
                index[(product_id, None)] = entries[0]  # same price everywhere: region moot
        self._price_index_memo = (products, clusters, index)
        return index

    def _price_of(self, instance: Instance, index: dict[Any, Product]) -> float | None:
        if not instance.product_id:
            return None
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

    def to_instance(self, raw: dict[str, Any]) -> Instance:
        """Parse a raw API instance, fill ``price_per_hour`` from the catalog and bind it."""
        if not isinstance(raw, dict):
            raise ValidationError("raw must be the API's instance dict", field="raw")
        instance = Instance.from_api(raw, client=self)
        try:
            index = self._price_index()
        except NovitaError as exc:
            # The price is decoration: an unreachable catalog must not hide the instance.
            logger.debug("no price for %s: %s", instance.id, type(exc).__name__)
            return instance
        instance.price_per_hour = self._price_of(instance, index)
        return instance

    # -- single instances ------------------------------------------------------------------
    def resolve(self, id_or_name: str) -> Instance:
        """The instance with this exact id, else the one live instance with this exact name."""
        ref = require_text(id_or_name, "id_or_name", optional=False)
        assert ref is not None
        try:
            return self.to_instance(self.api.get_instance(ref))
        except NotFoundError:
            pass
        except ValidationError as exc:
            if exc.status is None:  # our own argument check, not the API's answer
                raise
        matches = [
            raw
            for raw in self.api.list_instances(name=ref)
            if raw.get("name") == ref and raw.get("status") not in GONE_STATUSES
        ]
        if not matches:
            raise NotFoundError(
                f"no instance has the id or name {ref!r}",
                hint="client.instances() lists them (names are matched exactly).",
            )
        if len(matches) > 1:
            ids = ", ".join(str(raw.get("id")) for raw in matches)
            raise ValidationError(
                f"{len(matches)} live instances are named {ref!r} (ids: {ids}); pass an id",
                field="id_or_name",
            )
        return self.to_instance(self.api.get_instance(str(matches[0].get("id"))))

    def instance(self, id_or_name: str) -> Instance:
        """A fresh Instance (by id or exact name), price filled, bound to this client."""
        return self.resolve(id_or_name)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, id_or_name: str) -> Instance:
        """Start a stopped instance; returns it refreshed (typically ``toStart``)."""
        target = self.resolve(id_or_name)
        self.api.start_instance(target.id)
        return self.instance(target.id)

    def stop(self, id_or_name: str) -> Instance:
        """Stop an instance (billing stops once exited); returns it refreshed."""
        target = self.resolve(id_or_name)
        self.api.stop_instance(target.id)
        return self.instance(target.id)

    def restart(self, id_or_name: str) -> Instance:
        target = self.resolve(id_or_name)
        self.api.restart_instance(target.id)
        return self.instance(target.id)

    def delete(self, id_or_name: str) -> Instance | None:
        """Delete an instance; returns it refreshed, or None once the API forgot it."""
        target = self.resolve(id_or_name)
        self.api.delete_instance(target.id)
        try:
            self.ledger.forget(target.id)
        except (OSError, NovitaError) as exc:  # the delete itself succeeded
            logger.warning("could not update the ledger for %s: %s", target.id, exc)
        try:
            return self.instance(target.id)
        except NotFoundError:
            return None

    def edit(
        self,
        id_or_name: str,
        ports: Iterable[Any] | None = None,
        expand_root_disk_gb: int | None = None,
    ) -> Instance:
        """Add ports (``8080``, ``"8080/http"``, ``(8080, "http")`` or dicts) and/or grow the
        root disk by ``expand_root_disk_gb`` GB, without a restart; returns it refreshed."""
        require_text(id_or_name, "id_or_name", optional=False)
        port_list = None if ports is None else port_dicts(ports)
        if expand_root_disk_gb is not None and (
            isinstance(expand_root_disk_gb, bool)
            or not isinstance(expand_root_disk_gb, int)
            or expand_root_disk_gb < 1
        ):
            raise ValidationError(
                f"expand_root_disk_gb must be a positive integer (GB), got {expand_root_disk_gb!r}",
                field="expand_root_disk_gb",
            )
        if not port_list and expand_root_disk_gb is None:
            raise ValidationError(
                "nothing to edit: give ports=[...] and/or expand_root_disk_gb=N", field="ports"
            )
        target = self.resolve(id_or_name)
        self.api.edit_instance(target.id, ports=port_list, expand_root_disk=expand_root_disk_gb)
        return self.instance(target.id)

    # -- DataFrames --------------------------------------------------------------------------
    def products(
        self,
        gpu: str | None = None,
        region: str | None = None,
        gpu_num: int | None = None,
        billing: str | None = None,
        max_price: float | None = None,
        available: bool | None = None,
        refresh: bool = False,
    ) -> pd.DataFrame:
        """GPU products, one row per product × region, cheapest first.

        ``gpu`` matches loosely (``"4090"``, ``"rtx 4090"``, ``"RTX 4090 24GB"``) or is a
        product id; ``region``
        is a region name or id; ``billing`` (onDemand, spot, monthly) keeps products sold that
        way and sorts/filters by that price; ``max_price`` is USD per GPU-hour; ``gpu_num``
        asks the API which products can serve that many GPUs.
        """
        gpu = require_text(gpu, "gpu")
        region = require_text(region, "region")
        if gpu_num is not None:
            problems = Problems()
            check_gpu_num(gpu_num, problems)
            problems.raise_if_any()
        billing = normalise_billing(billing)
        max_price = require_max_price(max_price)
        if available is not None:
            check_bool(available, "available")
        check_bool(refresh, "refresh")

        if gpu_num is None:
            items = self.cached_products(refresh)
        else:
            items = list(
                self._cached(
                    ("products", gpu_num), lambda: self.api.products(gpu_num=gpu_num), refresh
                )
            )
        clusters = self.cached_clusters(refresh)
        if region is not None:
            cluster = self._find_region(region, clusters)
            items = [p for p in items if cluster.name.upper() in {r.upper() for r in p.regions}]
        if gpu is not None:
            matching = [p for p in items if p.id.lower() == gpu.lower()]  # a product id
            if not matching:
                matching = [p for p in items if _frames().gpu_matches(gpu, p.name, p.gpu_model)]
            if not matching:
                raise ValidationError(
                    f"no product matches gpu={gpu!r}"
                    + (f" in {region}" if region else "")
                    + f". Available now: {_cheapest_by_model(items) or 'nothing'}",
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
        return _frames().products_frame(items, clusters, billing=billing)

    def regions(self, refresh: bool = False) -> pd.DataFrame:
        """Regions (clusters) with their GPU types, product counts and cheapest available GPU."""
        check_bool(refresh, "refresh")
        return _frames().regions_frame(self.cached_clusters(refresh), self.cached_products(refresh))

    def instances(
        self, status: str | Iterable[str] | None = None, refresh: bool = False
    ) -> pd.DataFrame:
        """Every instance (all pages), newest first. ``status``: statuses and/or phases to keep
        (``"running"``, ``["exited", "failed"]``). ``refresh`` also reloads the price catalog."""
        wanted = _check_statuses(status)
        check_bool(refresh, "refresh")
        if refresh:
            self.cached_products(refresh=True)
            self.cached_clusters(refresh=True)
        raws = self.api.list_instances()
        instances = [Instance.from_api(raw, client=self) for raw in raws]
        try:
            index = self._price_index()
        except NovitaError as exc:
            logger.debug("instances without prices: %s", type(exc).__name__)
            index = {}
        recorded = self._ledger_created_times()
        for inst in instances:
            inst.price_per_hour = self._price_of(inst, index)
            if inst.created_at is None:
                # The list view carries no timestamps; instances made here have one on record.
                inst.created_at = recorded.get(inst.id)
        if wanted is not None:
            instances = [i for i in instances if i.status in wanted or i.phase in wanted]
        return _frames().instances_frame(instances, datetime.now(UTC))

    def _ledger_created_times(self) -> dict[str, datetime]:
        """Creation times the ledger recorded, by instance id ({} if the ledger is unreadable)."""
        try:
            entries = self.ledger.entries()
        except Exception as exc:  # noqa: BLE001 - a broken ledger must not break listings
            logger.debug("ledger unavailable for creation times: %s", type(exc).__name__)
            return {}
        times = {}
        for entry in entries:
            created = parse_time(entry.get("created_at"))
            if created is not None:
                times[str(entry.get("id"))] = created
        return times

    def templates(
        self,
        name: str | None = None,
        type: str | None = None,  # noqa: A002 - the API's word
        channel: str | Iterable[str] | None = None,
        refresh: bool = False,
    ) -> pd.DataFrame:
        """Templates as a DataFrame (all pages); without filters from the cache."""
        require_text(name, "name")
        require_text(type, "type")
        check_bool(refresh, "refresh")
        if name is None and type is None and channel is None:
            items = self.cached_templates(refresh)
        else:
            items = self.api.templates(name=name, type=type, channel=channel)
        return _frames().templates_frame(items)


def _cheapest_by_model(products: Iterable[Product]) -> str:
    """``"RTX 4090 ($0.33/h), L40S ($0.79/h)"``: each available GPU model from its cheapest
    on-demand price, cheapest first (for "no such GPU" messages)."""
    best: dict[str, float] = {}
    for product in products:
        if product.available and product.price is not None and product.gpu_model:
            best[product.gpu_model] = min(best.get(product.gpu_model, product.price), product.price)
    ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))
    return ", ".join(f"{model} (${price:.2f}/h)" for model, price in ranked)


def _check_statuses(status: str | Iterable[str] | None) -> set[str] | None:
    if status is None:
        return None
    values = [status] if isinstance(status, str) else status
    try:
        wanted = set(values)
    except TypeError:
        raise ValidationError(
            f"status must be a status, a phase or a list of them, got {status!r}", field="status"
        ) from None
    allowed = set(STATUS_ORDER) | set(PHASES)
    for value in wanted:
        if not isinstance(value, str) or value not in allowed:
            raise ValidationError(
                f"status {value!r} is not a status or phase; allowed: "
                f"{', '.join(STATUS_ORDER)}; phases: {', '.join(PHASES)}",
                field="status",
            )
    return wanted
