"""Template and container-registry-auth endpoints of the sandbox: listing with the newest
docs' parameters, create/update/delete with validation, masked registry passwords.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .validate import (
    ApiError,
    check_object,
    check_port,
    get_int,
    get_list,
    get_str,
    invalid,
    page_window,
    query_bool,
    query_list,
    query_str,
    read_envs,
)
from .world import CALLER, World

Query = dict[str, list[str]]
CHANNELS = ("private", "official", "community")
MASKED_PASSWORD = "******"

# -- templates ----------------------------------------------------------------------------------
TEMPLATE_FIELDS = {
    "Id", "name", "readme", "logo", "type", "channel", "image", "imageAuth", "startCommand",
    "entrypoint", "rootfsSize", "ports", "envs", "tools", "minCudaVersion", "recommendCards",
}  # fmt: skip


def _port_groups(template: dict[str, Any]) -> list[dict[str, Any]]:
    groups = []
    for i, group in enumerate(get_list(template, "ports", field="template.ports", max_items=2)):
        where = f"template.ports[{i}]"
        check_object(group, {"type", "ports"}, where)
        kind = get_str(group, "type", field=f"{where}.type", required=True, choices=("http", "tcp"))
        numbers = []
        for j, value in enumerate(get_list(group, "ports", field=f"{where}.ports", max_items=10)):
            # Older docs sent these as strings ("8888"): accepted as the number they spell.
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise invalid(f"{where}.ports[{j}]", "must be an integer")
            numbers.append(check_port(value, kind, f"{where}.ports[{j}]")[0])
        groups.append({"type": kind, "ports": numbers})
    return groups


def _template_tools(template: dict[str, Any]) -> list[dict[str, Any]]:
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
    return tools


def _cards(template: dict[str, Any]) -> list[dict[str, Any]]:
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
    return cards


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
    result["ports"] = _port_groups(template)
    result["envs"] = read_envs(template, "envs")
    result["tools"] = _template_tools(template)
    result["minCudaVersion"] = get_str(
        template, "minCudaVersion", field="template.minCudaVersion", max_len=16, default=""
    )
    result["recommendCards"] = _cards(template)
    return result


def public(template: dict[str, Any]) -> dict[str, Any]:
    """A stored template as answered: internal keys (``_user``) left out."""
    return {k: v for k, v in template.items() if not k.startswith("_")}


def list_templates(world: World, query: Query, body: Any) -> Any:
    """``channel`` (one value; repeated or comma-joined also accepted) and ``isMyCommunity``
    (true: only the caller's own templates) as the newest docs ask; both may be omitted."""
    page_num, first, page_size = page_window(query, world.switches.pageBase)
    name = (query_str(query, "name") or "").lower()
    kind = query_str(query, "type")
    channels = query_list(query, "channel")
    for channel in channels:
        if channel not in CHANNELS:
            raise invalid("channel", "must be private, official or community")
    mine = query_bool(query, "isMyCommunity")
    matches = [
        t
        for t in world.templates.values()
        if (not name or name in t["name"].lower())
        and (not kind or t["type"] == kind)
        and (not channels or t["channel"] in channels)
        and (not mine or t.get("_user") == CALLER)
    ]
    page = [public(t) for t in matches[first : first + page_size]]
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
    return {"template": public(_find_template(world, template_id, "templateId"))}


def create_template(world: World, query: Query, body: Any) -> Any:
    template = _template_body(world, body, updating=False)
    template["Id"] = world.new_template_id()
    template["createdAt"] = str(int(world.clock()))
    template["_user"] = CALLER
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
    template["_user"] = existing.get("_user", CALLER)
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
    """Passwords are masked, as the live API does."""
    return {"data": [{**a, "password": MASKED_PASSWORD} for a in world.auths.values()]}


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


TEMPLATE_ROUTES: dict[tuple[str, str], Callable[[World, Query, Any], Any]] = {
    ("GET", "/templates"): list_templates,
    ("GET", "/template"): get_template,
    ("POST", "/template/create"): create_template,
    ("POST", "/template/update"): update_template,
    ("POST", "/template/delete"): delete_template,
    ("GET", "/repository/auths"): list_auths,
    ("POST", "/repository/auth/save"): save_auth,
    ("POST", "/repository/auth/delete"): delete_auth,
}
