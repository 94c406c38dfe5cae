"""Read-only views of the sandbox's state as the API answers them: clusters, products (one
entry per product id), instance list items and the instance detail (a mixin of World).
"""

from __future__ import annotations

from typing import Any

from . import catalog
from .catalog import ProductSpec
from .records import InstanceRecord

APP_BOOT_SECONDS = 6.0  # from "running" until the app behind an http port answers
FREE_CONTAINER_DISK_GB = 60
KEEP_DATA_DAYS = 7
JUPYTER_PORT = 8888
REMOVAL = frozenset({"toRemove", "removing", "removed"})
#: Where ``healthyStatusError`` shows a stale error: past the first pull, not failed.
HEALTHY_WITH_ERROR = frozenset(
    {"pulling", "toStart", "starting", "running", "toRestart", "restarting"}
)
STALE_STATUS_ERROR = {"state": "pullImageRetry", "message": "pull attempt 1 timed out; retried"}


def product_entry(
    product: ProductSpec, *, regions: list[str], available: bool, stock: int, times: int = 1
) -> dict[str, Any]:
    """A product as GET /products lists it; ``spotPrice`` is null without a spot offer.
    ``times`` multiplies every price (the ``gpuNumPrices="total"`` switch)."""
    spot = product.spot_price
    return {
        "id": product.id,
        "name": product.name,
        "cpuPerGpu": product.cpu_per_gpu,
        "memoryPerGpu": product.memory_per_gpu,
        "diskPerGpu": product.disk_per_gpu,
        "availableDeploy": available,
        "canBuy": available,
        "minRootFS": 10,
        "maxRootFS": product.max_rootfs,
        "minLocalStorage": 0,
        "maxLocalStorage": product.max_local_storage,
        "regions": regions,
        "price": str(product.price * times),
        "spotPrice": str(spot * times) if spot is not None else None,
        "monthlyPrice": [
            {"price": str(price * times), "month": months}
            for months, price in product.monthly_prices
        ],
        "billingMethods": product.billing_methods,
        "inventoryState": catalog.inventory_state(stock),
    }


class ViewsMixin:
    """The views; ``self`` is the World (offers, storages, clock, base_url)."""

    # -- catalog views -------------------------------------------------------------------------
    def cluster_name(self, cluster: catalog.ClusterSpec) -> str:
        """A cluster's ``name``: its region label's code, or (``clusterNames="city"``) a
        name unlike any label."""
        return cluster.city if self.switches.clusterNames == "city" else cluster.name

    def clusters_view(self) -> list[dict[str, Any]]:
        # The GPU types offered per cluster never change: build once per reset (and naming).
        naming = self.switches.clusterNames
        if self._clusters_cache is None or self._clusters_cache[0] != naming:
            self._clusters_cache = (naming, self._build_clusters_view())
        return self._clusters_cache[1]

    def _build_clusters_view(self) -> list[dict[str, Any]]:
        result = []
        for cluster in catalog.CLUSTERS:
            gpu_types: list[str] = []
            for (_, cid), offer in self.offers.items():
                if cid == cluster.id and offer.product.gpu_type not in gpu_types:
                    gpu_types.append(offer.product.gpu_type)
            result.append(
                {
                    "id": cluster.id,
                    "name": self.cluster_name(cluster),
                    "availableGpuType": gpu_types,
                    "supportNetworkStorage": cluster.support_network_storage,
                    "supportInstanceNetwork": cluster.support_instance_network,
                }
            )
        return result

    def products_view(
        self,
        *,
        cluster_id: str | None,
        product_name: str | None,
        gpu_num: int | None,
        billing_method: str,
        min_cpu_per_gpu: int | None,
        min_memory_per_gpu: int | None,
        min_rootfs_size: int | None,
    ) -> list[dict[str, Any]]:
        """One entry per product id. Unfiltered: every region offering it and the aggregate
        availability; with ``cluster_id``: only that cluster's products and its stock (and in
        ``regions`` only its label, or every offering region's with ``filteredRegions="all"``)."""
        wanted_units = max(gpu_num or 1, 1)
        needle = (product_name or "").lower()
        result = []
        for product in catalog.PRODUCTS:
            if cluster_id and cluster_id not in product.clusters:
                continue
            if needle and needle not in product.name.lower() and needle not in product.id.lower():
                continue
            if billing_method not in product.billing_methods:
                continue
            if min_cpu_per_gpu and product.cpu_per_gpu < min_cpu_per_gpu:
                continue
            if min_memory_per_gpu and product.memory_per_gpu < min_memory_per_gpu:
                continue
            if min_rootfs_size and product.max_rootfs < min_rootfs_size:
                continue
            clusters = [cluster_id] if cluster_id else list(product.clusters)
            offers = [self.offers[(product.id, cid)] for cid in clusters]
            available = any(offer.stock >= wanted_units for offer in offers)
            labelled = offers
            if cluster_id and self.switches.filteredRegions == "all":
                labelled = [self.offers[(product.id, cid)] for cid in product.clusters]
            total = self.switches.gpuNumPrices == "total" and (gpu_num or 0) > 1
            result.append(
                product_entry(
                    product,
                    regions=[offer.cluster.region_label for offer in labelled],
                    available=available,
                    stock=sum(offer.stock for offer in offers),
                    times=wanted_units if total else 1,
                )
            )
        return result

    # -- instance views ----------------------------------------------------------------------------
    def app_up(self, record: InstanceRecord) -> bool:
        """Whether the app inside answers: running, and booted for a short (scaled) delay."""
        if record.status != "running" or record.running_since is None:
            return False
        return self.clock() - record.running_since >= self.scaled(APP_BOOT_SECONDS)

    # -- instance views ------------------------------------------------------------------------
    def endpoint(self, record: InstanceRecord, port: int, kind: str) -> str:
        if kind == "http":
            return f"{self.base_url}/_sandbox/proxy/{record.id}/{port}/"
        return f"127.0.0.1:{40000 + (record.slot - 30000) * 16 + port % 16}"

    def all_ports(self, record: InstanceRecord) -> list[tuple[int, str]]:
        """Requested ports, then tool ports, then the ports the image exposes by itself."""
        ports = list(record.ports)
        seen = {p for p, _ in ports}
        implied = [(int(t["port"]), t.get("type", "http")) for t in record.tools]
        implied += catalog.IMAGE_EXPOSED_PORTS.get(record.image_url, ())
        for port, kind in implied:
            if port not in seen:
                ports.append((port, kind))
                seen.add(port)
        return ports

    def list_item(self, record: InstanceRecord) -> dict[str, Any]:
        product = record.product
        return {
            "id": record.id,
            "name": record.name,
            "clusterId": record.cluster.id,
            "clusterName": self.cluster_name(record.cluster),
            "status": record.status,
            "imageUrl": record.image_url,
            "imageAuthId": record.image_auth_id,
            "command": record.command,
            "cpuNum": str(product.cpu_per_gpu * record.gpu_num),
            "memory": str(product.memory_per_gpu * record.gpu_num),
            "gpuNum": str(record.gpu_num),
            "portMappings": [{"port": p, "type": t} for p, t in self.all_ports(record)],
            "productId": product.id,
            "productName": product.name,
            "rootfsSize": record.rootfs_size,
            "volumeMounts": [
                {"type": "network", "size": str(size), "id": sid, "mountPath": mount}
                for sid, mount, size in self._mounts(record)
            ],
            "statusError": self._status_error(record),
            "envs": [dict(e) for e in record.envs],
            "kind": "gpu",
            "billingMode": record.billing_mode,
            "endTime": self._end_time(record),
            **(self._spot_fields(record) if self.switches.spotFields == "list" else {}),
        }

    def _status_error(self, record: InstanceRecord) -> dict[str, str]:
        """The record's statusError; with ``healthyStatusError`` a healthy instance past its
        first pull also carries one (a stale note of a retried pull)."""
        error = dict(record.status_error)
        healthy = not error.get("state") and not error.get("message")
        if healthy and self.switches.healthyStatusError and record.status in HEALTHY_WITH_ERROR:
            return dict(STALE_STATUS_ERROR)
        return error

    def _spot_fields(self, record: InstanceRecord) -> dict[str, str]:
        return {
            "spotStatus": record.spot_status,
            "spotReclaimTime": str(int(record.spot_reclaim_time or 0)),
        }

    def _times(self, record: InstanceRecord) -> dict[str, str]:
        """createdAt/lastStartedAt/lastStoppedAt as the ``timestamps`` switch says."""
        style = self.switches.timestamps
        if style == "none":
            return {}
        factor = 1000 if style == "ms" else 1
        values = {
            "createdAt": record.created_at,
            "lastStartedAt": record.last_started_at or 0,
            "lastStoppedAt": record.last_stopped_at or 0,
        }
        return {key: str(int(value * factor)) for key, value in values.items()}

    def _mounts(self, record: InstanceRecord) -> list[tuple[str, str, int]]:
        """(storage id, mount path, size GB) of each network volume the instance mounts."""
        result = []
        for mount in record.network_storages:
            storage = self.storages.get(mount["Id"])
            size = int(storage["storageSize"]) if storage else 0
            result.append((mount["Id"], mount["mountPoint"], size))
        return result

    def _end_time(self, record: InstanceRecord) -> str:
        if record.billing_mode == "monthly" and record.month > 0:
            return str(int(record.created_at + record.month * 30 * 86400))
        return "-1"

    def detail(self, record: InstanceRecord) -> dict[str, Any]:
        item = self.list_item(record)
        running = record.status == "running"
        up = self.app_up(record)
        ports = self.all_ports(record)
        item["portMappings"] = [
            {"port": p, "type": t, "endpoint": self.endpoint(record, p, t)} for p, t in ports
        ]
        item["volumeMounts"] = [
            {"type": "network", "size": size, "id": sid, "mountPath": mount}
            for sid, mount, size in self._mounts(record)
        ]
        jupyter = JUPYTER_PORT in {p for p, t in ports if t == "http"}
        base = self.base_url
        item.pop("spotStatus", None)
        item.pop("spotReclaimTime", None)
        item.update(
            {
                "entrypoint": record.entrypoint,
                "network": {"id": record.network_id, "ip": record.ip},
                "node": [{"maxRootfsSize": record.product.max_rootfs}],
                "jobs": [],
                "tools": [dict(t) for t in record.tools],
                "connectComponentSSH": {
                    "sshCommand": f"ssh root@127.0.0.1 -p {self.ssh_port_for(record)}",
                    "password": record.ssh_password,
                    "isRunning": running,
                },
                "connectComponentWebTerminal": {
                    "address": f"{base}/_sandbox/terminal/{record.id}/",
                    "username": "root",
                    "password": record.terminal_password,
                    "isRunning": up,
                },
                "connectComponentJupyter": {
                    "port": JUPYTER_PORT if jupyter else 0,
                    "address": self.endpoint(record, JUPYTER_PORT, "http") if jupyter else "",
                    "isRunning": jupyter and up,
                },
                "connectComponentLog": {
                    "systemLogAddress": f"{base}/_sandbox/logs/{record.id}/system",
                    "instanceLogAddress": f"{base}/_sandbox/logs/{record.id}/instance",
                    "isRunning": record.status not in REMOVAL,
                },
                "freeStorageSize": FREE_CONTAINER_DISK_GB,
                "keepDataDay": KEEP_DATA_DAYS,
                **self._times(record),
                **(self._spot_fields(record) if self.switches.spotFields != "none" else {}),
            }
        )
        if not jupyter and self.switches.jupyterBlock == "whenUsed":
            del item["connectComponentJupyter"]
        return item

    def logs(self, record: InstanceRecord, kind: str) -> str:
        """A plausible log for the log endpoints (no secrets)."""
        lines = [
            f"{int(record.created_at)} scheduled on {record.cluster.name} "
            f"({record.gpu_num} x {record.product.name})",
            f"{int(record.created_at)} pulling image {record.image_url}",
        ]
        if record.status_error.get("message"):
            lines.append(f"error: {record.status_error['message']}")
        if record.last_started_at:
            lines.append(f"{int(record.last_started_at)} container started")
        if kind == "instance" and record.command:
            lines.append(f"$ {record.command}")
        lines.append(f"status: {record.status}")
        return "\n".join(lines) + "\n"
