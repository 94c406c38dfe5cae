"""Network storage endpoints of the sandbox (list, create → bare string id, update, delete) and
the check that an instance's ``networkStorages`` exist and live in its cluster.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import catalog
from .validate import ApiError, check_object, get_str, invalid, page_window, query_str
from .world import World

Query = dict[str, list[str]]
MIN_STORAGE_GB = 10
MAX_STORAGE_GB = 10_240
#: $0.002 per GB-day (docs), as an hourly figure in the API's 1/100000 USD unit per GB.
PRICE_PER_GB_HOUR = 0.002 / 24 * catalog.PRICE_UNIT


def storage_price(size_gb: int, unit: str = "hour") -> str:
    """Price of a volume, a digit string in 1/100000 USD (rounded up): per hour, or per
    month (730 h) with the ``storagePrice="month"`` switch."""
    hours = 730 if unit == "month" else 1
    return str(math.ceil(size_gb * PRICE_PER_GB_HOUR * hours))


def _size(body: dict[str, Any], required: bool) -> int | None:
    """``storageSize``: an integer; a digit string (the docs' update example) is accepted."""
    value = body.get("storageSize")
    if value is None:
        if required:
            raise invalid("storageSize", "is required")
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("storageSize", "must be an integer (GB)")
    if value < MIN_STORAGE_GB:
        raise invalid("storageSize", f"must be at least {MIN_STORAGE_GB} GB")
    if value > MAX_STORAGE_GB:
        raise ApiError(
            "NETWORK_STORAGE_TOO_LARGE",
            f"storageSize: {value} GB is above the maximum of {MAX_STORAGE_GB} GB",
            metadata={"field": "storageSize"},
        )
    return value


def _find(world: World, storage_id: str) -> dict[str, Any]:
    storage = world.storages.get(storage_id)
    if storage is None:
        raise ApiError(
            "NETWORK_STORAGE_NOT_FOUND",
            f"storageId: network storage {storage_id!r} not found",
            metadata={"field": "storageId"},
        )
    return storage


def list_storages(world: World, query: Query, body: Any) -> Any:
    _, first, size = page_window(query, world.switches.pageBase, key="pageNo")
    name = (query_str(query, "storageName") or "").lower()
    storage_id = query_str(query, "storageId")
    matches = [
        _listed(world, s)
        for s in world.storages.values()
        if (not name or name in s["storageName"].lower())
        and (not storage_id or s["storageId"] == storage_id)
    ]
    return {"data": matches[first : first + size], "total": len(matches)}


def _listed(world: World, storage: dict[str, Any]) -> dict[str, Any]:
    """A volume as listed now: its cluster's name and price follow the current switches."""
    cluster = catalog.CLUSTERS_BY_ID[storage["clusterId"]]
    return {
        **storage,
        "clusterName": world.cluster_name(cluster),
        "price": storage_price(storage["storageSize"], world.switches.storagePrice),
    }


def create_storage(world: World, query: Query, body: Any) -> Any:
    check_object(body, {"clusterId", "storageName", "storageSize"})
    cluster_id = get_str(body, "clusterId", required=True, min_len=1, max_len=255)
    name = get_str(body, "storageName", required=True, min_len=1, max_len=255)
    size = _size(body, required=True)
    cluster = catalog.CLUSTERS_BY_ID.get(cluster_id)
    if cluster is None:
        raise ApiError(
            "RESOURCE_NOT_FOUND",
            f"clusterId: cluster {cluster_id!r} not found",
            metadata={"field": "clusterId"},
        )
    if not cluster.support_network_storage:
        raise ApiError(
            "CUR_CLUSTER_NETWORK_STORAGE_NOT_SUPPORT",
            f"clusterId: cluster {cluster_id} does not support network storage",
            metadata={"field": "clusterId"},
        )
    storage_id = world.new_storage_id()
    world.storages[storage_id] = {
        "storageId": storage_id,
        "storageName": name,
        "storageSize": size,
        "clusterId": cluster.id,
        "clusterName": world.cluster_name(cluster),
        "price": storage_price(size or 0, world.switches.storagePrice),
    }
    return storage_id  # the live API answers a bare JSON string


def update_storage(world: World, query: Query, body: Any) -> Any:
    check_object(body, {"storageId", "storageName", "storageSize"})
    storage_id = get_str(body, "storageId", required=True, min_len=1, max_len=255)
    name = get_str(body, "storageName", min_len=1, max_len=255)
    size = _size(body, required=False)
    storage = _find(world, storage_id)
    if size is not None and size < storage["storageSize"]:
        raise invalid(
            "storageSize", f"may only grow (now {storage['storageSize']} GB, asked {size} GB)"
        )
    if name is not None:
        storage["storageName"] = name
    if size is not None:
        storage["storageSize"] = size
        storage["price"] = storage_price(size, world.switches.storagePrice)
    return {}


def delete_storage(world: World, query: Query, body: Any) -> Any:
    check_object(body, {"storageId"})
    storage_id = get_str(body, "storageId", required=True, min_len=1, max_len=255)
    _find(world, storage_id)
    users = world.storage_users(storage_id)
    if users:
        raise ApiError(
            "NETWORK_STORAGE_IN_USE",
            f"storageId: network storage {storage_id} is mounted by instance {users[0]}",
            metadata={"field": "storageId"},
        )
    del world.storages[storage_id]
    return {}


def storages_cluster(world: World, mounts: list[dict[str, str]], cluster_id: str) -> str:
    """The cluster the instance must be created in given its volumes ("" = any)."""
    wanted = cluster_id
    for i, mount in enumerate(mounts):
        field = f"networkStorages[{i}].Id"
        storage = world.storages.get(mount["Id"])
        if storage is None:
            raise ApiError(
                "NETWORK_STORAGE_NOT_FOUND",
                f"{field}: network storage {mount['Id']!r} not found",
                metadata={"field": field},
            )
        if wanted and storage["clusterId"] != wanted:
            raise ApiError(
                "NETWORK_STORAGE_UNAVAILABLE",
                f"{field}: network storage {mount['Id']} is in cluster {storage['clusterId']}, "
                f"not {wanted}; an instance can mount only volumes of its own cluster",
                metadata={"field": field},
            )
        wanted = storage["clusterId"]
    return wanted


STORAGE_ROUTES: dict[tuple[str, str], Callable[[World, Query, Any], Any]] = {
    ("GET", "/networkstorages/list"): list_storages,
    ("POST", "/networkstorage/create"): create_storage,
    ("POST", "/networkstorage/update"): update_storage,
    ("POST", "/networkstorage/delete"): delete_storage,
}
