"""The Novita v1 endpoints of the sandbox: each handler validates its query or body like the
documented API, acts on the World (lock held by the caller) and returns the JSON answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import catalog
from .validate import (
    ApiError,
    check_object,
    check_port,
    get_bool,
    get_int,
    get_list,
    get_str,
    invalid,
    parse_port_spec,
    query_int,
    query_list,
    query_str,
)
from .world import World

API_PREFIX = "/gpu-instance/openapi/v1"
BILLING_MODES = ("onDemand", "monthly", "spot")

Query = dict[str, list[str]]
Handler = Callable[[World, Query, Any], Any]


# -- catalog ------------------------------------------------------------------------------------
def get_clusters(world: World, query: Query, body: Any) -> Any:
    return {"data": world.clusters_view()}


def get_products(world: World, query: Query, body: Any) -> Any:
    billing = query_str(query, "billingMethod", default="onDemand")
    if billing not in BILLING_MODES:
        raise invalid("billingMethod", f"must be one of {', '.join(BILLING_MODES)}")
    data = world.products_view(
        cluster_id=query_str(query, "clusterId"),
        product_name=query_str(query, "productName"),
        gpu_num=query_int(query, "gpuNum", minimum=0, maximum=8),
        billing_method=billing,
        min_cpu_per_gpu=query_int(query, "minCpuPerGpu", minimum=0),
        min_memory_per_gpu=query_int(query, "minMemoryPerGpu", minimum=0),
        min_rootfs_size=query_int(query, "minRootFSSize", minimum=0),
    )
    return {"data": data}


# -- instances ----------------------------------------------------------------------------------
CREATE_FIELDS = {
    "name", "productId", "gpuNum", "rootfsSize", "imageUrl", "imageAuth", "imageAuthId", "ports",
    "envs", "tools", "command", "entrypoint", "clusterId", "networkStorages", "networkId", "kind",
    "month", "billingMode", "autoRenew", "autoRenewMonth", "minCudaVersion",
    "localStorageMountPoint",
}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9-]*$")


def _envs(body: dict[str, Any], key: str = "envs", limit: int = 100) -> list[dict[str, str]]:
    envs = []
    for i, item in enumerate(get_list(body, key, max_items=limit)):
        where = f"{key}[{i}]"
        check_object(item, {"key", "value"}, where)
        name = get_str(item, "key", field=f"{where}.key", required=True, max_len=511)
        value = get_str(item, "value", field=f"{where}.value", max_len=4095, default="")
        envs.append({"key": name, "value": value})
    return envs


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = []
    for i, item in enumerate(get_list(body, "tools", max_items=15)):
        where = f"tools[{i}]"
        check_object(item, {"name", "port", "type", "describe"}, where)
        name = get_str(item, "name", field=f"{where}.name", required=True, max_len=255)
        raw_port = item.get("port")
        # The docs type tool ports as strings; accept a bare int too (as templates send it).
        if isinstance(raw_port, bool) or not isinstance(raw_port, str | int):
            raise invalid(f"{where}.port", "is required and must be a port number string")
        if isinstance(raw_port, str) and not raw_port.strip().isdigit():
            raise invalid(f"{where}.port", "must be a port number string like '8888'")
        kind = get_str(item, "type", field=f"{where}.type", default="http", choices=("tcp", "http"))
        port, kind = check_port(int(raw_port), kind or "http", f"{where}.port")
        tools.append({"name": name, "port": str(port), "type": kind})
    return tools


def _network_storages(body: dict[str, Any]) -> list[dict[str, str]]:
    storages = []
    for i, item in enumerate(get_list(body, "networkStorages", max_items=30)):
        where = f"networkStorages[{i}]"
        check_object(item, {"Id", "mountPoint"}, where)
        storage_id = get_str(item, "Id", field=f"{where}.Id", required=True, min_len=1, max_len=255)
        mount = get_str(item, "mountPoint", field=f"{where}.mountPoint", min_len=1, max_len=4095)
        storages.append({"Id": storage_id, "mountPoint": mount or "/network"})
    return storages


def create_instance(world: World, query: Query, body: Any) -> Any:
    check_object(body, CREATE_FIELDS)
    kind = get_str(body, "kind", required=True, choices=("gpu", "cpu"))
    if kind == "cpu":
        raise invalid("kind", "cpu instances are not offered by the sandbox; use gpu")
    name = get_str(body, "name", max_len=255, default="")
    if not _NAME.match(name):
        raise invalid("name", "may contain only letters, digits and hyphens")
    product_id = get_str(body, "productId", required=True, min_len=1, max_len=255)
    gpu_num = get_int(body, "gpuNum", required=True, minimum=1, maximum=8)
    rootfs = get_int(body, "rootfsSize", required=True, maximum=6144)
    rootfs = max(rootfs, 10)  # documented: values below 10 become 10
    image_url = get_str(body, "imageUrl", required=True, min_len=1, max_len=500)
    image_auth = get_str(body, "imageAuth", max_len=10239, default="")
    image_auth_id = get_str(body, "imageAuthId", max_len=255, default="")
    if image_auth_id and image_auth_id not in world.auths:
        raise ApiError(
            "RESOURCE_NOT_FOUND",
            f"imageAuthId: registry auth {image_auth_id!r} not found",
            metadata={"field": "imageAuthId"},
        )
    ports_spec = get_str(body, "ports", max_len=4095, default="")
    ports = parse_port_spec(ports_spec)
    tools = _tools(body)
    if len({p for p, _ in ports} | {int(t["port"]) for t in tools}) > 15:
        raise invalid("ports", "ports plus tools must be at most 15")
    envs = _envs(body)
    command = get_str(body, "command", max_len=2047, default="")
    entrypoint = get_str(body, "entrypoint", max_len=2047, default="")
    cluster_id = get_str(body, "clusterId", max_len=255, default="")
    storages = _network_storages(body)
    network_id = get_str(body, "networkId", max_len=255, default="")
    month = get_int(body, "month", minimum=0, maximum=36, default=0)
    billing = get_str(body, "billingMode", choices=BILLING_MODES, default="onDemand")
    if month > 0:
        billing = "monthly"  # documented: month > 0 forces monthly billing
    if billing == "monthly" and month == 0:
        raise invalid("month", "must be at least 1 for monthly billing")
    get_bool(body, "autoRenew")
    get_int(body, "autoRenewMonth", minimum=1, maximum=12)
    min_cuda = get_str(body, "minCudaVersion", max_len=16, default="")
    if min_cuda and not re.match(r"^\d+(\.\d+)*$", min_cuda):
        raise invalid("minCudaVersion", "must look like '12.4'")
    get_str(body, "localStorageMountPoint", max_len=4095)

    product = catalog.PRODUCTS_BY_ID.get(product_id)
    if product is not None and rootfs > product.max_rootfs:
        raise invalid("rootfsSize", f"must be at most the product's maxRootFS {product.max_rootfs}")
    offer = world.pick_offer(product_id, cluster_id, gpu_num)
    if billing not in offer.billing_methods:
        raise ApiError(
            "UNSUPPORTED_BILLING_MODE",
            f"billingMode: {product_id} in {offer.cluster.id} does not support {billing}",
            metadata={"field": "billingMode"},
        )
    if storages and not offer.cluster.support_network_storage:
        raise ApiError(
            "CUR_CLUSTER_NETWORK_STORAGE_NOT_SUPPORT",
            f"networkStorages: cluster {offer.cluster.id} does not support network storage",
            metadata={"field": "networkStorages"},
        )
    user, _, password = image_auth.partition(":")
    record = world.add_instance(
        {
            "name": name,
            "gpu_num": gpu_num,
            "rootfs_size": rootfs,
            "image_url": image_url,
            "image_auth_id": image_auth_id,
            "image_auth_ok": bool(user and password),
            "ports": ports,
            "envs": envs,
            "tools": tools,
            "command": command,
            "entrypoint": entrypoint,
            "billing_mode": billing,
            "month": month,
            "network_storages": storages,
            "network_id": network_id,
            "min_cuda_version": min_cuda,
        },
        offer,
    )
    return {"id": record.id}


def get_instance(world: World, query: Query, body: Any) -> Any:
    instance_id = query_str(query, "instanceId")
    if not instance_id:
        raise invalid("instanceId", "is required")
    # 404 here (not the documented 400): clients treat 404 from get as "gone".
    return world.detail(world.find(instance_id, status=404))


def list_instances(world: World, query: Query, body: Any) -> Any:
    page_size = query_int(query, "pageSize", minimum=1, maximum=100, default=10)
    page_num = query_int(query, "pageNum", minimum=0, default=1)
    name = (query_str(query, "name") or "").lower()
    product_name = (query_str(query, "productName") or "").lower()
    status = query_str(query, "status", max_len=63)
    world.settle_all()
    matches = [
        record
        for record in reversed(world.instances.values())  # newest first
        if (not name or name in record.name.lower())
        and (not product_name or product_name in record.product.name.lower())
        and (not status or record.status == status)
    ]
    first = max(page_num, 1) - 1  # pageNum 0 and 1 both mean the first page
    page = matches[first * page_size : (first + 1) * page_size]
    return {"instances": [world.list_item(r) for r in page], "total": len(matches)}


def _instance_id(body: Any, extra: set[str] | None = None) -> str:
    check_object(body, {"instanceId"} | (extra or set()))
    return get_str(body, "instanceId", required=True, min_len=1, max_len=255)


def start_instance(world: World, query: Query, body: Any) -> Any:
    world.start(_instance_id(body))
    return {}


def stop_instance(world: World, query: Query, body: Any) -> Any:
    world.stop(_instance_id(body))
    return {}


def restart_instance(world: World, query: Query, body: Any) -> Any:
    world.restart(_instance_id(body))
    return {}


def delete_instance(world: World, query: Query, body: Any) -> Any:
    world.delete(_instance_id(body))
    return {}


def edit_instance(world: World, query: Query, body: Any) -> Any:
    instance_id = _instance_id(body, {"ports", "expandRootDisk"})
    ports: list[tuple[int, str]] = []
    seen: set[int] = set()
    for i, item in enumerate(get_list(body, "ports", max_items=15)):
        where = f"ports[{i}]"
        check_object(item, {"port", "type"}, where)
        port = get_int(item, "port", field=f"{where}.port", required=True)
        kind = get_str(item, "type", field=f"{where}.type", required=True, choices=("tcp", "http"))
        ports.append(check_port(port, kind, f"{where}.port"))
        if port in seen:
            raise invalid(f"{where}.port", f"port {port} listed twice")
        seen.add(port)
    expand = get_int(body, "expandRootDisk", minimum=0, maximum=6144, default=0)
    world.edit(instance_id, ports, expand)
    return {}


# -- templates ----------------------------------------------------------------------------------
TEMPLATE_FIELDS = {
    "Id", "name", "readme", "logo", "type", "channel", "image", "imageAuth", "startCommand",
    "entrypoint", "rootfsSize", "ports", "envs", "tools", "minCudaVersion", "recommendCards",
}  # fmt: skip


def _template_body(world: World, body: Any, *, updating: bool) -> dict[str, Any]:
    check_object(body, {"template"})
    template = body.get("template")
    if template is None:
        raise invalid("template", "is required")
    check_object(template, TEMPLATE_FIELDS, "template")
    result: dict[str, Any] = {}
    if updating:
        result["Id"] = get_str(template, "Id", field="template.Id", required=True, min_len=1)
    elif "Id" in template:
        raise invalid("template.Id", "must not be set on create")
    result["name"] = get_str(
        template, "name", field="template.name", required=True, min_len=1, max_len=255
    )
    result["readme"] = get_str(
        template, "readme", field="template.readme", max_len=102400, default=""
    )
    result["logo"] = get_str(template, "logo", field="template.logo", max_len=2047, default="")
    result["type"] = get_str(
        template, "type", field="template.type", required=True, choices=("instance", "serverless")
    )
    result["channel"] = get_str(
        template, "channel", field="template.channel", required=True, choices=("private",)
    )
    result["image"] = get_str(
        template, "image", field="template.image", required=True, min_len=1, max_len=500
    )
    image_auth = get_str(template, "imageAuth", field="template.imageAuth", default="")
    if image_auth and image_auth not in world.auths:
        raise ApiError(
            "RESOURCE_NOT_FOUND",
            f"template.imageAuth: registry auth {image_auth!r} not found",
            metadata={"field": "template.imageAuth"},
        )
    result["imageAuth"] = image_auth
    result["startCommand"] = get_str(
        template, "startCommand", field="template.startCommand", max_len=2047, default=""
    )
    result["entrypoint"] = get_str(
        template, "entrypoint", field="template.entrypoint", max_len=2047, default=""
    )
    rootfs = get_int(
        template, "rootfsSize", field="template.rootfsSize", required=True, minimum=0, maximum=6144
    )
    result["rootfsSize"] = max(rootfs, 10)
    groups = []
    for i, group in enumerate(get_list(template, "ports", field="template.ports", max_items=2)):
        where = f"template.ports[{i}]"
        check_object(group, {"type", "ports"}, where)
        kind = get_str(group, "type", field=f"{where}.type", required=True, choices=("http", "tcp"))
        numbers = []
        for j, value in enumerate(get_list(group, "ports", field=f"{where}.ports", max_items=10)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise invalid(f"{where}.ports[{j}]", "must be an integer")
            numbers.append(check_port(value, kind, f"{where}.ports[{j}]")[0])
        groups.append({"type": kind, "ports": numbers})
    result["ports"] = groups
    result["envs"] = _envs(template, "envs")
    tools = []
    for i, item in enumerate(get_list(template, "tools", field="template.tools", max_items=15)):
        where = f"template.tools[{i}]"
        check_object(item, {"name", "describe", "port", "type"}, where)
        port = get_int(item, "port", field=f"{where}.port", required=True)
        kind = get_str(item, "type", field=f"{where}.type", default="http", choices=("http", "tcp"))
        tools.append(
            {
                "name": get_str(item, "name", field=f"{where}.name", required=True, max_len=255),
                "describe": get_str(item, "describe", field=f"{where}.describe", default=""),
                "port": check_port(port, kind or "http", f"{where}.port")[0],
                "type": kind,
            }
        )
    result["tools"] = tools
    result["minCudaVersion"] = get_str(
        template, "minCudaVersion", field="template.minCudaVersion", max_len=16, default=""
    )
    cards = []
    for i, item in enumerate(get_list(template, "recommendCards", field="template.recommendCards")):
        where = f"template.recommendCards[{i}]"
        check_object(item, {"gpuSpecId", "cardNum"}, where)
        cards.append(
            {
                "gpuSpecId": get_str(item, "gpuSpecId", field=f"{where}.gpuSpecId", required=True),
                "cardNum": get_int(
                    item, "cardNum", field=f"{where}.cardNum", minimum=1, maximum=8, default=1
                ),
            }
        )
    result["recommendCards"] = cards
    return result


def list_templates(world: World, query: Query, body: Any) -> Any:
    page_size = query_int(query, "pageSize", minimum=1, maximum=100, default=10)
    page_num = query_int(query, "pageNum", minimum=0, default=1)
    name = (query_str(query, "name") or "").lower()
    kind = query_str(query, "type")
    channels = query_list(query, "channel")
    for channel in channels:
        if channel not in ("private", "official", "community"):
            raise invalid("channel", "must be private, official or community")
    matches = [
        t
        for t in world.templates.values()
        if (not name or name in t["name"].lower())
        and (not kind or t["type"] == kind)
        and (not channels or t["channel"] in channels)
    ]
    first = max(page_num, 1) - 1
    page = matches[first * page_size : (first + 1) * page_size]
    return {"template": page, "pageSize": page_size, "pageNum": page_num, "total": len(matches)}


def _find_template(world: World, template_id: str, field: str) -> dict[str, Any]:
    template = world.templates.get(template_id)
    if template is None:
        raise ApiError(
            "TEMPLATE_NOT_FOUND",
            f"{field}: template {template_id!r} not found",
            metadata={"field": field},
        )
    return template


def get_template(world: World, query: Query, body: Any) -> Any:
    template_id = query_str(query, "templateId")
    if not template_id:
        raise invalid("templateId", "is required")
    return {"template": _find_template(world, template_id, "templateId")}


def create_template(world: World, query: Query, body: Any) -> Any:
    template = _template_body(world, body, updating=False)
    template["Id"] = world.new_template_id()
    template["createdAt"] = str(int(world.clock()))
    template["user"] = "sandbox-user"
    world.templates[template["Id"]] = template
    return {"templateId": template["Id"]}


def _own_template(world: World, template_id: str, field: str) -> dict[str, Any]:
    existing = _find_template(world, template_id, field)
    if existing["channel"] != "private":
        raise ApiError(
            "FORBIDDEN",
            f"{field}: template {template_id!r} is {existing['channel']}; only your private "
            "templates can be changed",
            metadata={"field": field},
        )
    return existing


def update_template(world: World, query: Query, body: Any) -> Any:
    template = _template_body(world, body, updating=True)
    existing = _own_template(world, template["Id"], "template.Id")
    template["createdAt"] = existing["createdAt"]
    template["user"] = existing.get("user", "sandbox-user")
    world.templates[template["Id"]] = template
    return {"templateId": template["Id"]}


def delete_template(world: World, query: Query, body: Any) -> Any:
    check_object(body, {"templateId"})
    template_id = get_str(body, "templateId", required=True, min_len=1, max_len=255)
    _own_template(world, template_id, "templateId")
    del world.templates[template_id]
    return {"templateId": template_id}


# -- registry auths -----------------------------------------------------------------------------
def list_auths(world: World, query: Query, body: Any) -> Any:
    return {"data": [dict(a) for a in world.auths.values()]}


def save_auth(world: World, query: Query, body: Any) -> Any:
    check_object(body, {"name", "username", "password"})
    name = get_str(body, "name", required=True, min_len=1, max_len=255)
    username = get_str(body, "username", required=True, min_len=1, max_len=511)
    password = get_str(body, "password", required=True, min_len=1, max_len=1024)
    auth_id = world.new_auth_id()
    world.auths[auth_id] = {"id": auth_id, "name": name, "username": username, "password": password}
    return {}


def delete_auth(world: World, query: Query, body: Any) -> Any:
    check_object(body, {"id"})
    auth_id = get_str(body, "id", required=True, min_len=1, max_len=255)
    if auth_id not in world.auths:
        raise ApiError(
            "RESOURCE_NOT_FOUND",
            f"id: registry auth {auth_id!r} not found",
            metadata={"field": "id"},
        )
    user = world.auth_in_use(auth_id)
    if user:
        raise ApiError("IMAGE_AUTH_IN_USE", f"id: registry auth {auth_id!r} is used by {user}")
    del world.auths[auth_id]
    return {}


#: (method, path relative to the API prefix) → handler.
ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/clusters"): get_clusters,
    ("GET", "/products"): get_products,
    ("POST", "/gpu/instance/create"): create_instance,
    ("GET", "/gpu/instance"): get_instance,
    ("GET", "/gpu/instances"): list_instances,
    ("POST", "/gpu/instance/start"): start_instance,
    ("POST", "/gpu/instance/stop"): stop_instance,
    ("POST", "/gpu/instance/restart"): restart_instance,
    ("POST", "/gpu/instance/delete"): delete_instance,
    ("POST", "/gpu/instance/edit"): edit_instance,
    ("GET", "/templates"): list_templates,
    ("GET", "/template"): get_template,
    ("POST", "/template/create"): create_template,
    ("POST", "/template/update"): update_template,
    ("POST", "/template/delete"): delete_template,
    ("GET", "/repository/auths"): list_auths,
    ("POST", "/repository/auth/save"): save_auth,
    ("POST", "/repository/auth/delete"): delete_auth,
}
PATHS: frozenset[str] = frozenset(path for _, path in ROUTES)
