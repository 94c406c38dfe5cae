"""Template listings send ``channel`` and ``isMyCommunity`` as the newest docs ask, find
private templates by name, and page correctly under both page bases."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from tests.api_helpers import PRIVATE_TEMPLATE, api_requests


def listing_params(sandbox) -> list[dict[str, list[str]]]:
    return [parse_qs(r["query"]) for r in api_requests(sandbox, "/templates", "GET")]


def test_every_listing_names_one_channel_and_is_my_community(client, sandbox):
    sandbox.clear_requests()
    everything = client.api.templates()
    params = listing_params(sandbox)
    assert [(p["channel"], p["isMyCommunity"]) for p in params] == [
        (["official"], ["false"]),
        (["community"], ["false"]),
        (["private"], ["true"]),
    ]
    assert all(p["pageNum"] == ["0"] for p in params)
    assert {t.channel for t in everything} == {"official", "community"}  # no private yet


def test_private_templates_are_found_by_name(client, sandbox):
    new_id = client.api.create_template({**PRIVATE_TEMPLATE, "name": "my-trainer"})
    sandbox.clear_requests()
    found = client.api.templates(name="my-trainer", channel="private")
    assert [(t.id, t.channel) for t in found] == [(new_id, "private")]
    (params,) = listing_params(sandbox)
    assert params["channel"] == ["private"] and params["isMyCommunity"] == ["true"]
    assert params["name"] == ["my-trainer"]
    # the client's resolver (used by create(template=...)) finds it by its name too
    assert client.resources.find_template("my-trainer").id == new_id
    assert new_id in set(client.templates()["id"])


def test_several_channels_are_listed_one_at_a_time(client, sandbox):
    sandbox.clear_requests()
    found = client.api.templates(channel=["community", "official", "community"])
    assert [p["channel"] for p in listing_params(sandbox)] == [["community"], ["official"]]
    assert {t.channel for t in found} == {"official", "community"}


@pytest.mark.parametrize("base", [0, 1])
def test_private_templates_page_under_both_bases(client, sandbox, base):
    sandbox.configure(page_base=base)
    made = {client.api.create_template({**PRIVATE_TEMPLATE, "name": f"t-{i}"}) for i in range(5)}
    sandbox.clear_requests()
    found = client.api.templates(channel="private", page_size=2)
    assert {t.id for t in found} == made and len(found) == 5
    pages = [p["pageNum"] for p in listing_params(sandbox)]
    assert pages == [["0"], ["1"], ["2"]] if base == 0 else pages[:2] == [["0"], ["1"]]
