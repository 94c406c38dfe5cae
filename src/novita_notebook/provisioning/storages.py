"""Network volumes: list, create and delete them, and resolve the volumes a create mounts
(names or ids) to one cluster, since an instance can mount a volume only in its cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api import NovitaAPI
from ..catalog import Catalog
from ..errors import NotFoundError, ValidationError
from ..models import Cluster, parse_int, parse_price

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

#: The API's bounds on a volume's size (GB): 10 at least (the MCP server enforces it).
MIN_SIZE_GB = 10
MAX_SIZE_GB = 10240
STORAGE_COLUMNS = (
    "name",
    "id",
    "region",
    "cluster_id",
    "size_gb",
    "price_per_hour",
    "price_per_month",
)
#: Hours in the month the API's monthly prices assume (365 * 24 / 12).
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class NetworkStorage:
    """One network volume; ``price_per_hour`` is USD per hour for the whole volume."""

    id: str
    name: str
    size_gb: int | None
    cluster_id: str
    region: str
    price_per_hour: float | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> NetworkStorage:
        return cls(
            id=str(data.get("storageId") or data.get("id") or ""),
            name=str(data.get("storageName") or ""),
            size_gb=parse_int(data.get("storageSize")),
            cluster_id=str(data.get("clusterId") or ""),
            region=str(data.get("clusterName") or "").split(" ", 1)[0],
            price_per_hour=parse_price(data.get("price")),
        )


@dataclass(frozen=True)
class Mount:
    """A volume a create mounts, resolved: the storage and where it appears."""

    storage: NetworkStorage
    mount_point: str

    def body(self) -> dict[str, str]:
        return {"Id": self.storage.id, "mountPoint": self.mount_point}


class Storages:
    """Network volumes through ``api``; regions are checked with ``catalog``."""

    def __init__(self, api: NovitaAPI, catalog: Catalog) -> None:
        self.api = api
        self.catalog = catalog

    def list(self) -> list[NetworkStorage]:
        return [NetworkStorage.from_api(raw) for raw in self.api.list_network_storages()]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        items = sorted(self.list(), key=lambda s: (s.name.lower(), s.id))
        hourly = [s.price_per_hour for s in items]
        frame = pd.DataFrame(
            {
                "name": pd.Series([s.name for s in items], dtype="string"),
                "id": pd.Series([s.id for s in items], dtype="string"),
                "region": pd.Series([s.region for s in items], dtype="string"),
                "cluster_id": pd.Series([s.cluster_id for s in items], dtype="string"),
                "size_gb": pd.Series([s.size_gb for s in items], dtype="Int64"),
                "price_per_hour": pd.Series(
                    [float("nan") if p is None else p for p in hourly], dtype="float64"
                ),
                "price_per_month": pd.Series(
                    [float("nan") if p is None else round(p * HOURS_PER_MONTH, 2) for p in hourly],
                    dtype="float64",
                ),
            },
            columns=list(STORAGE_COLUMNS),
        )
        # The price's unit is a guess (money.ESTIMATED_PRICES): views mark these columns.
        frame.attrs["estimated"] = ["price_per_hour", "price_per_month"]
        return frame

    def find(
        self, ref: str, field: str = "volume", items: list[NetworkStorage] | None = None
    ) -> NetworkStorage:
        """The volume with this id, else the one volume with this exact name (among
        ``items``, else the account's)."""
        if not isinstance(ref, str) or not ref.strip():
            raise ValidationError(f"{field} must be a volume name or id, got {ref!r}", field=field)
        items = self.list() if items is None else items
        for item in items:
            if item.id == ref:
                return item
        named = [item for item in items if item.name == ref]
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(item.id for item in named)
            raise ValidationError(
                f"{field}: {len(named)} volumes are named {ref!r} (ids: {ids}); pass an id",
                field=field,
            )
        known = ", ".join(f"{i.name} ({i.region})" for i in items) or "none"
        raise ValidationError(
            f"{field}: no network volume has the name or id {ref!r}; yours: {known}",
            field=field,
            hint="Novita.storages() lists them; create_storage(name, region, size_gb) makes one.",
        )

    def create(self, name: str, region: str, size_gb: int) -> NetworkStorage:
        """Make a volume in ``region`` (name or cluster id) of ``size_gb`` GB."""
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"name must be a non-empty string, got {name!r}", field="name")
        if (
            isinstance(size_gb, bool)
            or not isinstance(size_gb, int)
            or not MIN_SIZE_GB <= size_gb <= MAX_SIZE_GB
        ):
            raise ValidationError(
                f"size_gb must be a whole number of GB from {MIN_SIZE_GB} to {MAX_SIZE_GB}, "
                f"got {size_gb!r}",
                field="size_gb",
            )
        if not isinstance(region, str) or not region.strip():
            raise ValidationError(f"region must be a region name, got {region!r}", field="region")
        cluster = self.catalog.find_region(region)
        taken = [item for item in self.list() if item.name == name.strip()]
        if taken:
            # volumes are found by name (volumes=[name], delete_storage(name)): a second one of
            # the same name would make every such use of either ambiguous
            raise ValidationError(
                f"name: a network volume named {name.strip()!r} already exists "
                f"({taken[0].id}, {taken[0].region}, {taken[0].size_gb} GB); pick another name",
                field="name",
                hint="Novita.storages() lists your volumes; delete_storage(name) removes one.",
            )
        if not cluster.support_network_storage:
            able = ", ".join(c.name for c in self.catalog.clusters() if c.support_network_storage)
            raise ValidationError(
                f"region: {cluster.name} has no network storage; regions with it: {able}",
                field="region",
            )
        new_id = self.api.create_network_storage(cluster.id, name.strip(), size_gb)
        for item in self.api.list_network_storages(storage_id=new_id):
            if str(item.get("storageId")) == new_id:
                return NetworkStorage.from_api(item)
        return NetworkStorage(new_id, name.strip(), size_gb, cluster.id, cluster.name, None)

    def delete(self, name_or_id: str) -> NetworkStorage | None:
        """Delete a volume by id or exact name; returns what was deleted, or None when no
        such volume exists (already deleted: deleting twice is not an error)."""
        if not isinstance(name_or_id, str) or not name_or_id.strip():
            raise ValidationError(
                f"name_or_id must be a volume name or id, got {name_or_id!r}", field="name_or_id"
            )
        items = self.list()
        matches = [i for i in items if i.id == name_or_id] or [
            i for i in items if i.name == name_or_id
        ]
        if not matches:
            log.info("no network volume %r: nothing to delete", name_or_id)
            return None
        storage = self.find(name_or_id, "name_or_id", items)  # two of one name: ask for an id
        try:
            self.api.delete_network_storage(storage.id)
        except NotFoundError:
            log.info("network volume %s was already deleted", storage.id)
        return storage

    def resolve(self, requested: Sequence[Mapping[str, str]]) -> list[Mount]:
        """``[{"Id": name or id, "mountPoint": ...}]`` → mounts, all in one cluster."""
        if not requested:
            return []
        mounts = [Mount(self.find(item["Id"], "volumes"), item["mountPoint"]) for item in requested]
        clusters = {m.storage.cluster_id for m in mounts}
        if len(clusters) > 1:
            where = ", ".join(f"{m.storage.name} in {m.storage.region}" for m in mounts)
            raise ValidationError(
                f"volumes: an instance mounts volumes of one region only; got {where}",
                field="volumes",
            )
        points = [m.mount_point for m in mounts]
        if len(set(points)) < len(points):
            raise ValidationError(
                "volumes: each volume needs its own mount point (give (volume, '/path') pairs)",
                field="volumes",
            )
        return mounts


def volume_cluster(mounts: Sequence[Mount], clusters: Sequence[Cluster]) -> Cluster | None:
    """The one cluster the mounts pin a create to (None without volumes)."""
    if not mounts:
        return None
    wanted = mounts[0].storage.cluster_id
    for cluster in clusters:
        if cluster.id == wanted:
            return cluster
    return Cluster(id=wanted, name=mounts[0].storage.region or wanted)
