"""Shapes the sandbox never sends (``spotPrice: ""``, ``node`` as an object, millisecond
timestamps, an unknown field, one entry per product and cluster), forced into its real answers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from doctor_helpers import make_instances

from novita_notebook.doctor import known_fields, run_doctor
from novita_notebook.doctor.probe import Probe
from novita_notebook.doctor.report import DIFFERS, OK


def reshape(monkeypatch, path: str, change: Callable[[Any], None]) -> None:
    """Let ``change`` edit every 200 answer of ``path`` (the sandbox answers, then this edits)."""
    original = Probe._get_once

    def edited(self, called_path, params, **kw):
        reply = original(self, called_path, params, **kw)
        if called_path == path and reply.status == 200:
            reply.data = copy.deepcopy(reply.data)
            change(reply.data)
        return reply

    monkeypatch.setattr(Probe, "_get_once", edited)


def test_empty_string_spot_price_is_reported(monkeypatch, sandbox):
    def blank_spot(data):
        for product in data["data"]:
            if product.get("spotPrice") is None:
                product["spotPrice"] = ""

    reshape(monkeypatch, "/products", blank_spot)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("spotPrice")
    assert line.status == DIFFERS and '"" x' in line.detail and "digit string x" in line.detail


def test_numeric_spot_price_is_reported(monkeypatch, sandbox):
    def numbers(data):
        for product in data["data"]:
            if isinstance(product.get("spotPrice"), str):
                product["spotPrice"] = int(product["spotPrice"])

    reshape(monkeypatch, "/products", numbers)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("spotPrice")
    assert line.status == DIFFERS and "number x" in line.detail


def test_node_as_an_object_and_millisecond_timestamps_are_reported(monkeypatch, sandbox):
    make_instances(sandbox, ["doctor-node"])

    def sdk_shapes(data):
        data["node"] = data["node"][0]
        data["createdAt"] = data["createdAt"] + "000"

    reshape(monkeypatch, "/gpu/instance", sdk_shapes)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    assert report.line("node").status == DIFFERS and "an object" in report.line("node").detail
    stamps = report.line("timestamps")
    assert stamps.status == DIFFERS and "millisecond string x1" in stamps.detail


def test_one_entry_per_product_and_cluster_is_reported(monkeypatch, sandbox):
    def split_per_region(data):
        data["data"] = [
            {**product, "regions": [region]}
            for product in data["data"]
            for region in product["regions"]
        ]

    reshape(monkeypatch, "/products", split_per_region)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("catalog shape")
    assert line.status == DIFFERS and "one entry per product and cluster" in line.detail


def test_a_field_unknown_to_the_fixtures_is_reported(monkeypatch, sandbox):
    """The sandbox sends no field the fixtures lack, so the packaged copy forgets one."""
    known = known_fields.KNOWN_FIELDS["GET /products"]
    assert "data[].canBuy" in known
    monkeypatch.setitem(known_fields.KNOWN_FIELDS, "GET /products", known - {"data[].canBuy"})
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    line = report.line("fields")
    assert line.status == DIFFERS
    assert line.detail == "not in the contract fixtures: GET /products: data[].canBuy"
    assert "fields: differs: not in the contract fixtures: GET /products" in report.bug_report()


def test_a_new_nested_object_is_one_finding(monkeypatch, sandbox):
    def add_object(data):
        data["data"][0]["discount"] = {"percent": 10, "until": "1711995567"}

    reshape(monkeypatch, "/products", add_object)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("fields")
    assert line.detail == "not in the contract fixtures: GET /products: data[].discount"


@pytest.mark.parametrize("channel_status", [400, 200])
def test_template_parameters_refused_or_ignored_are_reported(monkeypatch, sandbox, channel_status):
    original = Probe._get_once

    def refusing(self, path, params, **kw):
        reply = original(self, path, params, **kw)
        if path == "/templates" and (params or {}).get("channel") == "private":
            if channel_status == 400:
                reply.status, reply.data = 400, {"code": 400, "reason": "VALIDATOR_PARAM"}
            else:  # accepted but ignored: official templates come back
                reply = original(self, path, {"pageNum": 0, "pageSize": 10})
        return reply

    monkeypatch.setattr(Probe, "_get_once", refusing)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("template params")
    assert line.status == DIFFERS
    if channel_status == 400:
        assert "answered HTTP 400 VALIDATOR_PARAM; without them: HTTP 200" in line.detail
    else:
        assert "templates of other channels" in line.detail


def test_masked_and_clear_registry_passwords(monkeypatch, sandbox):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.api_key}"
    body = {"name": "hub", "username": "me", "password": "hunter2-registry"}
    assert session.post(sandbox.api_url + "/repository/auth/save", json=body).status_code == 200
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    assert report.line("registry passwords").status == OK
    assert "hunter2-registry" not in report.text()

    def unmask(data):
        for auth in data["data"]:
            auth["password"] = "hunter2-registry"

    reshape(monkeypatch, "/repository/auths", unmask)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    line = report.line("registry passwords")
    assert line.status == DIFFERS and line.detail == "1 of 1 listed unmasked"
    assert "hunter2-registry" not in report.text() + report.bug_report()


def page_edit(monkeypatch, change: Callable[[int, Any], Any]) -> None:
    """Let ``change(pageNum, reply)`` edit or replace the instance pages the sandbox answers."""
    original = Probe._get_once

    def edited(self, path, params, **kw):
        reply = original(self, path, params, **kw)
        if path == "/gpu/instances":
            reply = change(int((params or {})["pageNum"]), reply) or reply
        return reply

    monkeypatch.setattr(Probe, "_get_once", edited)


def test_strictly_one_based_paging_is_reported(monkeypatch, sandbox):
    make_instances(sandbox, ["page-a", "page-b"])

    def shift(number, reply):
        if number == 0:
            reply.data = {"instances": [], "total": reply.data["total"]}

    page_edit(monkeypatch, shift)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("paging base")
    assert line.status == DIFFERS and "1-based: page 0 is empty" in line.detail


def test_page_zero_refused_is_reported(monkeypatch, sandbox):
    make_instances(sandbox, ["page-a"])

    def refuse(number, reply):
        if number == 0:
            reply.status, reply.data = 400, {"code": 400, "reason": "VALIDATOR_PARAM"}

    page_edit(monkeypatch, refuse)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("paging base")
    assert line.status == DIFFERS
    assert (
        line.detail
        == "instances: pageNum=0 answered HTTP 400 VALIDATOR_PARAM; page 1 holds 0 item(s)"
    )


def test_a_listing_that_changes_while_read_is_unknown(monkeypatch, sandbox):
    """Page 0 read twice gives other items (someone created an instance meanwhile)."""
    make_instances(sandbox, ["page-a", "page-b"])
    calls = []

    def moving(number, reply):
        calls.append(number)
        # Pages 0 and 1 both hold "first", as under a 1-based API, but page 0 read a second
        # time holds the sandbox's real newest instance: the list moved under the doctor.
        if number == 1 or len(calls) == 1:
            reply.data = {"instances": [{"id": "first"}], "total": 2}

    page_edit(monkeypatch, moving)
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("paging base")
    assert line.status == "unverified" and "changed while it was read" in line.detail


def test_zero_based_with_a_single_instance(sandbox):
    make_instances(sandbox, ["only-one"])
    line = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5).line("paging base")
    assert line.status == OK and line.detail.endswith("page 0 holds the only item, page 1 is empty")


def test_an_answer_no_check_foresaw_is_a_finding_not_a_crash(monkeypatch, sandbox):
    def regions_as_number(data):
        for product in data["data"]:
            product["regions"] = 3

    reshape(monkeypatch, "/products", regions_as_number)
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    line = report.line("catalog shape")
    assert line.status == DIFFERS and "cannot read (TypeError" in line.detail
    assert report.line("paging base").status == OK  # the other checks still ran
