"""NovitaAPI: one method per Novita v1 endpoint, transparent pagination, parsing via models.
Arguments are checked before any HTTP call; the transport decides what may be retried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from . import errors
from .http import Transport
from .lifecycle import send_confirmed
from .models import Cluster, Product, RegistryAuth, Template
from .validation import BILLING_METHODS, normalise_billing

__all__ = ["NovitaAPI", "BILLING_METHODS", "MAX_PAGES", "FIRST_PAGE", "collect_pages"]

#: Safety stop for pagination against a server that never reports the end.
MAX_PAGES = 10_000
#: The page asked first. The live API counts pages from 0; some servers count from 1 and
#: also answer 0 with the first page, so asking 0 first is right under both.
FIRST_PAGE = 0

#: Template channels, in the order ``templates()`` lists them.
TEMPLATE_CHANNELS = ("official", "community", "private")

#: ``fetch(page_number) -> (items, total or None)``: one page of a listing.
PageFetch = Callable[[int], tuple[list[dict[str, Any]], int | None]]


def _require_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.ValidationError(
            f"{field} must be a non-empty string, got {value!r}", field=field
        )
    return value.strip()


def _optional_int(value: Any, field: str, low: int, high: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.ValidationError(f"{field} must be an integer, got {value!r}", field=field)
    if value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f">= {low}"
        raise errors.ValidationError(f"{field} must be {limits}, got {value}", field=field)
    return value


def _optional_str(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.ValidationError(
            f"{field} must be a string, got {type(value).__name__}", field=field
        )
    return value


def _page_size(value: Any) -> int:
    size = _optional_int(value, "page_size", 1, 1000)
    assert size is not None
    return size


def _items(data: Any, key: str, method: str, path: str) -> list[dict[str, Any]]:
    """``data[key]`` as a list of dicts (missing or null → empty); anything else is an error."""
    if not isinstance(data, dict):
        raise errors.APIError(
            f"unexpected response: expected an object with {key!r}", method=method, path=path
        )
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise errors.APIError(
            f"unexpected response: {key!r} is not a list", method=method, path=path
        )
    return [item for item in items if isinstance(item, dict)]


def _total(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    total = data.get("total")
    try:
        return int(total) if total is not None and total != "" else None
    except (TypeError, ValueError):
        return None


def _item_key(item: dict[str, Any]) -> str:
    return str(item.get("id") or item.get("Id") or item.get("storageId") or "")


def collect_pages(
    fetch: PageFetch, *, on_call: Callable[[], None] | None = None, max_pages: int = MAX_PAGES
) -> list[dict[str, Any]]:
    """Every item of a paged listing, whatever the server's first page number.

    Pages are asked from 0 up. Items are de-duplicated by id (items without one are kept).
    The listing ends at ``total`` items, at an empty page, or after two pages in a row that
    brought nothing new: ONE such page is normal on a 1-based server, where 0 and 1 both
    answer the first page. A short page does not end it (a server may cap ``pageSize``
    below what was asked). ``on_call`` runs before each request (call counters).
    """
    collected: list[dict[str, Any]] = []
    seen: set[str] = set()
    stale = 0
    for page in range(FIRST_PAGE, FIRST_PAGE + max_pages):
        if on_call is not None:
            on_call()
        items, total = fetch(page)
        if not items:
            break
        fresh = 0
        for item in items:
            key = _item_key(item)
            if key and key in seen:
                continue  # the repeated first page, or items shifting while we page
            if key:
                seen.add(key)
            collected.append(item)
            fresh += 1
        if total is not None and len(collected) >= total:
            break
        stale = 0 if fresh else stale + 1
        if stale >= 2:
            break
    return collected


class NovitaAPI:
    """The v1 endpoints (docs/architecture.md lists the contract). Thread-safe."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @property
    def requests_made(self) -> int:
        return self.transport.requests_made

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self.transport.request("GET", path, params=clean or None)

    def _post(self, path: str, body: dict[str, Any], *, idempotent: bool) -> Any:
        return self.transport.request("POST", path, json=body, idempotent=idempotent)

    # -- catalog -----------------------------------------------------------------------------
    def clusters(self) -> list[Cluster]:
        data = self._get("/clusters")
        return [Cluster.from_api(item) for item in _items(data, "data", "GET", "/clusters")]

    def products(
        self,
        *,
        cluster_id: str | None = None,
        product_name: str | None = None,
        gpu_num: int | None = None,
        billing_method: str | None = None,
        min_cpu_per_gpu: int | None = None,
        min_memory_per_gpu: int | None = None,
        min_rootfs_size: int | None = None,
    ) -> list[Product]:
        """GPU products. Unfiltered, an entry listing several regions is split into one per
        region, each copy keeping the entry's ``available`` (true if it is in stock somewhere
        among them, not in that region). With ``cluster_id`` (that region's stock) each
        product id comes once, as listed: whatever its ``regions`` hold, the caller knows
        which region it asked about (the catalog labels the rows with it)."""
        _optional_str(cluster_id, "cluster_id")
        _optional_str(product_name, "product_name")
        _optional_int(gpu_num, "gpu_num", 0, 8)
        billing_method = normalise_billing(billing_method, "billing_method")
        _optional_int(min_cpu_per_gpu, "min_cpu_per_gpu", 0)
        _optional_int(min_memory_per_gpu, "min_memory_per_gpu", 0)
        _optional_int(min_rootfs_size, "min_rootfs_size", 0)
        data = self._get(
            "/products",
            {
                "clusterId": cluster_id,
                "productName": product_name,
                "gpuNum": gpu_num,
                "billingMethod": billing_method,
                "minCpuPerGpu": min_cpu_per_gpu,
                "minMemoryPerGpu": min_memory_per_gpu,
                "minRootFSSize": min_rootfs_size,
            },
        )
        products: list[Product] = []
        seen: set[str] = set()
        for item in _items(data, "data", "GET", "/products"):
            product = Product.from_api(item)
            if cluster_id is not None:
                if product.id not in seen:  # a repeated id would be a second, inflated row
                    seen.add(product.id)
                    products.append(product)
            elif len(product.regions) > 1:
                products.extend(dataclasses.replace(product, regions=(r,)) for r in product.regions)
            else:
                products.append(product)
        return products

    # -- instances ---------------------------------------------------------------------------
    def create_instance(self, body: dict[str, Any]) -> str:
        """POST /gpu/instance/create (sent once, never retried); returns the new id."""
        if not isinstance(body, dict) or not body:
            raise errors.ValidationError("body must be a non-empty dict", field="body")
        data = self._post("/gpu/instance/create", body, idempotent=False)
        new_id = data.get("id") or data.get("Id") if isinstance(data, dict) else None
        if not new_id:
            raise errors.APIError(
                "the API accepted the create but returned no instance id",
                method="POST",
                path="/gpu/instance/create",
            )
        return str(new_id)

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        instance_id = _require_id(instance_id, "instance_id")
        data = self._get("/gpu/instance", {"instanceId": instance_id})
        if not isinstance(data, dict):
            raise errors.APIError(
                "unexpected response: expected an instance object",
                method="GET",
                path="/gpu/instance",
            )
        # The API returns the instance at the top level; tolerate a wrapped variant.
        wrapped = data.get("instance")
        return wrapped if isinstance(wrapped, dict) and "id" not in data else data

    def list_instances_page(
        self, page_num: int = FIRST_PAGE, page_size: int = 100, **filters: Any
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of GET /gpu/instances: (items, total or None when not reported)."""
        _optional_int(page_num, "page_num", 0)
        size = _page_size(page_size)
        params = self._instance_filters(filters)
        params.update({"pageNum": page_num, "pageSize": size})
        data = self._get("/gpu/instances", params)
        return _items(data, "instances", "GET", "/gpu/instances"), _total(data)

    def list_instances(
        self,
        *,
        name: str | None = None,
        product_name: str | None = None,
        status: str | None = None,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Every instance (all pages) as raw dicts; filters are the API's (fuzzy) ones."""
        size = _page_size(page_size)
        filters = {"name": name, "product_name": product_name, "status": status}
        self._instance_filters(filters)  # validate before the first call
        return collect_pages(lambda page: self.list_instances_page(page, size, **filters))

    @staticmethod
    def _instance_filters(filters: dict[str, Any]) -> dict[str, Any]:
        names = {"name": "name", "product_name": "productName", "status": "status"}
        params: dict[str, Any] = {}
        for key, value in filters.items():
            if key not in names:
                raise errors.ValidationError(
                    f"unknown filter {key!r}; allowed: {', '.join(names)}", field=key
                )
            if value is not None:
                params[names[key]] = _optional_str(value, key)
        return params

    def _lifecycle(self, action: str, instance_id: str) -> None:
        """One lifecycle POST, resent only after a read shows it did not take effect
        (``lifecycle.send_confirmed``: resending one is not known to be harmless)."""
        instance_id = _require_id(instance_id, "instance_id")
        path, body = f"/gpu/instance/{action}", {"instanceId": instance_id}
        transport = self.transport
        send_confirmed(
            action,
            instance_id,
            post=lambda: self._post(path, body, idempotent=False),
            read=lambda: self.get_instance(instance_id),
            attempts=1 + transport.max_retries,
            base=transport.retry_backoff,
            cap=transport.retry_backoff_max,
        )

    def start_instance(self, instance_id: str) -> None:
        self._lifecycle("start", instance_id)

    def stop_instance(self, instance_id: str) -> None:
        self._lifecycle("stop", instance_id)

    def restart_instance(self, instance_id: str) -> None:
        self._lifecycle("restart", instance_id)

    def delete_instance(self, instance_id: str) -> None:
        self._lifecycle("delete", instance_id)

    def edit_instance(
        self,
        instance_id: str,
        *,
        ports: Iterable[dict[str, Any]] | None = None,
        expand_root_disk: int | None = None,
    ) -> None:
        """POST /gpu/instance/edit: ``ports`` as ``[{"port": int, "type": "tcp"|"http"}]``."""
        instance_id = _require_id(instance_id, "instance_id")
        _optional_int(expand_root_disk, "expand_root_disk", 0)
        body: dict[str, Any] = {"instanceId": instance_id}
        if ports is not None:
            port_list = []
            for item in ports:
                if not isinstance(item, dict) or "port" not in item:
                    raise errors.ValidationError(
                        'ports must be dicts like {"port": 8080, "type": "http"}', field="ports"
                    )
                port = _optional_int(item["port"], "ports.port", 1, 65535)
                kind = item.get("type", "tcp")
                if kind not in ("tcp", "http"):
                    raise errors.ValidationError(
                        f"ports.type must be 'tcp' or 'http', got {kind!r}", field="ports.type"
                    )
                port_list.append({"port": port, "type": kind})
            body["ports"] = port_list
        if expand_root_disk is not None:
            body["expandRootDisk"] = expand_root_disk
        self._post("/gpu/instance/edit", body, idempotent=True)

    # -- templates ---------------------------------------------------------------------------
    def templates(
        self,
        *,
        name: str | None = None,
        type: str | None = None,  # noqa: A002 - the API's parameter name
        channel: str | Iterable[str] | None = None,
        page_size: int = 100,
    ) -> list[Template]:
        """GET /templates, all pages, one listing per channel (the newest docs take ONE
        ``channel`` and a required ``isMyCommunity``): ``private`` is asked with
        ``isMyCommunity=true`` (the caller's own; how private templates are found live),
        ``official`` and ``community`` with ``false``. ``channel`` None means all three, in
        that order (official, community, private); templates are de-duplicated by id."""
        _optional_str(name, "name")
        _optional_str(type, "type")
        size = _page_size(page_size)
        if channel is None:
            channels = list(TEMPLATE_CHANNELS)
        else:
            channels = [channel] if isinstance(channel, str) else list(channel)
        for value in channels:
            if value not in TEMPLATE_CHANNELS:
                raise errors.ValidationError(
                    f"channel must be one of {', '.join(TEMPLATE_CHANNELS)}, got {value!r}",
                    field="channel",
                )
        found: dict[str, Template] = {}
        for value in dict.fromkeys(channels):
            for item in self._template_pages(value, name, type, size):
                template = Template.from_api(item)
                found.setdefault(template.id or f"#{len(found)}", template)
        return list(found.values())

    def _template_pages(
        self, channel: str, name: str | None, kind: str | None, size: int
    ) -> list[dict[str, Any]]:
        def fetch(page: int) -> tuple[list[dict[str, Any]], int | None]:
            data = self._get(
                "/templates",
                {
                    "channel": channel,
                    "isMyCommunity": "true" if channel == "private" else "false",
                    "pageNum": page,
                    "pageSize": size,
                    "name": name,
                    "type": kind,
                },
            )
            return _items(data, "template", "GET", "/templates"), _total(data)

        return collect_pages(fetch)

    def template(self, template_id: str) -> Template:
        template_id = _require_id(template_id, "template_id")
        data = self._get("/template", {"templateId": template_id})
        item = data.get("template") if isinstance(data, dict) else None
        if not isinstance(item, dict):
            raise errors.NotFoundError(
                f"template {template_id!r} not found", method="GET", path="/template"
            )
        return Template.from_api(item)

    def create_template(self, template: dict[str, Any]) -> str:
        """POST /template/create (sent once); returns the new template id."""
        if not isinstance(template, dict) or not template:
            raise errors.ValidationError("template must be a non-empty dict", field="template")
        data = self._post("/template/create", {"template": template}, idempotent=False)
        return self._template_id(data, "/template/create")

    def update_template(self, template: dict[str, Any]) -> str:
        if not isinstance(template, dict) or not (template.get("Id") or template.get("id")):
            raise errors.ValidationError("template must be a dict with its 'Id'", field="template")
        body = dict(template)
        body.setdefault("Id", body.pop("id", None))
        data = self._post("/template/update", {"template": body}, idempotent=True)
        return self._template_id(data, "/template/update")

    def delete_template(self, template_id: str) -> str:
        template_id = _require_id(template_id, "template_id")
        data = self._post("/template/delete", {"templateId": template_id}, idempotent=True)
        return str(data.get("templateId") or template_id) if isinstance(data, dict) else template_id

    @staticmethod
    def _template_id(data: Any, path: str) -> str:
        value = data.get("templateId") or data.get("Id") if isinstance(data, dict) else None
        if not value:
            raise errors.APIError("the API returned no template id", method="POST", path=path)
        return str(value)

    # -- registry auths ----------------------------------------------------------------------
    def registry_auths(self) -> list[RegistryAuth]:
        data = self._get("/repository/auths")
        return [
            RegistryAuth.from_api(item) for item in _items(data, "data", "GET", "/repository/auths")
        ]

    def save_registry_auth(self, name: str, username: str, password: str) -> None:
        """POST /repository/auth/save (sent once). The password never appears in errors."""
        _require_id(name, "name")
        _require_id(username, "username")
        if not isinstance(password, str) or not password:
            raise errors.ValidationError("password must be a non-empty string", field="password")
        self._post(
            "/repository/auth/save",
            {"name": name, "username": username, "password": password},
            idempotent=False,
        )

    def delete_registry_auth(self, auth_id: str) -> None:
        auth_id = _require_id(auth_id, "auth_id")
        self._post("/repository/auth/delete", {"id": auth_id}, idempotent=True)

    # -- network storage (volumes) -------------------------------------------------------------
    def list_network_storages(
        self,
        *,
        storage_name: str | None = None,
        storage_id: str | None = None,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        """Every network volume (all pages; this endpoint pages with ``pageNo``) as raw dicts:
        storageId, storageName, storageSize (GB), clusterId, clusterName, price."""
        _optional_str(storage_name, "storage_name")
        _optional_str(storage_id, "storage_id")
        size = _page_size(page_size)
        path = "/networkstorages/list"

        def fetch(page: int) -> tuple[list[dict[str, Any]], int | None]:
            params = {
                "pageNo": page,
                "pageSize": size,
                "storageName": storage_name,
                "storageId": storage_id,
            }
            data = self._get(path, params)
            return _items(data, "data", "GET", path), _total(data)

        return collect_pages(fetch)

    def create_network_storage(self, cluster_id: str, name: str, size_gb: int) -> str:
        """POST /networkstorage/create (sent once); the API answers the new id as a bare
        JSON string (an object with storageId/id is accepted too)."""
        cluster_id = _require_id(cluster_id, "cluster_id")
        name = _require_id(name, "name")
        _optional_int(size_gb, "size_gb", 1)
        body = {"clusterId": cluster_id, "storageName": name, "storageSize": size_gb}
        data = self._post("/networkstorage/create", body, idempotent=False)
        if isinstance(data, dict):
            data = data.get("storageId") or data.get("id") or data.get("Id")
        if not isinstance(data, str) or not data:
            raise errors.APIError(
                "the API accepted the volume but returned no id",
                method="POST",
                path="/networkstorage/create",
            )
        return data

    def update_network_storage(
        self, storage_id: str, *, name: str | None = None, size_gb: int | None = None
    ) -> None:
        """Rename a volume and/or grow it (its size can only grow)."""
        body: dict[str, Any] = {"storageId": _require_id(storage_id, "storage_id")}
        if name is not None:
            body["storageName"] = _require_id(name, "name")
        if size_gb is not None:
            body["storageSize"] = _optional_int(size_gb, "size_gb", 1)
        self._post("/networkstorage/update", body, idempotent=True)

    def delete_network_storage(self, storage_id: str) -> None:
        storage_id = _require_id(storage_id, "storage_id")
        self._post("/networkstorage/delete", {"storageId": storage_id}, idempotent=True)
