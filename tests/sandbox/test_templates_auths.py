"""Templates and container registry auths over HTTP: listing, paging, filters, create/update/
delete with validation, official templates protected, IMAGE_AUTH_IN_USE.
"""

from __future__ import annotations

import pytest
from sandbox_helpers import assert_error

TEMPLATE = {
    "name": "my-trainer",
    "type": "instance",
    "channel": "private",
    "image": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
    "rootfsSize": 60,
    "ports": [{"type": "http", "ports": [8888, 6006]}, {"type": "tcp", "ports": [22]}],
    "envs": [{"key": "MODE", "value": "train"}],
    "startCommand": "python train.py",
}


def test_official_templates_are_listed(api):
    body = api.get("/templates").json()
    assert set(body) == {"template", "pageSize", "pageNum", "total"}
    assert body["total"] >= 3
    names = [t["name"] for t in body["template"]]
    assert any("PyTorch" in n for n in names) and any("CUDA" in n for n in names)
    assert any("Stable Diffusion" in n for n in names)
    pytorch = next(t for t in body["template"] if "PyTorch" in t["name"])
    assert {"type": "http", "ports": [8888]} in pytorch["ports"]
    assert pytorch["Id"] and pytorch["channel"] == "official"
    one = api.get("/template", templateId=pytorch["Id"]).json()
    assert one == {"template": pytorch}


def test_template_paging_and_filters(api):
    for i in range(3):
        assert api.post("/template/create", {"template": {**TEMPLATE, "name": f"mine-{i}"}}).ok
    total = api.get("/templates").json()["total"]
    assert total >= 7
    page0 = api.get("/templates", pageSize=2, pageNum=0).json()
    page1 = api.get("/templates", pageSize=2, pageNum=1).json()
    assert page0["template"] != page1["template"] and len(page1["template"]) == 2
    assert page1["pageSize"] == 2 and page1["pageNum"] == 1 and page0["pageNum"] == 0
    collected = []
    page = 0
    while True:
        rows = api.get("/templates", pageSize=2, pageNum=page).json()["template"]
        if not rows:
            break
        collected += [t["Id"] for t in rows]
        page += 1
    assert len(collected) == total == len(set(collected))
    mine = api.get("/templates", channel="private").json()
    assert mine["total"] == 3
    own = api.get("/templates", channel="private", isMyCommunity="true", pageNum=0).json()
    assert {t["name"] for t in own["template"]} == {"mine-0", "mine-1", "mine-2"}
    assert api.get("/templates", isMyCommunity="true").json()["total"] == 3
    assert api.get("/templates", isMyCommunity="false").json()["total"] == total
    community = api.get("/templates", channel="community").json()["template"]
    assert community and all(t["channel"] == "community" for t in community)
    assert api.get("/templates", channel="community", isMyCommunity="true").json()["total"] == 0
    assert_error(api.get("/templates", isMyCommunity="maybe"), 400, "VALIDATOR_PARAM", "isMy")
    both = api.get("/templates", params=None, channel="private,official,community").json()
    assert both["total"] == total
    repeated = api.session.get(
        api.sandbox.api_url + "/templates",
        params=[("channel", "private"), ("channel", "official"), ("channel", "community")],
    ).json()
    assert repeated["total"] == total
    assert api.get("/templates", name="MINE-1").json()["total"] == 1
    assert api.get("/templates", type="serverless").json()["total"] == 0
    assert_error(api.get("/templates", channel="public"), 400, "VALIDATOR_PARAM", "channel")
    assert_error(api.get("/templates", pageSize="x"), 400, "VALIDATOR_PARAM", "pageSize")


def test_template_create_update_delete(api):
    created = api.post("/template/create", {"template": TEMPLATE}).json()
    template_id = created["templateId"]
    fetched = api.get("/template", templateId=template_id).json()["template"]
    assert fetched["Id"] == template_id and fetched["name"] == "my-trainer"
    assert fetched["createdAt"].isdigit() and fetched["channel"] == "private"
    updated = api.post(
        "/template/update", {"template": {**TEMPLATE, "Id": template_id, "name": "renamed"}}
    ).json()
    assert updated == {"templateId": template_id}
    assert api.get("/template", templateId=template_id).json()["template"]["name"] == "renamed"
    assert api.post("/template/delete", {"templateId": template_id}).json() == {
        "templateId": template_id
    }
    assert_error(
        api.get("/template", templateId=template_id), 400, "TEMPLATE_NOT_FOUND", "templateId"
    )
    assert_error(
        api.post("/template/delete", {"templateId": template_id}), 400, "TEMPLATE_NOT_FOUND"
    )
    assert_error(
        api.post("/template/update", {"template": {**TEMPLATE, "Id": "nope"}}),
        400,
        "TEMPLATE_NOT_FOUND",
    )
    assert_error(api.get("/template"), 400, "VALIDATOR_PARAM", "templateId")


def test_official_templates_cannot_be_changed(api):
    official = api.get("/templates", channel="official").json()["template"][0]
    assert_error(
        api.post("/template/delete", {"templateId": official["Id"]}), 403, "FORBIDDEN", "official"
    )
    assert_error(
        api.post("/template/update", {"template": {**TEMPLATE, "Id": official["Id"]}}),
        403,
        "FORBIDDEN",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "template.name"),
        ({"name": "n" * 256}, "template.name"),
        ({"type": "vm"}, "template.type"),
        ({"channel": "official"}, "template.channel"),
        ({"image": ""}, "template.image"),
        ({"image": "i" * 501}, "template.image"),
        ({"rootfsSize": "60"}, "template.rootfsSize"),
        ({"rootfsSize": None}, "template.rootfsSize"),
        ({"startCommand": "s" * 2048}, "template.startCommand"),
        ({"readme": "r" * 102401}, "template.readme"),
        ({"ports": [{"type": "udp", "ports": [1]}]}, "template.ports[0].type"),
        (
            {"ports": [{"type": "http", "ports": list(range(8000, 8011))}]},
            "template.ports[0].ports",
        ),
        ({"ports": [{"type": "http", "ports": ["eighty"]}]}, "template.ports[0].ports[0]"),
        ({"ports": [{"type": "http", "ports": [2222]}]}, "template.ports[0].ports[0]"),
        ({"envs": [{"key": 1, "value": "x"}]}, "envs[0].key"),
        ({"Id": "x"}, "template.Id"),
    ],
)
def test_template_validation_names_the_field(api, change, field):
    template = {k: v for k, v in {**TEMPLATE, **change}.items() if v is not None}
    assert_error(
        api.post("/template/create", {"template": template}), 400, "VALIDATOR_PARAM", field
    )


def test_template_body_shape_errors(api):
    assert_error(api.post("/template/create", {}), 400, "VALIDATOR_PARAM", "template")
    assert_error(
        api.post("/template/create", {"template": "x"}), 400, "VALIDATOR_PARAM", "template"
    )
    assert_error(api.post("/template/create", [TEMPLATE]), 400, "VALIDATOR_PARAM", "body")
    assert_error(
        api.post("/template/create", {"template": {**TEMPLATE, "imageAuth": "nope"}}),
        400,
        "RESOURCE_NOT_FOUND",
        "template.imageAuth",
    )


def test_registry_auths_lifecycle_and_in_use(api):
    assert api.get("/repository/auths").json() == {"data": []}
    assert (
        api.post(
            "/repository/auth/save", {"name": "hub", "username": "me", "password": "pw1"}
        ).json()
        == {}
    )
    data = api.get("/repository/auths").json()["data"]
    assert len(data) == 1 and set(data[0]) == {"id", "name", "username", "password"}
    assert data[0]["password"] == "******" and "pw1" not in str(data)  # masked, as live
    auth_id = data[0]["id"]
    assert len(auth_id) == 32 and auth_id.isalnum()
    instance_id = api.create(imageUrl="registry.sandbox.local/me/app:1", imageAuthId=auth_id)
    assert_error(
        api.post("/repository/auth/delete", {"id": auth_id}), 400, "IMAGE_AUTH_IN_USE", instance_id
    )
    api.post("/gpu/instance/delete", {"instanceId": instance_id})
    template_id = api.post(
        "/template/create", {"template": {**TEMPLATE, "imageAuth": auth_id}}
    ).json()["templateId"]
    assert_error(
        api.post("/repository/auth/delete", {"id": auth_id}), 400, "IMAGE_AUTH_IN_USE", "template"
    )
    api.post("/template/delete", {"templateId": template_id})
    assert api.post("/repository/auth/delete", {"id": auth_id}).json() == {}
    assert api.get("/repository/auths").json() == {"data": []}
    assert_error(
        api.post("/repository/auth/delete", {"id": auth_id}), 400, "RESOURCE_NOT_FOUND", "id"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "u", "password": "p"}, "name"),
        ({"name": "n", "password": "p"}, "username"),
        ({"name": "n", "username": "u"}, "password"),
        ({"name": "", "username": "u", "password": "p"}, "name"),
        ({"name": "n" * 256, "username": "u", "password": "p"}, "name"),
        ({"name": "n", "username": "u" * 512, "password": "p"}, "username"),
        ({"name": "n", "username": "u", "password": "p" * 1025}, "password"),
        ({"name": "n", "username": "u", "password": 5}, "password"),
    ],
)
def test_registry_auth_validation(api, body, field):
    response = api.post("/repository/auth/save", body)
    envelope = assert_error(response, 400, "VALIDATOR_PARAM", field)
    assert "pw" not in envelope["message"]
