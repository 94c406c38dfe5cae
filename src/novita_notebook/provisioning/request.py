"""What a create sends: the arguments validated into a CreateRequest (no HTTP), merged with
its template into a LaunchPlan, and turned into the API's body for one offer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..models import Cluster, Product
from ..options import CREATE, raise_problems
from ..options.create import DEFAULT_ROOTFS_GB
from ..validation import Problems, format_ports, merge_envs, parse_ports

if TYPE_CHECKING:  # pragma: no cover
    from .resources import Resources

#: Public PyTorch + JupyterLab image (CUDA 12) used when neither image nor template is given;
#: it starts JupyterLab on 8888 by itself, so only that port is exposed.
DEFAULT_IMAGE = "quay.io/jupyter/pytorch-notebook:cuda12-latest"
DEFAULT_IMAGE_PORTS: tuple[tuple[int, str], ...] = ((8888, "http"),)


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


def prepare_request(name: Any, gpu: Any = None, **options: Any) -> CreateRequest:
    """create()'s arguments, each parsed by its rule in options/create.py, then the rules
    between them; one ValidationError lists every problem. No HTTP."""
    given = CREATE.canonical({"name": name, "gpu": gpu, **options}, "create()")
    unknown = sorted(key for key in given if key not in CREATE or not CREATE[key].python)
    if unknown:
        raise ValidationError(f"create() does not accept {', '.join(unknown)}", field=unknown[0])
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for option in CREATE:
        if not option.python:
            continue
        raw = given.get(option.name)
        raw = option.default if raw is None else raw
        try:
            # A missing name is refused by the name's own rule, not taken as "not given".
            parse = option.kind.parse if option.name == "name" else option.parse
            values[option.name] = parse(raw, option.name)
        except ValidationError as error:
            problems.extend(error.problems or [(option.name, error.message)])
    checked_name = values.get("name")
    if checked_name is not None and values.get("unique_name") and len(checked_name) > 56:
        problems.append(
            ("name", "must be at most 56 characters with unique_name=True (7 are added)")
        )
    if given.get("image") is not None and given.get("template") is not None:
        problems.append(("image", "give either image or template, not both (the template has one)"))
    raise_problems(problems)
    storages = (values["network_storages"] or []) + (values["volumes"] or [])
    return CreateRequest(
        name=checked_name or "",
        gpu=values["gpu"],
        gpu_num=values["gpu_num"],
        billing=values["billing"],
        image=values["image"],
        template=values["template"],
        region=values["region"],
        regions=values["regions"],
        max_price=values["max_price"],
        rootfs_gb=values["rootfs_gb"],
        ports=values["ports"],
        envs=values["envs"] or [],
        command=values["command"],
        entrypoint=values["entrypoint"],
        image_auth_id=values["image_auth_id"],
        network_storages=storages,
        unique_name=values["unique_name"],
        wait=values["wait"],
        wait_until=values["wait_until"],
        timeout=values["timeout"],
        progress=values["progress"],
        prefer=values["prefer"],
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


def instance_body(
    *,
    name: str,
    product_id: str,
    image: str,
    billing: str,
    gpu_num: int = 1,
    rootfs_gb: int | None = None,
    cluster_id: str | None = None,
    image_auth_id: str | None = None,
    ports: Iterable[tuple[int, str]] = (),
    envs: Iterable[tuple[str, str]] = (),
    command: str | None = None,
    entrypoint: str | None = None,
    network_storages: Iterable[dict[str, str]] = (),
) -> dict[str, Any]:
    """The API's create body, the one builder of it (a create, a batch's and the guard's
    recreate): what is not given is left out, the disk is ``DEFAULT_ROOTFS_GB`` unless told."""
    body: dict[str, Any] = {
        "name": name,
        "productId": product_id,
        "gpuNum": gpu_num,
        "rootfsSize": DEFAULT_ROOTFS_GB if rootfs_gb is None else rootfs_gb,
        "imageUrl": image,
        "kind": "gpu",
        "billingMode": billing,
    }
    if cluster_id:
        body["clusterId"] = cluster_id
    if billing == "monthly":
        body["month"] = 1
    ports_text = format_ports(dict.fromkeys(ports))
    envs_list = [{"key": k, "value": v} for k, v in envs]
    storages = list(network_storages)
    optional = {
        "imageAuthId": image_auth_id,
        "ports": ports_text,
        "envs": envs_list,
        "command": command,
        "entrypoint": entrypoint,
        "networkStorages": storages,
    }
    body.update({key: value for key, value in optional.items() if value})
    return body


def create_body(
    request: CreateRequest, plan: LaunchPlan, name: str, cluster: Cluster, product: Product
) -> dict[str, Any]:
    """What a create sends for one offer: the API's body, rootfs fitted to the product."""
    rootfs = plan.rootfs_gb if plan.rootfs_gb is not None else plan.default_rootfs_gb
    if product.max_rootfs and plan.rootfs_gb is None:
        rootfs = min(rootfs, product.max_rootfs)
    if product.min_rootfs:
        rootfs = max(rootfs, product.min_rootfs)
    return instance_body(
        name=name,
        product_id=product.id,
        image=plan.image,
        billing=request.billing,
        gpu_num=request.gpu_num,
        rootfs_gb=rootfs,
        cluster_id=cluster.id,
        image_auth_id=plan.image_auth_id,
        ports=plan.ports,
        envs=plan.envs,
        command=plan.command,
        entrypoint=plan.entrypoint,
        network_storages=request.network_storages,
    )


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
