"""The Novita v1 endpoints of the sandbox: each handler validates its query or body like the
documented API, acts on the World (lock held by the caller) and returns the JSON answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import catalog
from .metrics import get_metrics
from .storage import STORAGE_ROUTES, storages_cluster
from .templates import TEMPLATE_ROUTES
from .validate import (
    ApiError,
    check_object,
    check_port,
    get_bool,
    get_int,
    get_list,
    get_str,
    invalid,
    page_window,
    parse_port_spec,
    query_int,
    query_str,
    read_envs,
)
from .world import World

API_PREFIX = "/gpu-instance/openapi/v1"
OPENAPI_PREFIX = "/openapi/v1"  # billing namespace, where instance metrics live
BILLING_MODES = ("onDemand", "monthly", "spot")

Query = dict[str, list[str]]
Handler = Callable[[World, Query, Any], Any]


# -- catalog ------------------------------------------------------------------------------------
def get_clusters(world: World, query: Query, body: Any) -> Any:
    return {"data": world.clusters_view()}


def get_products(world: World, query: Query, body: Any) -> Any:
    # Documented default onDemand: an omitted billingMethod lists onDemand-capable products.
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


def _billing(body: dict[str, Any]) -> tuple[str, int]:
    month = get_int(body, "month", minimum=0, maximum=36, default=0)
    billing = get_str(body, "billingMode", choices=BILLING_MODES, default="onDemand")
    if month > 0:
        billing = "monthly"  # documented: month > 0 forces monthly billing
    if billing == "monthly" and month == 0:
        raise invalid("month", "must be at least 1 for monthly billing")
    get_bool(body, "autoRenew")
    get_int(body, "autoRenewMonth", minimum=1, maximum=12)
    return billing, month


def _create_spec(world: World, body: Any) -> dict[str, Any]:
    """The validated create body, as the fields of an InstanceRecord (plus product/cluster)."""
    check_object(body, CREATE_FIELDS)
    kind = get_str(body, "kind", required=True, choices=("gpu", "cpu"))
    if kind == "cpu":
        raise invalid("kind", "cpu instances are not offered by the sandbox; use gpu")
    # The docs: a string of 0-255 characters, nothing more (only the MCP server restricts
    # names to letters, digits and hyphens).
    name = get_str(body, "name", max_len=255, default="")
    product_id = get_str(body, "productId", required=True, min_len=1, max_len=255)
    gpu_num = get_int(body, "gpuNum", required=True, minimum=1, maximum=8)
    rootfs = get_int(body, "rootfsSize", required=True, maximum=6144)
    image_url = get_str(body, "imageUrl", required=True, min_len=1, max_len=500)
    image_auth = get_str(body, "imageAuth", max_len=10239, default="")
    image_auth_id = get_str(body, "imageAuthId", max_len=255, default="")
    if image_auth_id and image_auth_id not in world.auths:
        raise ApiError(
            "RESOURCE_NOT_FOUND",
            f"imageAuthId: registry auth {image_auth_id!r} not found",
            metadata={"field": "imageAuthId"},
        )
    ports = parse_port_spec(get_str(body, "ports", max_len=4095, default=""))
    tools = _tools(body)
    if len({p for p, _ in ports} | {int(t["port"]) for t in tools}) > 15:
        raise invalid("ports", "ports plus tools must be at most 15")
    envs = read_envs(body)
    command = get_str(body, "command", max_len=2047, default="")
    entrypoint = get_str(body, "entrypoint", max_len=2047, default="")
    cluster_id = get_str(body, "clusterId", max_len=255, default="")
    storages = _network_storages(body)
    network_id = get_str(body, "networkId", max_len=255, default="")
    billing, month = _billing(body)
    # The docs: a string such as "12.4", no format or length given.
    min_cuda = get_str(body, "minCudaVersion", max_len=255, default="")
    get_str(body, "localStorageMountPoint", max_len=4095)
    user, _, password = image_auth.partition(":")
    return {
        "product_id": product_id,
        "cluster_id": cluster_id,
        "name": name,
        "gpu_num": gpu_num,
        "rootfs_size": max(rootfs, 10),  # documented: values below 10 become 10
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
    }


def create_instance(world: World, query: Query, body: Any) -> Any:
    spec = _create_spec(world, body)
    product_id, cluster_id = spec.pop("product_id"), spec.pop("cluster_id")
    product = catalog.PRODUCTS_BY_ID.get(product_id)
    if product is not None and spec["rootfs_size"] > product.max_rootfs:
        raise invalid("rootfsSize", f"must be at most the product's maxRootFS {product.max_rootfs}")
    if spec["network_storages"]:
        # Volumes live in one cluster: they decide (or must agree with) the instance's cluster.
        cluster_id = storages_cluster(world, spec["network_storages"], cluster_id)
        cluster = catalog.CLUSTERS_BY_ID.get(cluster_id)
        if cluster is not None and not cluster.support_network_storage:
            raise ApiError(
                "CUR_CLUSTER_NETWORK_STORAGE_NOT_SUPPORT",
                f"networkStorages: cluster {cluster_id} does not support network storage",
                metadata={"field": "networkStorages"},
            )
    if product is not None and spec["billing_mode"] not in product.billing_methods:
        raise ApiError(
            "UNSUPPORTED_BILLING_MODE",
            f"billingMode: {product_id} does not support {spec['billing_mode']}",
            metadata={"field": "billingMode"},
        )
    offer = world.pick_offer(product_id, cluster_id, spec["gpu_num"])
    return {"id": world.add_instance(spec, offer).id}


def get_instance(world: World, query: Query, body: Any) -> Any:
    instance_id = query_str(query, "instanceId")
    if not instance_id:
        raise invalid("instanceId", "is required")
    # 404 by default (three live clients treat 404 as "gone"); the documented 400 is a switch.
    return world.detail(world.find(instance_id, status=world.switches.notFoundStatus))


def list_instances(world: World, query: Query, body: Any) -> Any:
    _, first, page_size = page_window(query, world.switches.pageBase)
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
    page = matches[first : first + page_size]
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


def migrate_instance(world: World, query: Query, body: Any) -> Any:
    world.migrate(_instance_id(body))
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
    ("POST", "/gpu/instance/migrate"): migrate_instance,
    **TEMPLATE_ROUTES,
    **STORAGE_ROUTES,
}
PATHS: frozenset[str] = frozenset(path for _, path in ROUTES)
#: Routes under /openapi/v1 (same host and auth).
OPENAPI_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/metrics/gpu/instance"): get_metrics,
}
OPENAPI_PATHS: frozenset[str] = frozenset(path for _, path in OPENAPI_ROUTES)
