"""What a create sends: the arguments validated into a CreateRequest (no HTTP), merged with
its template into a LaunchPlan, and turned into the API's body for one offer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..models import Cluster, Product
from ..validation import (
    MAX_COMMAND,
    WAIT_TARGETS,
    Problems,
    check_billing,
    check_gpu_num,
    check_image,
    check_max_price,
    check_name,
    check_progress,
    check_regions,
    check_rootfs,
    check_text,
    format_ports,
    merge_envs,
    parse_envs,
    parse_network_storages,
    parse_ports,
)
from .offers import PREFER

if TYPE_CHECKING:  # pragma: no cover
    from .resources import Resources

#: Public PyTorch + JupyterLab image (CUDA 12) used when neither image nor template is given;
#: it starts JupyterLab on 8888 by itself, so only that port is exposed.
DEFAULT_IMAGE = "quay.io/jupyter/pytorch-notebook:cuda12-latest"
DEFAULT_IMAGE_PORTS: tuple[tuple[int, str], ...] = ((8888, "http"),)
#: The first 60 GB of container disk are free on Novita.
DEFAULT_ROOTFS_GB = 60


@dataclass
class CreateRequest:
    """Everything create() was asked for, validated and normalised (no HTTP involved)."""

    name: str
    gpu: str | None
    gpu_num: int
    billing: str
    image: str | None
    template: str | None
    region: str | None
    regions: Sequence[str] | Mapping[str, int] | None
    max_price: float | None
    rootfs_gb: int | None
    ports: list[tuple[int, str]] | None
    envs: list[tuple[str, str]]
    command: str | None
    entrypoint: str | None
    image_auth_id: str | None
    network_storages: list[dict[str, str]]  # {"Id": volume id OR name, "mountPoint"}
    unique_name: bool
    wait: bool
    wait_until: str
    timeout: float | None
    progress: Callable[..., Any] | str | None = None
    prefer: str = "price"


def parse_volumes(value: Any, problems: Problems) -> list[dict[str, str]]:
    """``volumes=``: names or ids, ``(volume, mount_point)`` pairs, ``"volume:/path"`` or dicts
    with name/id and mount_point; the mount point defaults to ``/network``. The shapes are
    validation's network-storage entries, with the volume's name allowed in place of its id."""
    if value is None:
        return []
    items = [value] if isinstance(value, str | Mapping | tuple) else value
    if not isinstance(items, Iterable):
        problems.add("volumes", f"must be a list of volume names or ids, got {value!r}")
        return []
    shaped: list[Any] = []
    for item in items:
        if isinstance(item, str) and ":/" in item:
            item = tuple(item.split(":", 1))
        elif isinstance(item, Mapping) and "name" in item:
            item = {**item, "Id": item["name"]}
        shaped.append(item)
    found = Problems()
    entries = parse_network_storages(shaped, found)
    for _field, rule in found.items:
        problems.add("volumes", rule)
    return [{**entry, "Id": entry["Id"].strip()} for entry in entries]


def prepare_request(
    name: Any,
    gpu: Any = None,
    *,
    gpu_num: Any = 1,
    image: Any = None,
    template: Any = None,
    region: Any = None,
    regions: Any = None,
    billing: Any = "onDemand",
    max_price: Any = None,
    rootfs_gb: Any = None,
    ports: Any = None,
    envs: Any = None,
    command: Any = None,
    entrypoint: Any = None,
    image_auth_id: Any = None,
    network_storages: Any = None,
    unique_name: bool = False,
    wait: bool = False,
    wait_until: str = "running",
    timeout: float | None = None,
    progress: Callable[..., Any] | str | None = None,
    prefer: Any = "price",
    volumes: Any = None,
) -> CreateRequest:
    """Check every rule that needs no API call; raise one ValidationError listing them all."""
    problems = Problems()
    checked_name = check_name(name, problems)
    if checked_name is not None and unique_name and len(checked_name) > 56:
        problems.add("name", "must be at most 56 characters with unique_name=True (7 are added)")
    if gpu is not None and (not isinstance(gpu, str) or not gpu.strip()):
        problems.add("gpu", f"must be a GPU name like 'RTX 4090' or '4090', got {gpu!r}")
    checked_gpu_num = check_gpu_num(gpu_num, problems)
    checked_billing = check_billing(billing, problems)
    checked_image = check_image(image, problems)
    if image is not None and template is not None:
        problems.add("image", "give either image or template, not both (the template has one)")
    if template is not None and (not isinstance(template, str) or not template.strip()):
        problems.add("template", f"must be a template id or name, got {template!r}")
    checked_rootfs = check_rootfs(rootfs_gb, problems) if rootfs_gb is not None else None
    checked_ports = parse_ports(ports, problems) if ports is not None else None
    checked_envs = parse_envs(envs, problems)
    checked_command = check_text(command, problems, "command", max_len=MAX_COMMAND)
    checked_entrypoint = check_text(entrypoint, problems, "entrypoint", max_len=MAX_COMMAND)
    checked_price = check_max_price(max_price, problems)
    if image_auth_id is not None and (not isinstance(image_auth_id, str) or not image_auth_id):
        problems.add("image_auth_id", "must be a registry auth id or name")
    storages = parse_network_storages(network_storages, problems) + parse_volumes(volumes, problems)
    if prefer not in PREFER:
        problems.add("prefer", f"must be one of {', '.join(map(repr, PREFER))}, got {prefer!r}")
    if region is not None and (not isinstance(region, str) or not region.strip()):
        problems.add("region", f"must be a region name like 'AS-SGP-02', got {region!r}")
    check_regions(regions, problems)
    for flag_name, flag in (("unique_name", unique_name), ("wait", wait)):
        if not isinstance(flag, bool):
            problems.add(flag_name, f"must be True or False, got {flag!r}")
    if wait_until not in WAIT_TARGETS:
        problems.add("wait_until", f"must be one of {', '.join(WAIT_TARGETS)}, got {wait_until!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        problems.add("timeout", f"must be a positive number of seconds, got {timeout!r}")
    try:
        check_progress(progress)
    except ValidationError as error:
        problems.add("progress", error.message.removeprefix("progress "))
    problems.raise_if_any()
    return CreateRequest(
        name=checked_name or "",
        gpu=gpu.strip() if isinstance(gpu, str) else None,
        gpu_num=checked_gpu_num or 1,
        billing=checked_billing or "onDemand",
        image=checked_image,
        template=template.strip() if isinstance(template, str) else None,
        region=region,
        regions=regions,
        max_price=checked_price,
        rootfs_gb=checked_rootfs,
        ports=checked_ports,
        envs=checked_envs,
        command=checked_command,
        entrypoint=checked_entrypoint,
        image_auth_id=image_auth_id,
        network_storages=storages,
        unique_name=bool(unique_name),
        wait=bool(wait),
        wait_until=wait_until,
        timeout=timeout,
        progress=progress,
        prefer=prefer if prefer in PREFER else "price",
    )


@dataclass
class LaunchPlan:
    """The create request merged with its template: what every candidate's body shares."""

    image: str
    image_auth_id: str | None
    ports: list[tuple[int, str]]
    envs: list[tuple[str, str]]
    command: str | None
    entrypoint: str | None
    rootfs_gb: int | None  # asked explicitly (a product that cannot hold it is skipped)
    default_rootfs_gb: int  # fitted into each product's bounds


def create_body(
    request: CreateRequest, plan: LaunchPlan, name: str, cluster: Cluster, product: Product
) -> dict[str, Any]:
    """What a create sends for one offer: the API's body, rootfs fitted to the product."""
    rootfs = plan.rootfs_gb if plan.rootfs_gb is not None else plan.default_rootfs_gb
    if product.max_rootfs and plan.rootfs_gb is None:
        rootfs = min(rootfs, product.max_rootfs)
    if product.min_rootfs:
        rootfs = max(rootfs, product.min_rootfs)
    body: dict[str, Any] = {
        "name": name,
        "productId": product.id,
        "gpuNum": request.gpu_num,
        "rootfsSize": rootfs,
        "clusterId": cluster.id,
        "imageUrl": plan.image,
        "kind": "gpu",
        "billingMode": request.billing,
    }
    if request.billing == "monthly":
        body["month"] = 1
    if plan.image_auth_id:
        body["imageAuthId"] = plan.image_auth_id
    if plan.ports:
        body["ports"] = format_ports(plan.ports)
    if plan.envs:
        body["envs"] = [{"key": k, "value": v} for k, v in plan.envs]
    if plan.command:
        body["command"] = plan.command
    if plan.entrypoint:
        body["entrypoint"] = plan.entrypoint
    if request.network_storages:
        body["networkStorages"] = request.network_storages
    return body


def launch_plan(request: CreateRequest, resources: Resources) -> LaunchPlan:
    """Merge the template (if any) with the request; check the registry auth exists."""
    image, ports, envs = request.image, request.ports, request.envs
    command, entrypoint = request.command, request.entrypoint
    default_rootfs = DEFAULT_ROOTFS_GB
    auth_id: str | None = None
    if request.template is not None:
        chosen = resources.find_template(request.template)
        image = chosen.image
        if ports is None:
            ports = [(port, kind) for port, kind in chosen.flat_ports]
        envs = merge_envs([(e.key, e.value) for e in chosen.envs], envs)
        command = command if command is not None else chosen.start_command
        entrypoint = entrypoint if entrypoint is not None else chosen.entrypoint
        default_rootfs = chosen.rootfs_size or DEFAULT_ROOTFS_GB
        if chosen.image_auth:
            auth_id = resources.find_registry_auth(
                chosen.image_auth, field="template", owner=f"template {chosen.name!r}"
            ).id
    if request.image_auth_id is not None:
        auth_id = resources.find_registry_auth(request.image_auth_id, field="image_auth_id").id
    if image is None:
        image = DEFAULT_IMAGE
        if ports is None:
            ports = list(DEFAULT_IMAGE_PORTS)
    problems = Problems()
    checked = parse_ports(ports or [], problems, field="ports")
    problems.raise_if_any()
    return LaunchPlan(
        image=image,
        image_auth_id=auth_id,
        ports=checked,
        envs=envs,
        command=command,
        entrypoint=entrypoint,
        rootfs_gb=request.rootfs_gb,
        default_rootfs_gb=default_rootfs,
    )
