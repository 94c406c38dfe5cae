"""Our client never sends a body field the API does not know: the sandbox discards unknown
fields (as the live backend does) and lists them in its request log as ``ignored``."""

from __future__ import annotations

from novita_notebook.models import Template

API = "/gpu-instance/openapi/v1"


def test_every_write_the_client_makes_has_nothing_ignored(client, sandbox):
    client.create_registry_auth("hub", "me", "pw-secret-1")
    client.create_storage("datasets", "EU-DE-01", 20)
    template = client.create_template(
        "trainer",
        "python:3.11",
        ports=["8888/http", "22/tcp"],
        envs={"MODE": "train"},
        start_command="sleep infinity",
        image_auth_id="hub",
        readme="notes",
    )
    inst = client.create(
        "nb-1",
        "4090",
        template="trainer",
        envs={"EXTRA": "1"},
        ports=["8080/http"],
        volumes=["datasets"],
        command="python serve.py",
        wait=True,
        timeout=30,
    )
    client.edit(inst.id, ports=[9000], expand_root_disk_gb=10)
    client.api.update_template(_template_body(template, name="trainer-2"))
    client.stop(inst.id)
    client.delete(inst.id)
    client.delete_template("trainer-2")
    client.delete_registry_auth("hub")

    writes = [r for r in sandbox.requests() if r["method"] == "POST" and API in r["path"]]
    paths = {r["path"].removeprefix(API) for r in writes}
    assert {
        "/repository/auth/save",
        "/networkstorage/create",
        "/template/create",
        "/template/update",
        "/gpu/instance/create",
        "/gpu/instance/edit",
        "/gpu/instance/stop",
        "/gpu/instance/delete",
        "/template/delete",
        "/repository/auth/delete",
    } <= paths
    ignored = [(r["path"], r["ignored"]) for r in sandbox.requests() if r.get("ignored")]
    assert ignored == []
    create = next(r for r in writes if r["path"].endswith("/gpu/instance/create"))
    assert '"networkStorages"' in create["body"] and '"Id"' in create["body"]


def test_the_log_does_list_unknown_fields(client, sandbox):
    """The check above can fail: a field the API does not know shows in ``ignored``."""
    client.api.create_template(
        {
            "name": "old-style",
            "type": "instance",
            "channel": "private",
            "image": "python:3.11",
            "rootfsSize": 20,
            "volumes": [],
            "colour": "red",
        }
    )
    (entry,) = [r for r in sandbox.requests() if r["path"].endswith("/template/create")]
    assert sorted(entry["ignored"]) == ["template.colour", "template.volumes"]


def _template_body(template: Template, *, name: str) -> dict:
    """What an update sends: the documented template fields, from the parsed template."""
    return {
        "Id": template.id,
        "name": name,
        "readme": template.readme or "",
        "type": template.type or "instance",
        "channel": "private",
        "image": template.image,
        "imageAuth": template.image_auth or "",
        "startCommand": template.start_command or "",
        "entrypoint": template.entrypoint or "",
        "rootfsSize": template.rootfs_size,
        "ports": [{"type": p.type, "ports": list(p.ports)} for p in template.ports],
        "envs": [{"key": e.key, "value": e.value} for e in template.envs],
    }
