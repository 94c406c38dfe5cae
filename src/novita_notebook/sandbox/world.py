"""The sandbox's state: instances and their lazily computed state machine, stock, templates and
registry auths. One re-entrant lock guards everything; callers hold it via ``world.lock``.
"""

from __future__ import annotations

import copy
import random
import re
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .catalog import ClusterSpec, Offer, ProductSpec
from .validate import ApiError

# Realistic durations in seconds at speed 1 (divided by ``speed``).
QUEUE_SECONDS = 1.0  # every "to*" status: the request waits for the scheduler
CREATING_SECONDS = 4.0
STARTING_SECONDS = 10.0
RESTARTING_SECONDS = 8.0
STOPPING_SECONDS = 5.0
REMOVING_SECONDS = 3.0
APP_BOOT_SECONDS = 6.0  # from "running" until the app behind an http port answers
REMOVED_LINGER_SECONDS = 30.0  # "removed" stays visible this long, then the id is gone (404)

FREE_CONTAINER_DISK_GB = 60
KEEP_DATA_DAYS = 7
JUPYTER_PORT = 8888

_IMAGE_REFERENCE = re.compile(catalog.IMAGE_PATTERN)
_REMOVAL = frozenset({"toRemove", "removing", "removed"})
_STOPPABLE = frozenset(
    {"toCreate", "creating", "pulling", "running", "toStart", "starting", "toRestart", "restarting"}
)


@dataclass
class InstanceRecord:
    id: str
    name: str
    offer: Offer
    gpu_num: int
    rootfs_size: int
    image_url: str
    image_auth_id: str
    image_auth_ok: bool  # inline "user:pass" credentials were complete
    ports: list[tuple[int, str]]
    envs: list[dict[str, str]]
    tools: list[dict[str, Any]]
    command: str
    entrypoint: str
    billing_mode: str
    month: int
    network_storages: list[dict[str, str]]
    network_id: str
    min_cuda_version: str
    created_at: float
    ssh_port: int
    ssh_password: str
    terminal_password: str
    ip: str
    status: str = "toCreate"
    stages: list[tuple[str, float]] = field(default_factory=list)  # (status, until)
    final_status: str | None = None
    final_error: dict[str, str] | None = None
    status_error: dict[str, str] = field(default_factory=lambda: {"state": "", "message": ""})
    last_started_at: float | None = None
    last_stopped_at: float | None = None
    running_since: float | None = None
    removed_at: float | None = None

    @property
    def product(self) -> ProductSpec:
        return self.offer.product

    @property
    def cluster(self) -> ClusterSpec:
        return self.offer.cluster

    def begin(
        self,
        now: float,
        stages: list[tuple[str, float]],
        final: str,
        error: dict[str, str] | None = None,
    ) -> None:
        """Start a transition: timed stages (status, seconds already scaled) then ``final``."""
        until = now
        self.stages = []
        for status, seconds in stages:
            until += seconds
            self.stages.append((status, until))
        self.final_status = final
        self.final_error = error
        self.status = self.stages[0][0] if self.stages else final
        if not self.stages:
            self._arrive(now)

    def settle(self, now: float) -> None:
        """Advance the state machine to ``now`` (statuses are computed lazily on read)."""
        if self.final_status is None:
            return
        while self.stages and self.stages[0][1] <= now:
            arrived_at = self.stages.pop(0)[1]
            if not self.stages:
                self._arrive(arrived_at)
                return
        if self.stages:
            self.status = self.stages[0][0]

    def _arrive(self, at: float) -> None:
        self.status = self.final_status or self.status
        self.final_status = None
        if self.status == "running":
            self.last_started_at = at
            self.running_since = at
            self.status_error = {"state": "", "message": ""}
        elif self.status == "exited":
            self.last_stopped_at = at
            self.running_since = None
            if self.final_error:
                self.status_error = dict(self.final_error)
        elif self.status == "removed":
            self.removed_at = at
            self.running_since = None


def _token(
    rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits
) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


class World:
    """Everything the sandbox knows. Methods expect ``self.lock`` to be held by the caller
    (the HTTP layer takes it once per request), except where noted."""

    def __init__(self, seed: int = 0, speed: float = 1.0, clock: Callable[[], float] = time.time):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.seed = seed
        self.speed = float(speed)
        self.clock = clock
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"
        self.reset()

    # -- setup ---------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.rng = random.Random(f"novita-sandbox-world-{self.seed}")
            self.offers: dict[tuple[str, str], Offer] = catalog.build_offers(self.seed)
            self.instances: dict[str, InstanceRecord] = {}
            self.auths: dict[str, dict[str, str]] = {}
            self.templates: dict[str, dict[str, Any]] = {}
            for template in catalog.OFFICIAL_TEMPLATES:
                item = copy.deepcopy(template)
                item["createdAt"] = catalog.OFFICIAL_TEMPLATE_CREATED_AT
                item["user"] = "novita"
                self.templates[item["Id"]] = item
            self.next_ssh_port = 30000
            self._clusters_cache: list[dict[str, Any]] | None = None

    def scaled(self, seconds: float) -> float:
        return seconds / self.speed

    def set_stock(
        self, stock: int, cluster_id: str | None = None, product_id: str | None = None
    ) -> int:
        """Set the available units of every matching offer (None = all)."""
        if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise ApiError("VALIDATOR_PARAM", "stock: must be an integer >= 0")
        if cluster_id is not None and cluster_id not in catalog.CLUSTERS_BY_ID:
            raise ApiError("RESOURCE_NOT_FOUND", f"clusterId: unknown cluster {cluster_id!r}")
        if product_id is not None and product_id not in catalog.PRODUCTS_BY_ID:
            raise ApiError("RESOURCE_NOT_FOUND", f"productId: unknown product {product_id!r}")
        matched = 0
        for (pid, cid), offer in self.offers.items():
            if (cluster_id is None or cid == cluster_id) and (
                product_id is None or pid == product_id
            ):
                offer.stock = stock
                matched += 1
        return matched

    # -- catalog views -------------------------------------------------------------------------
    def clusters_view(self) -> list[dict[str, Any]]:
        # The GPU types offered per cluster never change: build once per reset.
        if self._clusters_cache is None:
            self._clusters_cache = self._build_clusters_view()
        return self._clusters_cache

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
                    "name": cluster.name,
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
        wanted_units = max(gpu_num or 1, 1)
        needle = (product_name or "").lower()
        result = []
        for (_, cid), offer in self.offers.items():
            product = offer.product
            if cluster_id and cid != cluster_id:
                continue
            if needle and needle not in product.name.lower() and needle not in product.id.lower():
                continue
            if billing_method not in offer.billing_methods:
                continue
            if min_cpu_per_gpu and product.cpu_per_gpu < min_cpu_per_gpu:
                continue
            if min_memory_per_gpu and product.memory_per_gpu < min_memory_per_gpu:
                continue
            if min_rootfs_size and product.max_rootfs < min_rootfs_size:
                continue
            result.append(
                {
                    "id": product.id,
                    "name": product.name,
                    "cpuPerGpu": product.cpu_per_gpu,
                    "memoryPerGpu": product.memory_per_gpu,
                    "diskPerGpu": product.disk_per_gpu,
                    "availableDeploy": offer.stock >= wanted_units,
                    "canBuy": offer.stock >= wanted_units,
                    "minRootFS": 10,
                    "maxRootFS": product.max_rootfs,
                    "minLocalStorage": 0,
                    "maxLocalStorage": product.max_local_storage,
                    "regions": [offer.cluster.region_label],
                    "price": str(offer.price),
                    "spotPrice": str(offer.spot_price) if offer.spot_price is not None else "",
                    "monthlyPrice": [
                        {"price": str(price), "month": months}
                        for months, price in offer.monthly_prices
                    ],
                    "billingMethods": offer.billing_methods,
                    "inventoryState": catalog.inventory_state(offer.stock),
                }
            )
        return result

    # -- instances -----------------------------------------------------------------------------
    def settle_all(self) -> None:
        """Advance every instance and forget those removed long enough ago (gone → 404)."""
        now = self.clock()
        linger = self.scaled(REMOVED_LINGER_SECONDS)
        gone = []
        for record in self.instances.values():
            record.settle(now)
            if record.removed_at is not None and now - record.removed_at >= linger:
                gone.append(record.id)
        for instance_id in gone:
            del self.instances[instance_id]

    def find(self, instance_id: str, *, status: int = 400) -> InstanceRecord:
        """The live record, settled to now; unknown or gone → RESOURCE_NOT_FOUND."""
        record = self.instances.get(instance_id)
        if record is not None:
            now = self.clock()
            record.settle(now)
            removed_at = record.removed_at
            if removed_at is not None and now - removed_at >= self.scaled(REMOVED_LINGER_SECONDS):
                del self.instances[instance_id]
                record = None
        if record is None:
            raise ApiError(
                "RESOURCE_NOT_FOUND",
                f"instanceId: instance {instance_id!r} not found",
                status=status,
            )
        return record

    def new_instance_id(self) -> str:
        while True:
            candidate = f"{self.rng.getrandbits(64):016x}"
            if candidate not in self.instances:
                return candidate

    def pick_offer(self, product_id: str, cluster_id: str, gpu_num: int) -> Offer:
        """The offer to create on: the named cluster, or any cluster with stock."""
        product = catalog.PRODUCTS_BY_ID.get(product_id)
        if product is None:
            raise ApiError("RESOURCE_NOT_FOUND", f"productId: product {product_id!r} not found")
        if cluster_id:
            if cluster_id not in catalog.CLUSTERS_BY_ID:
                raise ApiError("RESOURCE_NOT_FOUND", f"clusterId: cluster {cluster_id!r} not found")
            offer = self.offers.get((product_id, cluster_id))
            if offer is None:
                raise ApiError(
                    "RESOURCE_NOT_FOUND",
                    f"productId: product {product_id!r} is not offered in cluster {cluster_id!r}",
                )
            candidates = [offer]
        else:
            candidates = [o for (pid, _), o in self.offers.items() if pid == product_id]
        fitting = [offer for offer in candidates if offer.stock >= gpu_num]
        if fitting:
            # Documented: an empty clusterId means a random cluster (seeded, so reproducible).
            return fitting[0] if len(fitting) == 1 else self.rng.choice(fitting)
        where = f"cluster {cluster_id!r}" if cluster_id else "any cluster"
        raise ApiError(
            "INSUFFICIENT_RESOURCE",
            f"insufficient resource: no {gpu_num} x {product.name} ({product_id}) available in {where}",
        )

    def add_instance(self, spec: dict[str, Any], offer: Offer) -> InstanceRecord:
        """Create the record, consume stock and start the create transition."""
        now = self.clock()
        offer.stock -= spec["gpu_num"]
        self.next_ssh_port += 1
        record = InstanceRecord(
            id=self.new_instance_id(),
            offer=offer,
            created_at=now,
            ssh_port=self.next_ssh_port,
            ssh_password=_token(self.rng, 16),
            terminal_password=_token(self.rng, 16),
            ip=f"10.{self.rng.randrange(0, 256)}.{self.rng.randrange(0, 256)}.{self.rng.randrange(2, 255)}",
            **spec,
        )
        pull = self.scaled(catalog.pull_seconds(record.image_url))
        error = self.pull_error(record)
        stages = [
            ("toCreate", self.scaled(QUEUE_SECONDS)),
            ("creating", self.scaled(CREATING_SECONDS)),
            ("pulling", pull),
        ]
        record.begin(now, stages, "exited" if error else "running", error)
        self.instances[record.id] = record
        return record

    def pull_error(self, record: InstanceRecord) -> dict[str, str] | None:
        """Why the image cannot be pulled, or None when it can."""
        image = record.image_url
        if not _IMAGE_REFERENCE.match(image):
            return {
                "state": "pullImageFailed",
                "message": f"invalid reference format: {image!r} is not a valid image reference",
            }
        if catalog.FAILING_IMAGE_MARKER in image:
            return {
                "state": "pullImageFailed",
                "message": f"manifest unknown: image {image} not found in the registry",
            }
        if catalog.is_private_image(image):
            authorised = record.image_auth_ok or (
                record.image_auth_id and record.image_auth_id in self.auths
            )
            if not authorised:
                return {
                    "state": "pullImageFailed",
                    "message": (
                        f"pull access denied for {image}: repository does not exist or may "
                        "require authorization (set imageAuthId or imageAuth)"
                    ),
                }
        return None

    def _invalid_change(self, record: InstanceRecord, action: str) -> ApiError:
        return ApiError(
            "REQUEST",
            f"invalid state change: cannot {action} instance {record.id} in status {record.status}",
        )

    def start(self, instance_id: str) -> None:
        record = self.find(instance_id)
        if record.status != "exited":
            raise self._invalid_change(record, "start")
        now = self.clock()
        error = self.pull_error(record)
        if error:
            stages = [
                ("toStart", self.scaled(QUEUE_SECONDS)),
                ("pulling", self.scaled(catalog.pull_seconds(record.image_url))),
            ]
            record.begin(now, stages, "exited", error)
        else:
            record.status_error = {"state": "", "message": ""}
            stages = [
                ("toStart", self.scaled(QUEUE_SECONDS)),
                ("starting", self.scaled(STARTING_SECONDS)),
            ]
            record.begin(now, stages, "running")

    def stop(self, instance_id: str) -> None:
        record = self.find(instance_id)
        if record.status not in _STOPPABLE:
            raise self._invalid_change(record, "stop")
        record.running_since = None
        stages = [
            ("toStop", self.scaled(QUEUE_SECONDS)),
            ("stopping", self.scaled(STOPPING_SECONDS)),
        ]
        record.begin(self.clock(), stages, "exited")

    def restart(self, instance_id: str) -> None:
        record = self.find(instance_id)
        if record.status != "running":
            raise self._invalid_change(record, "restart")
        record.running_since = None
        stages = [
            ("toRestart", self.scaled(QUEUE_SECONDS)),
            ("restarting", self.scaled(RESTARTING_SECONDS)),
        ]
        record.begin(self.clock(), stages, "running")

    def delete(self, instance_id: str) -> None:
        """Works in any state; stock is freed at once. Deleting twice is harmless."""
        record = self.find(instance_id)
        if record.status in _REMOVAL:
            return
        record.offer.stock += record.gpu_num
        record.running_since = None
        stages = [
            ("toRemove", self.scaled(QUEUE_SECONDS)),
            ("removing", self.scaled(REMOVING_SECONDS)),
        ]
        record.begin(self.clock(), stages, "removed")

    def edit(self, instance_id: str, ports: list[tuple[int, str]], expand_root_disk: int) -> None:
        record = self.find(instance_id)
        if record.status in _REMOVAL:
            raise self._invalid_change(record, "edit")
        current = dict(record.ports)
        added = []
        for port, kind in ports:
            if port in current:
                if current[port] != kind:
                    raise ApiError(
                        "CONFLICT",
                        f"ports: port {port} is already mapped as {current[port]}",
                        metadata={"field": "ports"},
                    )
                continue
            added.append((port, kind))
        tool_ports = {int(t["port"]) for t in record.tools if str(t.get("port", "")).isdigit()}
        total = len({p for p, _ in record.ports} | {p for p, _ in added} | tool_ports)
        if total > 15:
            raise ApiError("VALIDATOR_PARAM", "ports: ports plus tools must be at most 15")
        new_size = record.rootfs_size + expand_root_disk
        if new_size > record.product.max_rootfs:
            raise ApiError(
                "VALIDATOR_PARAM",
                f"expandRootDisk: root disk would be {new_size} GB, above the product's "
                f"maxRootFS {record.product.max_rootfs}",
            )
        record.ports.extend(added)
        record.rootfs_size = new_size

    def app_up(self, record: InstanceRecord) -> bool:
        """Whether the app inside answers: running, and booted for a short (scaled) delay."""
        if record.status != "running" or record.running_since is None:
            return False
        return self.clock() - record.running_since >= self.scaled(APP_BOOT_SECONDS)

    # -- instance views ------------------------------------------------------------------------
    def endpoint(self, record: InstanceRecord, port: int, kind: str) -> str:
        if kind == "http":
            return f"{self.base_url}/_sandbox/proxy/{record.id}/{port}/"
        return f"127.0.0.1:{40000 + (record.ssh_port - 30000) * 16 + port % 16}"

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
            "clusterName": record.cluster.name,
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
                {"type": "network", "size": "0", "id": s["Id"], "mountPath": s["mountPoint"]}
                for s in record.network_storages
            ],
            "statusError": dict(record.status_error),
            "envs": [dict(e) for e in record.envs],
            "kind": "gpu",
            "billingMode": record.billing_mode,
            "endTime": self._end_time(record),
        }

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
            {"type": "network", "size": 0, "id": s["Id"], "mountPath": s["mountPoint"]}
            for s in record.network_storages
        ]
        jupyter = JUPYTER_PORT in {p for p, t in ports if t == "http"}
        base = self.base_url
        item.update(
            {
                "entrypoint": record.entrypoint,
                "network": {"id": record.network_id, "ip": record.ip},
                "node": [{"maxRootfsSize": record.product.max_rootfs}],
                "jobs": [],
                "tools": [dict(t) for t in record.tools],
                "connectComponentSSH": {
                    "sshCommand": f"ssh root@127.0.0.1 -p {record.ssh_port}",
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
                    "isRunning": record.status not in _REMOVAL,
                },
                "freeStorageSize": FREE_CONTAINER_DISK_GB,
                "keepDataDay": KEEP_DATA_DAYS,
                "createdAt": str(int(record.created_at)),
                "lastStartedAt": str(int(record.last_started_at or 0)),
                "lastStoppedAt": str(int(record.last_stopped_at or 0)),
                "spotStatus": "running" if record.billing_mode == "spot" and running else "",
                "spotReclaimTime": "0",
                "minCudaVersion": record.min_cuda_version,
            }
        )
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

    # -- registry auths and templates ----------------------------------------------------------
    def new_auth_id(self) -> str:
        return _token(self.rng, 32, string.ascii_lowercase + string.digits)

    def new_template_id(self) -> str:
        while True:
            candidate = str(self.rng.randrange(10**9, 10**10))
            if candidate not in self.templates:
                return candidate

    def auth_in_use(self, auth_id: str) -> str | None:
        """What still uses a registry auth (a live instance or a template), if anything."""
        for record in self.instances.values():
            record.settle(self.clock())
            if record.image_auth_id == auth_id and record.status not in _REMOVAL:
                return f"instance {record.id}"
        for template in self.templates.values():
            if template.get("imageAuth") == auth_id:
                return f"template {template['Id']}"
        return None
