"""The catalog and the account as DataFrames: ``products``, ``regions``, ``instances`` and
``templates`` with their filters checked by the option grammars, read from the catalog's cached
listings and the API, built in bulk by frames.py (pandas is loaded only here, when asked).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .api import NovitaAPI
from .catalog import Catalog, estimated_columns
from .errors import NovitaError
from .ledger import Ledger
from .money import price_is_estimate
from .options import CREATE
from .parsing import listing_fields, phase_of
from .validation import check_bool, check_statuses, parse_channels, require_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Listings"]

logger = logging.getLogger("novita_notebook")


def _frames() -> ModuleType:
    """frames.py imports pandas (slow): load it only when a DataFrame is asked for."""
    from . import frames

    return frames


class Listings:
    """The DataFrames of one client; see the ``Novita`` methods of the same names."""

    def __init__(self, api: NovitaAPI, catalog: Catalog, ledger: Ledger) -> None:
        self.api = api
        self.catalog = catalog
        self.ledger = ledger

    def products(
        self,
        gpu: Any,
        region: Any,
        gpu_num: Any,
        billing: Any,
        max_price: Any,
        available: Any,
        refresh: Any,
        detail: Any,
    ) -> pd.DataFrame:
        filters = CREATE.parse(
            dict(gpu=gpu, region=region, gpu_num=gpu_num, billing=billing, max_price=max_price)
        )
        if available is not None:
            check_bool(available, "available")
        check_bool(refresh, "refresh")
        check_bool(detail, "detail")
        selection = self.catalog.select(
            **filters, available=available, detail=detail, refresh=refresh
        )
        clusters = self.catalog.clusters()
        frame = _frames().products_frame(
            selection.items,
            clusters,
            billing=filters["billing"],
            per_region=selection.per_region,
            aggregate=selection.aggregate,
        )
        if selection.join is not None:
            frame.attrs["region_join"] = selection.join.describe(clusters)
        frame.attrs["estimated"] = estimated_columns(filters["billing"], filters["gpu_num"])
        return frame

    def regions(self, refresh: Any, detail: Any) -> pd.DataFrame:
        check_bool(refresh, "refresh")
        check_bool(detail, "detail")
        clusters = self.catalog.clusters(refresh)
        products = self.catalog.listing("onDemand", refresh)
        listings = None
        if detail:
            fetched = self.catalog.region_listings([c.id for c in clusters], refresh=refresh)
            for value in fetched.values():
                if isinstance(value, NovitaError):
                    raise value
            listings = {key: value for key, value in fetched.items() if isinstance(value, list)}
        frame = _frames().regions_frame(clusters, products, listings)
        frame.attrs["region_join"] = self.catalog.region_join().describe(clusters)
        return frame

    def instances(self, status: str | Iterable[str] | None, refresh: Any) -> pd.DataFrame:
        wanted = check_statuses(status)
        check_bool(refresh, "refresh")
        if refresh:
            self.catalog.products(refresh=True)
            self.catalog.clusters(refresh=True)
        rows = self._listed()
        if wanted is not None:
            rows = [
                r
                for r in rows
                if r["status"] in wanted or phase_of(r["status"], r["status_error"]) in wanted
            ]
        frame = _frames().listed_instances_frame(rows, datetime.now(UTC))
        if any(price_is_estimate(r["billing_mode"], r["gpu_num"]) for r in rows):
            frame.attrs["estimated"] = ["price_per_hour", "cost_so_far"]  # money.ESTIMATED_PRICES
        return frame

    def templates(self, name: Any, type: Any, channel: Any, refresh: Any) -> pd.DataFrame:  # noqa: A002
        name = require_text(name, "name")
        type = require_text(type, "type")  # noqa: A001 - the API's word
        channel = parse_channels(channel)
        check_bool(refresh, "refresh")
        if name is None and type is None and channel is None:
            items = self.catalog.templates(refresh)
        else:
            items = self.api.templates(name=name, type=type, channel=channel)
        return _frames().templates_frame(items)

    def _listed(self) -> list[dict[str, Any]]:
        """Every instance as the list view gives it (parsing.listing_fields, no Instance
        made), priced from the catalog and with the creation time the ledger recorded."""
        rows = [listing_fields(raw) for raw in self.api.list_instances()]
        try:
            index = self.catalog.price_index()
        except NovitaError as exc:
            logger.debug("instances without prices: %s", type(exc).__name__)
            index = {}
        try:
            recorded = self.ledger.created_times()
        except Exception as exc:  # noqa: BLE001 - a broken ledger must not break listings
            logger.debug("ledger unavailable for creation times: %s", type(exc).__name__)
            recorded = {}
        for row in rows:
            row["price_per_hour"] = self.catalog.listed_price(row, index)
            if row["created_at"] is None:
                # The list view carries no timestamps; instances made here have one on record.
                row["created_at"] = recorded.get(row["id"])
        return rows
