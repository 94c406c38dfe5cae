"""Typed models of what the Novita v1 API returns (products, regions, instances, templates),
built from its dicts by the rules of ``parsing``; Instance handles act through their client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .money import format_money, price_is_estimate
from .parsing import (
    BILLED_STATUSES,
    GONE_STATUSES,
    NO_DICT,
    PHASES,
    STATUS_ORDER,
    TERMINAL_STATUSES,
    MaskedRaw,
    RawSource,
    StatusError,
    error_is_failure,
    fast_int,
    fast_time,
    gpu_model_of,
    listing_fields,
    node_max_rootfs,
    parse_int,
    parse_price,
    parse_ssh_command,
    parse_time,
    phase_of,
    region_code,
    vram_gb_of,
)

# The parsing rules live in .parsing; what other modules import from here is listed too.
__all__ = [
    "BILLED_STATUSES",
    "GONE_STATUSES",
    "PHASES",
    "STATUS_ORDER",
    "TERMINAL_STATUSES",
    "Cluster",
    "Env",
    "Instance",
    "InstanceActions",
    "PortMapping",
    "Product",
    "RegistryAuth",
    "StatusChange",
    "StatusError",
    "Template",
    "TemplatePort",
    "gpu_model_of",
    "listing_fields",
    "parse_int",
    "parse_price",
    "parse_time",
    "phase_of",
    "region_code",
    "set_instance_eta",
    "set_instance_html",
    "vram_gb_of",
]

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """A region (Novita calls it a cluster): ``id`` like ``as-sgp-2``, ``name`` like ``AS-SGP-02``."""

    id: str
    name: str
    available_gpu_types: tuple[str, ...] = ()
    support_network_storage: bool = False
    support_instance_network: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Cluster:
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            available_gpu_types=tuple(str(g) for g in data.get("availableGpuType") or ()),
            support_network_storage=bool(data.get("supportNetworkStorage", False)),
            support_instance_network=bool(data.get("supportInstanceNetwork", False)),
        )


@dataclass(frozen=True)
class Product:
    """One GPU product as listed (one entry per product and region when the API splits them).
    ``available`` is what the listing said of the entry: from a listing filtered by
    ``clusterId`` it is that region's stock; an entry of an unfiltered listing covers all its
    regions, so its split copies each carry the entry's answer ("somewhere"), not their
    region's. ``Catalog`` reads per-region stock only from filtered listings."""

    id: str
    name: str
    cpu_per_gpu: int | None
    memory_per_gpu: int | None
    disk_per_gpu: int | None
    available: bool  # see the class docstring: per region only from a clusterId listing
    min_rootfs: int | None
    max_rootfs: int | None
    regions: tuple[str, ...]  # region codes, suffix stripped
    price: float | None  # on-demand USD per GPU-hour
    spot_price: float | None  # USD per GPU-hour
    monthly_prices: tuple[tuple[int, float], ...] = ()  # (months, USD per GPU-month)
    billing_methods: tuple[str, ...] = ()
    inventory_state: str | None = None  # none | low | normal | high
    gpu_model: str = ""
    vram_gb: int | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Product:
        name = str(data.get("name", ""))
        monthly = []
        for item in data.get("monthlyPrice") or ():
            price = parse_price(item.get("price")) if isinstance(item, dict) else None
            months = parse_int(item.get("month")) if isinstance(item, dict) else None
            if price is not None and months is not None:
                monthly.append((months, price))
        inventory = data.get("inventoryState")
        available = bool(data.get("availableDeploy", False)) and inventory != "none"
        return cls(
            id=str(data.get("id", "")),
            name=name,
            cpu_per_gpu=parse_int(data.get("cpuPerGpu")),
            memory_per_gpu=parse_int(data.get("memoryPerGpu")),
            disk_per_gpu=parse_int(data.get("diskPerGpu")),
            available=available,
            min_rootfs=parse_int(data.get("minRootFS")),
            max_rootfs=parse_int(data.get("maxRootFS")),
            regions=tuple(region_code(str(r)) for r in data.get("regions") or ()),
            price=parse_price(data.get("price")),
            spot_price=parse_price(data.get("spotPrice")),
            monthly_prices=tuple(monthly),
            billing_methods=tuple(str(b) for b in data.get("billingMethods") or ()),
            inventory_state=str(inventory) if inventory is not None else None,
            gpu_model=gpu_model_of(name),
            vram_gb=vram_gb_of(name),
        )

    def price_for(self, billing: str) -> float | None:
        """USD per GPU-hour for a billing method (monthly → the 1-month price / 730 h)."""
        if billing == "spot":
            return self.spot_price
        if billing == "monthly":
            one_month = [p for months, p in self.monthly_prices if months == 1]
            return one_month[0] / 730.0 if one_month else None
        return self.price


@dataclass(frozen=True)
class PortMapping:
    port: int
    type: str  # "http" | "tcp"
    endpoint: str | None = None


@dataclass(frozen=True)
class Env:
    key: str
    value: str


class InstanceActions(Protocol):
    """What an Instance handle needs from whoever it is bound to (the client satisfies it):
    models never import the client."""

    def instance(self, id_or_name: str) -> Instance: ...
    def start(self, id_or_name: str) -> Any: ...
    def stop(self, id_or_name: str) -> Any: ...
    def restart(self, id_or_name: str) -> Any: ...
    def delete(self, id_or_name: str) -> Any: ...
    def wait(self, instance: Any, until: str = "running", **kwargs: Any) -> Any: ...


# The HTML card of an Instance is drawn by views.instance_card; the package registers it at
# import (novita_notebook/__init__.py), so models never import views.
_instance_html: Callable[[Instance], str] | None = None


def set_instance_html(render: Callable[[Instance], str] | None) -> None:
    """Register the function drawing an Instance's HTML card (``_repr_html_``)."""
    global _instance_html
    _instance_html = render


# Instance.eta comes from waiting/ (the phase history and live waits), registered when the
# waiting package loads, so models never import it.
_instance_eta: Callable[[Instance], float | None] | None = None


def set_instance_eta(estimate: Callable[[Instance], float | None] | None) -> None:
    """Register the function answering ``Instance.eta``."""
    global _instance_eta
    _instance_eta = estimate


@dataclass
class Instance:
    """A GPU instance with its connection details. Handles returned by the client can act:
    ``inst.refresh()``, ``inst.stop()``, ``inst.start()``, ``inst.delete()``, ``inst.wait()``.

    The SSH password is kept (``ssh_password``) for the user to read but is never shown in
    repr, str or HTML.
    """

    id: str
    name: str
    status: str
    cluster_id: str | None = None
    region: str | None = None  # cluster name, e.g. AS-SGP-02
    product_id: str | None = None
    product_name: str | None = None
    gpu_num: int | None = None
    cpu_num: int | None = None
    memory_gb: int | None = None
    image_url: str | None = None
    image_auth_id: str | None = None
    command: str | None = None
    entrypoint: str | None = None
    rootfs_size: int | None = None
    billing_mode: str | None = None
    port_mappings: tuple[PortMapping, ...] = ()
    envs: tuple[Env, ...] = ()
    status_error: StatusError | None = None
    ssh_command: str | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None
    ssh_running: bool | None = None
    jupyter_url: str | None = None
    jupyter_running: bool | None = None
    web_terminal_url: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    spot_status: str | None = None  # "" / running / notified / reclaiming / terminated
    spot_reclaim_time: datetime | None = None  # when reclaiming starts; None: no notice
    max_rootfs_size: int | None = None  # GB the root disk may grow to (get-instance's node)
    price_per_hour: float | None = None  # USD for the whole instance (all GPUs); filled by client
    fallback_report: Any = None  # provisioning.FallbackReport when created by Novita.create
    ssh_password: str | None = field(default=None, repr=False, compare=False)
    raw: dict[str, Any] = field(default=MaskedRaw(), repr=False, compare=False)
    _client: InstanceActions | None = field(default=None, repr=False, compare=False)

    # -- parsing -------------------------------------------------------------------------------
    @classmethod
    def from_api(cls, data: dict[str, Any], client: InstanceActions | None = None) -> Instance:
        # Written for speed: one bound ``get``, fast paths for values already of the right
        # type, and the fields dict becomes the new object's __dict__ (what the generated
        # __init__ would do, field by field, for 40 keyword arguments, was a fifth of the
        # parse). The listed fields come from listing_fields, their one home.
        # tests/test_models.py checks that every field is set and that the result
        # equals the constructor's.
        get = data.get
        fields = listing_fields(data)
        ssh = get("connectComponentSSH") or NO_DICT
        jupyter = get("connectComponentJupyter") or NO_DICT
        terminal = get("connectComponentWebTerminal") or NO_DICT
        host, port = parse_ssh_command(fields["ssh_command"])
        mappings = get("portMappings")
        env_items = get("envs")
        node = get("node")
        self = object.__new__(cls)
        fields.update(
            image_auth_id=get("imageAuthId") or None,
            command=get("command") or None,
            entrypoint=get("entrypoint") or None,
            cpu_num=fast_int(get("cpuNum")),
            memory_gb=fast_int(get("memory")),
            rootfs_size=fast_int(get("rootfsSize")),
            port_mappings=_parse_ports(mappings) if mappings else (),
            envs=_parse_envs(env_items) if env_items else (),
            ssh_host=host,
            ssh_port=port,
            ssh_running=ssh.get("isRunning") if ssh else None,
            jupyter_running=jupyter.get("isRunning") if jupyter else None,
            web_terminal_url=terminal.get("address") or None,
            spot_status=get("spotStatus") or None,
            spot_reclaim_time=fast_time(get("spotReclaimTime")),
            max_rootfs_size=node_max_rootfs(node) if node else None,
            price_per_hour=None,
            fallback_report=None,
            ssh_password=ssh.get("password") or get("sshPassword") or None,
            _raw_source=RawSource(data),
            _client=client,
        )
        self.__dict__ = fields
        return self

    # -- derived -------------------------------------------------------------------------------
    @property
    def phase(self) -> str:
        return phase_of(self.status, self.status_error)

    @property
    def failed(self) -> bool:
        """A statusError on an instance that came to rest (``parsing.error_is_failure``)."""
        return error_is_failure(self.status, self.status_error)

    @property
    def warning(self) -> StatusError | None:
        """A statusError that is not (yet) a failure: the instance is on its way or running."""
        error = self.status_error
        return error if error is not None and error.is_failure and not self.failed else None

    @property
    def price_estimated(self) -> bool:
        """``price_per_hour`` rests on a guess (monthly, or several GPUs: money.py)."""
        return price_is_estimate(self.billing_mode, self.gpu_num)

    @property
    def http_endpoints(self) -> list[str]:
        return [p.endpoint for p in self.port_mappings if p.type == "http" and p.endpoint]

    @property
    def eta(self) -> float | None:
        """Expected seconds until this instance is running, or None when it is not on its way
        (running, stopped, failed...). From a wait or watcher following it when there is
        one, else from the phase history of its product, region and image (the documented
        times when there is none yet). Computed when read; no HTTP call."""
        if _instance_eta is None or self.failed:
            return None
        try:
            value = _instance_eta(self)
        except Exception:  # noqa: BLE001 - an estimate must never break a display
            return None
        return None if value is None else float(value)

    # -- display -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        price = (
            f" {format_money(self.price_per_hour, per_hour=True, estimate=self.price_estimated)}"
            if self.price_per_hour is not None
            else ""
        )
        where = f" in {self.region}" if self.region else ""
        product = f" {self.product_name}" if self.product_name else ""
        gpus = f" x{self.gpu_num}" if self.gpu_num and self.gpu_num > 1 else ""
        return f"<Instance {self.name!r} {self.id} {self.status}{where}{product}{gpus}{price}>"

    def _repr_html_(self) -> str:
        if _instance_html is None:
            from html import escape  # the standard library's, not ours

            return f"<pre>{escape(repr(self))}</pre>"
        return _instance_html(self)

    # -- actions (need a client) ---------------------------------------------------------------
    def _require_client(self) -> InstanceActions:
        if self._client is None:
            from .errors import ValidationError

            raise ValidationError(
                "this Instance is not bound to a client; use Novita().instance(id)",
                field="instance",
            )
        return self._client

    def refresh(self) -> Instance:
        """Fetch the latest state from the API and return it (a new Instance)."""
        fresh = self._require_client().instance(self.id)
        fresh.fallback_report = self.fallback_report
        return fresh

    def start(self) -> Instance:
        """Start it (nothing to do when already running); returns the client's answer."""
        return self._require_client().start(self.id)

    def stop(self) -> Instance:
        """Stop it (nothing to do when already stopped); returns the client's answer."""
        return self._require_client().stop(self.id)

    def restart(self) -> Instance:
        return self._require_client().restart(self.id)

    def delete(self) -> Instance:
        """Delete it, as ``Novita.delete``: the Instance, ``removed`` once gone (idempotent)."""
        return self._require_client().delete(self.id)

    def wait(self, until: str = "running", **kwargs: Any) -> Instance:
        return self._require_client().wait(self, until=until, **kwargs)


def _parse_ports(items: Any) -> tuple[PortMapping, ...]:
    ports = []
    for item in items:
        if isinstance(item, dict):
            port = fast_int(item.get("port"))
            if port is not None:
                ports.append(
                    PortMapping(
                        port=port,
                        type=str(item.get("type") or "tcp"),
                        endpoint=item.get("endpoint") or None,
                    )
                )
    return tuple(ports)


def _parse_envs(items: Any) -> tuple[Env, ...]:
    return tuple(
        Env(str(e.get("key", "")), str(e.get("value", ""))) for e in items if isinstance(e, dict)
    )


@dataclass(frozen=True)
class TemplatePort:
    type: str
    ports: tuple[int, ...]


@dataclass(frozen=True)
class Template:
    """A template. The API spells its id ``Id``; ``image_auth`` is a registry-auth *id*."""

    id: str
    name: str
    image: str
    channel: str | None = None
    type: str | None = None
    image_auth: str | None = None
    start_command: str | None = None
    entrypoint: str | None = None
    rootfs_size: int | None = None
    ports: tuple[TemplatePort, ...] = ()
    envs: tuple[Env, ...] = ()
    readme: str | None = None
    min_cuda_version: str | None = None
    created_at: datetime | None = None

    def __repr__(self) -> str:
        """``<Template 'my-pytorch' (tpl-1) pytorch/pytorch:2.1 private, ports 8888/http>``:
        what it is and what it runs; no env values (they may hold tokens)."""
        channel = f" {self.channel}" if self.channel else ""
        ports = ", ".join(f"{n}/{p.type}" for p in self.ports for n in p.ports)
        ports = f", ports {ports}" if ports else ""
        return f"<Template {self.name!r} ({self.id}) {self.image}{channel}{ports}>"

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Template:
        ports = []
        for group in data.get("ports") or ():
            if not isinstance(group, dict):
                continue
            numbers = tuple(
                p for p in (parse_int(x) for x in group.get("ports") or ()) if p is not None
            )
            ports.append(TemplatePort(str(group.get("type") or "tcp"), numbers))
        return cls(
            id=str(data.get("Id") or data.get("id") or ""),
            name=str(data.get("name") or ""),
            image=str(data.get("image") or ""),
            channel=data.get("channel") or None,
            type=data.get("type") or None,
            image_auth=data.get("imageAuth") or None,
            start_command=data.get("startCommand") or None,
            entrypoint=data.get("entrypoint") or None,
            rootfs_size=parse_int(data.get("rootfsSize")),
            ports=tuple(ports),
            envs=_parse_envs(data.get("envs") or ()),
            readme=data.get("readme") or None,
            min_cuda_version=data.get("minCudaVersion") or None,
            created_at=parse_time(data.get("createdAt") or data.get("createTime")),
        )

    @property
    def flat_ports(self) -> list[tuple[int, str]]:
        """Grouped ports flattened: ``[(8888, "http"), (22, "tcp")]``."""
        return [(port, group.type) for group in self.ports for port in group.ports]


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for a private registry. The password is kept but never shown."""

    id: str
    name: str
    username: str
    password: str = field(default="", repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> RegistryAuth:
        return cls(
            id=str(data.get("id") or data.get("Id") or ""),
            name=str(data.get("name") or ""),
            username=str(data.get("username") or ""),
            password=str(data.get("password") or ""),
        )


@dataclass(frozen=True)
class StatusChange:
    """One observed status change of an instance (watcher events, webhook notifications)."""

    instance_id: str
    name: str
    old_status: str | None  # None the first time an instance is seen
    new_status: str
    time: datetime
    instance: Instance | None = field(default=None, repr=False, compare=False)

    @property
    def phase(self) -> str:
        if self.instance is not None:
            return self.instance.phase
        return phase_of(self.new_status)
