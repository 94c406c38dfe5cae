"""Templates and registry auths: a private image with its auth reaches running, without it the
pull fails; the template's settings are applied; the password is never sent or shown.
"""

from __future__ import annotations

import json

import pytest

from novita_notebook.errors import NotFoundError, ValidationError
from novita_notebook.models import Template

from .helpers import CREATE_PATH, calls, settle

PASSWORD = "pa55-Wd-never-shown-7f3a"
PRIVATE_IMAGE = "registry.sandbox.local/team/trainer:1.0"


@pytest.fixture
def private_template(client):
    auth = client.create_registry_auth("team-registry", "alice", PASSWORD)
    template = client.create_template(
        "private-trainer",
        PRIVATE_IMAGE,
        ports="8888/http,22/tcp,6006/http",
        envs={"MODE": "train", "LR": "0.1"},
        rootfs_gb=80,
        start_command="python serve.py",
        entrypoint="/bin/sh -c",
        image_auth_id="team-registry",
        readme="trains things",
    )
    return auth, template


def test_private_image_with_its_registry_auth_reaches_running(sandbox, client, private_template):
    auth, template = private_template
    assert template.image_auth == auth.id
    sandbox.clear_requests()

    instance = client.create(
        "private-run", gpu="4090", template="private-trainer", envs={"LR": "0.01", "EXTRA": "1"}
    )
    raw = settle(client, instance.id)

    assert raw["status"] == "running" and not (raw.get("statusError") or {}).get("message")
    assert raw["imageUrl"] == PRIVATE_IMAGE
    assert raw["imageAuthId"] == auth.id
    ports = sorted((p["port"], p["type"]) for p in raw["portMappings"])
    assert ports == [(22, "tcp"), (6006, "http"), (8888, "http")]
    envs = {e["key"]: e["value"] for e in raw["envs"]}
    assert envs == {"MODE": "train", "LR": "0.01", "EXTRA": "1"}  # user envs override
    assert int(raw["rootfsSize"]) == 80
    assert raw["command"] == "python serve.py"
    assert raw["entrypoint"] == "/bin/sh -c"

    (create,) = calls(sandbox, CREATE_PATH)
    body = json.loads(create["body"])
    assert body["imageAuthId"] == auth.id
    assert "imageAuth" not in body  # never the "user:pass" form


def test_the_same_image_without_auth_ends_in_status_error(sandbox, client, private_template):
    instance = client.create("no-auth", gpu="4090", image=PRIVATE_IMAGE)
    raw = settle(client, instance.id)
    assert raw["status"] == "exited"
    assert raw["statusError"]["message"]
    assert client.instance(instance.id).failed


def test_image_auth_id_works_without_a_template(sandbox, client, private_template):
    auth, _ = private_template
    instance = client.create("by-auth-id", gpu="4090", image=PRIVATE_IMAGE, image_auth_id=auth.id)
    assert settle(client, instance.id)["status"] == "running"


def test_the_password_never_appears_in_requests_reprs_html_or_errors(
    sandbox, client, private_template
):
    auth, template = private_template
    instance = client.create(
        "secret-check", gpu="4090", template=template.id, wait=True, progress="silent"
    )
    shown = [
        repr(auth),
        str(auth),
        repr(template),
        repr(instance),
        instance._repr_html_(),
        repr(instance.fallback_report),
        instance.fallback_report._repr_html_(),
        client.registry_auths().to_string(),
        repr(client.registry_auths().columns),
    ]
    with pytest.raises(ValidationError) as duplicate:
        client.create_registry_auth("team-registry", "alice", PASSWORD)
    with pytest.raises(ValidationError) as too_long:
        client.create_registry_auth("other", "alice", PASSWORD * 100)
    shown += [str(duplicate.value), repr(duplicate.value), str(too_long.value)]
    shown += [r["body"] for r in sandbox.requests()]
    for text in shown:
        assert PASSWORD not in text
    assert list(client.registry_auths().columns) == ["id", "name", "username"]
    assert auth.password == ""


def test_a_template_whose_registry_auth_is_gone_is_a_clear_error(sandbox, client, monkeypatch):
    # The sandbox refuses such templates, so build the dangling one by hand.
    dangling = Template(
        id="tpl-dangling", name="dangling", image=PRIVATE_IMAGE, image_auth="auth-gone"
    )
    monkeypatch.setattr(client.catalog, "templates", lambda refresh=False: [dangling])
    sandbox.clear_requests()
    with pytest.raises(NotFoundError) as caught:
        client.create("dangling-run", gpu="4090", template="dangling")
    assert "auth-gone" in str(caught.value) and "dangling" in str(caught.value)
    assert "create_registry_auth" in str(caught.value)
    assert calls(sandbox, CREATE_PATH) == []
    with pytest.raises(NotFoundError):
        client.create("x", gpu="4090", image=PRIVATE_IMAGE, image_auth_id="nope")


def test_official_template_by_name_and_unknown_template(sandbox, client):
    instance = client.create("official", gpu="4090", template="PyTorch 2.4 + Jupyter")
    raw = client.api.get_instance(instance.id)
    assert raw["imageUrl"] == "novitalabs/pytorch-jupyter:2.4.0-cuda12.4"
    assert sorted(p["port"] for p in raw["portMappings"]) == [22, 8888]
    with pytest.raises(NotFoundError) as caught:
        client.create("nothing", gpu="4090", template="no-such-template")
    assert "no-such-template" in str(caught.value) and "PyTorch 2.4 + Jupyter" in str(caught.value)


def test_templates_and_auths_can_be_deleted_by_name(sandbox, client, private_template):
    auth, template = private_template
    with pytest.raises(ValidationError):
        client.create_template("private-trainer", "ubuntu:22.04")  # names stay unique
    client.delete_template("private-trainer")
    assert all(t.id != template.id for t in client.cached_templates(refresh=True))
    client.delete_registry_auth("team-registry")
    assert client.registry_auths().empty
    with pytest.raises(NotFoundError):
        client.delete_registry_auth("team-registry")
