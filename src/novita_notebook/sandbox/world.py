"""The sandbox's state: instances and their lifecycle, stock, network storage, templates,
registry auths and the switches. One re-entrant lock guards everything (``world.lock``).
"""

from __future__ import annotations

import copy
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from . import catalog
from .catalog import Offer
from .records import InstanceRecord, token
from .validate import ApiError
from .views import REMOVAL, ViewsMixin

# Realistic durations in seconds at speed 1 (divided by ``speed``).
QUEUE_SECONDS = 1.0  # every "to*" status (and "pending"): the request waits for the scheduler
CREATING_SECONDS = 4.0
STARTING_SECONDS = 10.0
RESTARTING_SECONDS = 8.0
STOPPING_SECONDS = 5.0
REMOVING_SECONDS = 3.0
MIGRATING_SECONDS = 20.0
RECLAIMING_SECONDS = 30.0  # spot: from the reclaim time until the instance is exited
SPOT_NOTICE_SECONDS = 3600.0  # documented: a one-hour reclaim notice
REMOVED_LINGER_SECONDS = 30.0  # "removed" stays visible this long, then the id is gone (404)
CALLER = "sandbox-user"  # the account every request is made as

_IMAGE_REFERENCE = re.compile(catalog.IMAGE_PATTERN)
_STARTING = frozenset({"toStart", "starting"})
_STOPPING = frozenset({"toStop", "stopping"})
_RESTARTING = frozenset({"toRestart", "restarting"})
_STOPPABLE = frozenset(
    {
        "pending", "toCreate", "creating", "pulling", "running", "toStart", "starting",
        "toRestart", "restarting",
    }
)  # fmt: skip


@dataclass
class Switches:
    """Behaviour switches: Sandbox(...) arguments, CLI flags and POST /_sandbox/config."""

    pageBase: int = 0  # 0: pageNum 0 is the first page; 1: 1 is, and 0 also means the first
    notFoundStatus: int = 404  # GET /gpu/instance for an unknown id: 404, or the documented 400
    phaseJitter: float = 0.0  # ±fraction applied (seeded) to every timed phase
    spotNoticeRate: float = 0.0  # random reclaim notices per running spot instance-hour
    pendingRate: float = 1 / 3  # share of creates that show "pending" before "toCreate"
    metricsScale: float = 100.0  # utilisation values: 100 serves percentages, 1 fractions 0-1
    # One switch per unverified guess (docs/assumptions.md): the default is the guess, the
    # other value the other plausible answer.
    clusterNames: str = "label"  # "label": a cluster's name is its region label's code; "city"
    filteredRegions: str = "asked"  # clusterId listing's regions: "asked" cluster only, or "all"
    metricsStep: int = 0  # 0: metrics points every interval asked; N: every N s whatever asked
    spotFields: str = "detail"  # spotStatus/spotReclaimTime: "detail" only, "list" too, "none"
    timestamps: str = "seconds"  # createdAt/lastStartedAt/lastStoppedAt: "seconds", "ms", "none"
    repeatActions: bool = False  # a repeated lifecycle POST acts again (restart twice)
    stopWhen: str = "any"  # which statuses accept a stop: "any" live one, or "running" only
    healthyStatusError: bool = False  # healthy instances carry a non-empty statusError
    storagePrice: str = "hour"  # network volume price: per "hour" (1/100000 USD) or "month"
    gpuNumPrices: str = "perGpu"  # listing prices with gpuNum=N: "perGpu" or "total" (N x)
    retryAfter: bool = True  # 429 answers carry Retry-After (seconds)
    jupyterBlock: str = "always"  # connectComponentJupyter: "always" present, or "whenUsed"
    walletNotFound: bool = False  # delete answers the documented 500 WALLET_NOT_FOUND
    badKeyStatus: int = 401  # a wrong key: 401 UNAUTHORIZED or the documented 400

    def update(self, values: Any) -> None:
        if not isinstance(values, dict):
            raise ApiError("VALIDATOR_PARAM", "body: must be a JSON object")
        for key, value in values.items():
            _check_switch(key, value)
        for key, value in values.items():
            setattr(self, key, _typed(key, value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_FLOAT_SWITCHES = {"phaseJitter", "spotNoticeRate", "pendingRate", "metricsScale"}
_SWITCH_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "pageBase": ("must be 0 or 1", lambda v: v in (0, 1)),
    "notFoundStatus": ("must be 404 or 400", lambda v: v in (404, 400)),
    "phaseJitter": ("must be a number between 0 and 0.9", lambda v: 0 <= v <= 0.9),
    "spotNoticeRate": ("must be a number >= 0 (notices per hour)", lambda v: v >= 0),
    "pendingRate": ("must be a number between 0 and 1", lambda v: 0 <= v <= 1),
    "metricsScale": (
        "must be a number in (0, 100] (100: percent, 1: fractions)",
        lambda v: 0 < v <= 100,
    ),  # fmt: skip
    "metricsStep": (
        "must be 0 (as asked) or seconds 1-3600",
        lambda v: v == int(v) and 0 <= v <= 3600,
    ),
    "badKeyStatus": ("must be 401 or 400", lambda v: v in (401, 400)),
}
#: Switches taking one of a few words, and on/off switches.
_CHOICE_SWITCHES: dict[str, tuple[str, ...]] = {
    "clusterNames": ("label", "city"),
    "filteredRegions": ("asked", "all"),
    "spotFields": ("detail", "list", "none"),
    "timestamps": ("seconds", "ms", "none"),
    "stopWhen": ("any", "running"),
    "storagePrice": ("hour", "month"),
    "gpuNumPrices": ("perGpu", "total"),
    "jupyterBlock": ("always", "whenUsed"),
}
_BOOL_SWITCHES = frozenset({"repeatActions", "healthyStatusError", "retryAfter", "walletNotFound"})
SWITCH_NAMES = (*_SWITCH_RULES, *_CHOICE_SWITCHES, *sorted(_BOOL_SWITCHES))


def _check_switch(key: str, value: Any) -> None:
    if key in _CHOICE_SWITCHES:
        choices = _CHOICE_SWITCHES[key]
        if value not in choices or not isinstance(value, str):
            raise ApiError("VALIDATOR_PARAM", f"{key}: must be one of {', '.join(choices)}")
        return
    if key in _BOOL_SWITCHES:
        if not isinstance(value, bool):
            raise ApiError("VALIDATOR_PARAM", f"{key}: must be true or false")
        return
    if key not in _SWITCH_RULES:
        raise ApiError("VALIDATOR_PARAM", f"{key}: unknown switch (use {', '.join(SWITCH_NAMES)})")
    rule, ok = _SWITCH_RULES[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ApiError("VALIDATOR_PARAM", f"{key}: {rule}")
    if not ok(value):
        raise ApiError("VALIDATOR_PARAM", f"{key}: {rule}")


def _typed(key: str, value: Any) -> Any:
    """A checked switch value in its field's type."""
    if key in _CHOICE_SWITCHES or key in _BOOL_SWITCHES:
        return value
    return float(value) if key in _FLOAT_SWITCHES else int(value)


class World(ViewsMixin):
    """Everything the sandbox knows. Methods expect ``self.lock`` to be held by the caller
    (the HTTP layer takes it once per request), except where noted."""

    def __init__(
        self,
        seed: int = 0,
        speed: float = 1.0,
        clock: Callable[[], float] = time.time,
        switches: Switches | None = None,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.seed = seed
        self.speed = float(speed)
        self.clock = clock
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"
        self.initial_switches = switches or Switches()
        # The instance's real SSH port (the app's machines open it on first use).
        self.ssh_port_for: Callable[[InstanceRecord], int] = lambda record: record.slot
        self.reset()

    # -- setup ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the seeded state, with the switches given at construction."""
        with self.lock:
            self.switches = copy.copy(self.initial_switches)
            self.rng = random.Random(f"novita-sandbox-world-{self.seed}")
            # Separate streams so that turning jitter or notices on leaves the rest unchanged.
            self.phase_rng = random.Random(f"novita-sandbox-phases-{self.seed}")
            self.spot_rng = random.Random(f"novita-sandbox-spot-{self.seed}")
            self.pending_rng = random.Random(f"novita-sandbox-pending-{self.seed}")
            self.offers: dict[tuple[str, str], Offer] = catalog.build_offers(self.seed)
            self.instances: dict[str, InstanceRecord] = {}
            self.auths: dict[str, dict[str, str]] = {}
            self.storages: dict[str, dict[str, Any]] = {}
            self.templates: dict[str, dict[str, Any]] = {}
            for template in catalog.OFFICIAL_TEMPLATES:
                item = copy.deepcopy(template)
                item["createdAt"] = catalog.OFFICIAL_TEMPLATE_CREATED_AT
                # The owner is kept out of the answers (newest docs list no "user").
                item["_user"] = item.pop("user", "novita")
                self.templates[item["Id"]] = item
            self.next_ssh_port = 30000
            self._clusters_cache: tuple[str, list[dict[str, Any]]] | None = None

    def scaled(self, seconds: float) -> float:
        return seconds / self.speed

    def phase(self, seconds: float) -> float:
        """A timed phase: scaled by speed, with the seeded ±phaseJitter applied."""
        jitter = self.switches.phaseJitter
        factor = 1.0 + self.phase_rng.uniform(-jitter, jitter) if jitter else 1.0
        return seconds * factor / self.speed

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

    # -- instances -----------------------------------------------------------------------------
    def settle(self, record: InstanceRecord) -> None:
        """Advance one instance to now, drawing a random spot notice when the rate asks."""
        now = self.clock()
        rate = self.switches.spotNoticeRate
        if (
            rate > 0
            and record.is_spot
            and not record.notice_drawn
            and record.running_since is not None
            and record.notice_at is None
            and record.reclaim_at is None
        ):
            record.notice_drawn = True
            delay = self.spot_rng.expovariate(rate / 3600.0)
            record.notice_at = max(record.running_since, now) + self.scaled(delay)
            record.notice_seconds = self.scaled(SPOT_NOTICE_SECONDS)
        record.settle(now)

    def settle_all(self) -> None:
        """Advance every instance and forget those removed long enough ago (gone → 404)."""
        now = self.clock()
        linger = self.scaled(REMOVED_LINGER_SECONDS)
        gone = []
        for record in self.instances.values():
            self.settle(record)
            if record.removed_at is not None and now - record.removed_at >= linger:
                gone.append(record.id)
        for instance_id in gone:
            del self.instances[instance_id]

    def find(self, instance_id: str, *, status: int = 400) -> InstanceRecord:
        """The live record, settled to now; unknown or gone → RESOURCE_NOT_FOUND."""
        record = self.instances.get(instance_id)
        if record is not None:
            now = self.clock()
            self.settle(record)
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
        """The offer to create on: the named cluster, or any cluster with stock. A product
        with stock elsewhere but none in the named cluster is INSUFFICIENT_RESOURCE."""
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
            slot=self.next_ssh_port,
            ssh_password=token(self.rng, 16),
            terminal_password=token(self.rng, 16),
            ip=f"10.{self.rng.randrange(0, 256)}.{self.rng.randrange(0, 256)}.{self.rng.randrange(2, 255)}",
            **spec,
        )
        record.reclaim_seconds = self.scaled(RECLAIMING_SECONDS)
        error = self.pull_error(record)
        stages = []
        # Seen live: some creates sit in "pending" before "toCreate" (seeded share).
        if self.pending_rng.random() < self.switches.pendingRate:
            stages.append(("pending", self.phase(QUEUE_SECONDS)))
        stages += [
            ("toCreate", self.phase(QUEUE_SECONDS)),
            ("creating", self.phase(CREATING_SECONDS)),
            ("pulling", self.phase(catalog.pull_seconds(record.image_url))),
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

    def _repeated(self, record: InstanceRecord, action: str, underway: frozenset[str]) -> bool:
        """True when ``action`` is already under way and ``repeatActions`` makes a repeated
        POST act again (counted in ``record.actions``); False to judge it normally."""
        if record.status in underway and self.switches.repeatActions:
            record.actions[action] = record.actions.get(action, 0) + 1
            return True
        return False

    def start(self, instance_id: str) -> None:
        record = self.find(instance_id)
        repeated = self._repeated(record, "start", _STARTING)
        if record.status != "exited" and not repeated:
            raise self._invalid_change(record, "start")
        now = self.clock()
        error = self.pull_error(record)
        if error:
            stages = [
                ("toStart", self.phase(QUEUE_SECONDS)),
                ("pulling", self.phase(catalog.pull_seconds(record.image_url))),
            ]
            record.begin(now, stages, "exited", error)
        else:
            record.status_error = {"state": "", "message": ""}
            stages = [
                ("toStart", self.phase(QUEUE_SECONDS)),
                ("starting", self.phase(STARTING_SECONDS)),
            ]
            record.begin(now, stages, "running")

    def stop(self, instance_id: str) -> None:
        record = self.find(instance_id)
        stoppable = _STOPPABLE if self.switches.stopWhen == "any" else frozenset({"running"})
        repeated = self._repeated(record, "stop", _STOPPING)
        if record.status not in stoppable and not repeated:
            raise self._invalid_change(record, "stop")
        record.running_since = None
        record.clear_spot_notice()
        if record.is_spot:
            record.spot_status = ""  # a stopped spot instance is not being reclaimed
        stages = [
            ("toStop", self.phase(QUEUE_SECONDS)),
            ("stopping", self.phase(STOPPING_SECONDS)),
        ]
        record.begin(self.clock(), stages, "exited")

    def restart(self, instance_id: str) -> None:
        record = self.find(instance_id)
        repeated = self._repeated(record, "restart", _RESTARTING)
        if record.status != "running" and not repeated:
            raise self._invalid_change(record, "restart")
        record.restarts += 1
        record.running_since = None
        stages = [
            ("toRestart", self.phase(QUEUE_SECONDS)),
            ("restarting", self.phase(RESTARTING_SECONDS)),
        ]
        record.begin(self.clock(), stages, "running")

    def delete(self, instance_id: str) -> None:
        """Works in any state; stock is freed at once. Deleting twice is harmless."""
        record = self.find(instance_id)
        if self.switches.walletNotFound:
            raise ApiError(
                "WALLET_NOT_FOUND", f"wallet not found for the account of instance {record.id}"
            )
        if record.status in REMOVAL:
            return
        record.offer.stock += record.gpu_num
        record.running_since = None
        stages = [
            ("toRemove", self.phase(QUEUE_SECONDS)),
            ("removing", self.phase(REMOVING_SECONDS)),
        ]
        record.begin(self.clock(), stages, "removed")

    def edit(self, instance_id: str, ports: list[tuple[int, str]], expand_root_disk: int) -> None:
        record = self.find(instance_id)
        if record.status in REMOVAL:
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

    # -- spot, migration, utilisation ----------------------------------------------------------
    def reclaim_notice(self, instance_id: str, notice_seconds: float) -> InstanceRecord:
        """Force a reclaim notice now; reclaiming starts ``notice_seconds`` (scaled) later."""
        record = self.find(instance_id)
        if not record.is_spot:
            raise ApiError("REQUEST", f"instanceId: instance {instance_id} is not a spot instance")
        if not record.notify(self.clock(), self.scaled(notice_seconds)):
            raise self._invalid_change(record, "reclaim")
        return record

    def migrate(self, instance_id: str) -> None:
        """Move a running instance to a cluster with stock for its product; clears a notice."""
        record = self.find(instance_id)
        if record.status != "running":
            raise self._invalid_change(record, "migrate")
        product, here = record.product, record.cluster.id
        others = [cid for cid in product.clusters if cid != here]
        # A pending reclaim takes the current cluster's capacity; network volumes pin it.
        candidates = [] if record.network_storages else others
        if record.reclaim_at is None:
            candidates.append(here)
        target = next(
            (
                self.offers[(product.id, cid)]
                for cid in candidates
                if cid == here or self.offers[(product.id, cid)].stock >= record.gpu_num
            ),
            None,
        )
        if target is None:
            raise ApiError(
                "MIGRATE_INSUFFICIENT_RESOURCE",
                f"instanceId: no cluster has {record.gpu_num} x {product.name} ({product.id}) "
                "free to migrate to",
            )
        if target is not record.offer:
            record.offer.stock += record.gpu_num
            target.stock -= record.gpu_num
            record.offer = target
        record.clear_spot_notice()
        record.running_since = None
        record.begin(self.clock(), [("migrating", self.phase(MIGRATING_SECONDS))], "running")

    def set_utilization(self, instance_id: str, gpu: float | None) -> None:
        """Pin an instance's GPU utilisation (percent) from now on; None = default pattern."""
        record = self.find(instance_id)
        record.utilization.append((self.clock(), gpu))

    # -- network storage -----------------------------------------------------------------------
    def new_storage_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def storage_users(self, storage_id: str) -> list[str]:
        """Ids of live instances mounting a network volume."""
        users = []
        for record in self.instances.values():
            self.settle(record)
            if record.status not in REMOVAL and any(
                s["Id"] == storage_id for s in record.network_storages
            ):
                users.append(record.id)
        return users

    # -- registry auths and templates ----------------------------------------------------------
    def new_auth_id(self) -> str:
        return token(self.rng, 32, string.ascii_lowercase + string.digits)

    def new_template_id(self) -> str:
        while True:
            candidate = str(self.rng.randrange(10**9, 10**10))
            if candidate not in self.templates:
                return candidate

    def auth_in_use(self, auth_id: str) -> str | None:
        """What still uses a registry auth (a live instance or a template), if anything."""
        for record in self.instances.values():
            self.settle(record)
            if record.image_auth_id == auth_id and record.status not in REMOVAL:
                return f"instance {record.id}"
        for template in self.templates.values():
            if template.get("imageAuth") == auth_id:
                return f"template {template['Id']}"
        return None
