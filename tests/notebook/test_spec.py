"""Parsing of notebook input: cell create specs, envs, ports, billing and prices.
Every mistake must name the field and the rule."""

from __future__ import annotations

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.notebook import spec


def test_cell_spec_parses_every_documented_key():
    body = """
    # a comment
    name: demo-1
    gpu: RTX 4090
    region: AS-SGP-02
    regions: AS-SGP-02, CN-HK-01
    image: "pytorch/pytorch:latest"
    billing: on-demand
    max-price: $0.60
    envs: A=1, B=two
    ports: 8888/http, 22/tcp, 7860
    wait: yes
    gpu_num: 2
    """
    kwargs = spec.parse_cell_spec(body)
    assert kwargs == {
        "name": "demo-1",
        "gpu": "RTX 4090",
        "region": "AS-SGP-02",
        "regions": ["AS-SGP-02", "CN-HK-01"],
        "image": "pytorch/pytorch:latest",
        "billing": "onDemand",
        "max_price": 0.6,
        "envs": {"A": "1", "B": "two"},
        "ports": "8888/http,22/tcp,7860/http",
        "wait": True,
        "gpu_num": 2,
    }


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ("name: demo\ngpu: 4090\ncolour: red", "colour", "unknown key"),
        ("name: demo\ngpu 4090", "cell", "key: value"),
        ("gpu: 4090", "name", "needs a name"),
        ("name: demo", "gpu", "needs a gpu"),
        ("name: bad_name!\ngpu: 4090", "name", "letters, digits and hyphens"),
        ("name: demo\ngpu: 4090\nenvs: A", "envs", "KEY=value"),
        ("name: demo\ngpu: 4090\nenvs: 1A=2", "envs", "letters, digits and underscores"),
        ("name: demo\ngpu: 4090\nports: 2222/tcp", "ports", "reserved"),
        ("name: demo\ngpu: 4090\nports: 80/udp", "ports", "http or tcp"),
        ("name: demo\ngpu: 4090\nports: 70000", "ports", "1-65535"),
        ("name: demo\ngpu: 4090\nbilling: free", "billing", "onDemand, spot, monthly"),
        ("name: demo\ngpu: 4090\nmax_price: cheap", "max_price", "USD per hour"),
        ("name: demo\ngpu: 4090\nmax_price: -1", "max_price", "greater than 0"),
        ("name: demo\ngpu: 4090\nwait: maybe", "wait", "yes/no"),
        ("name: demo\ngpu: 4090\ngpu_num: two", "gpu_num", "whole number"),
        ("name: demo\ngpu: 4090\ntimeout: soon", "timeout", "seconds"),
    ],
)
def test_cell_spec_errors_name_field_and_rule(body, field, fragment):
    with pytest.raises(ValidationError) as caught:
        spec.parse_cell_spec(body)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_envs_accept_dicts_and_lists():
    assert spec.parse_envs({"X": 1}) == {"X": "1"}
    assert spec.parse_envs(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    assert spec.parse_envs("") == {}


def test_ports_accept_lists_and_normalise():
    assert spec.parse_ports([8888, "22/TCP"]) == "8888/http,22/tcp"
    assert spec.parse_ports(None) is None


def test_billing_aliases():
    assert spec.parse_billing("ONDEMAND") == "onDemand"
    assert spec.parse_billing("spot") == "spot"
    assert spec.parse_billing(None) is None
