"""Parsing of notebook input: cell create specs, envs, ports, billing and prices.
Every mistake names the field and the rule, and the rules are the option schema's."""

from __future__ import annotations

import pytest

from novita_notebook import validation
from novita_notebook.errors import ValidationError
from novita_notebook.notebook import spec
from novita_notebook.options import CREATE


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
        "envs": [("A", "1"), ("B", "two")],
        "ports": [(8888, "http"), (22, "tcp"), (7860, "tcp")],
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
        ("name: demo\ngpu: 4090\nenvs: 1A=2", "envs", "must match [A-Za-z_]"),
        ("name: demo\ngpu: 4090\nports: 2222/tcp", "ports", "reserved"),
        ("name: demo\ngpu: 4090\nports: 80/udp", "ports", "must be tcp or http"),
        ("name: demo\ngpu: 4090\nports: 70000", "ports", "between 1 and 65535"),
        ("name: demo\ngpu: 4090\nbilling: free", "billing", "onDemand, spot, monthly"),
        ("name: demo\ngpu: 4090\nmax_price: cheap", "max_price", "USD per GPU-hour"),
        ("name: demo\ngpu: 4090\nmax_price: -1", "max_price", "positive number"),
        ("name: demo\ngpu: 4090\ntimeout: 0", "timeout", "positive duration"),
        ("name: demo\ngpu: 4090\nwait: maybe", "wait", "yes or no"),
        ("name: demo\ngpu: 4090\ngpu_num: two", "gpu_num", "integer between 1 and 8"),
        ("name: demo\ngpu: 4090\ntimeout: soon", "timeout", "seconds"),
    ],
)
def test_cell_spec_errors_name_field_and_rule(body, field, fragment):
    with pytest.raises(ValidationError) as caught:
        spec.parse_cell_spec(body)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_envs_accept_dicts_lists_and_text():
    envs = CREATE["envs"]
    assert envs.parse({"X": 1}) == [("X", "1")]
    assert envs.parse_text("A=1, B=x=y") == [("A", "1"), ("B", "x=y")]
    assert envs.parse_text("") is None


def test_ports_accept_lists_and_normalise():
    ports = CREATE["ports"]
    assert ports.parse([8888, "22/TCP", "80/http"]) == [(8888, "tcp"), (22, "tcp"), (80, "http")]
    assert ports.parse_text("8888/http 22") == [(8888, "http"), (22, "tcp")]
    assert ports.parse(None) is None


def test_billing_aliases():
    billing = CREATE["billing"]
    assert billing.parse_text("ONDEMAND") == "onDemand"
    assert billing.parse("spot") == "spot"
    assert billing.parse(None) is None


def _collected(checker):
    def run(value):
        problems = validation.Problems()
        checker(value, problems)
        problems.raise_if_any()

    return run


@pytest.mark.parametrize(
    ("key", "text", "library", "value"),
    [
        ("name", "box-", _collected(validation.check_name), "box-"),
        ("name", "-box", _collected(validation.check_name), "-box"),
        ("billing", "free", validation.normalise_billing, "free"),
        ("max_price", "-1", validation.parse_money, "-1"),
        ("max_price", "nan", validation.parse_money, "nan"),
        ("gpu_num", "9", _collected(validation.check_gpu_num), 9),
        ("ports", "2222/tcp", _collected(validation.parse_ports), "2222/tcp"),
        ("timeout", "0", lambda v: validation.parse_seconds(v, "timeout"), "0"),
    ],
)
def test_spec_rules_are_validations(key, text, library, value):
    """One home per rule: the cell refuses exactly what validation/ refuses, in its words."""
    with pytest.raises(ValidationError) as expected:
        library(value)
    with pytest.raises(ValidationError) as caught:
        name = "" if key == "name" else "name: ok-1\n"
        spec.parse_cell_spec(f"{name}gpu: 4090\n{key}: {text}")
    assert caught.value.message == expected.value.message


def test_name_ending_in_hyphen_is_refused_as_the_library_does():
    with pytest.raises(ValidationError) as caught:
        spec.parse_cell_spec("name: box-\ngpu: 4090")
    assert caught.value.field == "name"


def test_repeated_key_is_refused_naming_key_and_both_lines():
    with pytest.raises(ValidationError) as caught:
        spec.parse_cell_spec("name: first\ngpu: 4090\n# comment\nname: second")
    assert caught.value.field == "name"
    assert "'name'" in caught.value.message
    assert "line 1" in caught.value.message and "line 4" in caught.value.message


def test_aliases_of_one_key_count_as_repeated():
    with pytest.raises(ValidationError) as caught:
        spec.parse_cell_spec("name: a\ngpu: 4090\nrootfs_size: 80\nrootfs_gb: 90")
    assert caught.value.field == "rootfs_gb"
    assert "line 3" in caught.value.message and "line 4" in caught.value.message


def test_yaml_list_lines_are_explained():
    with pytest.raises(ValidationError) as caught:
        spec.parse_cell_spec("name: a\ngpu: 4090\nregions:\n  - AS-SGP-02\n  - CN-HK-01")
    assert "YAML lists are not supported" in caught.value.message
    assert "line 4" in caught.value.message


def test_non_finite_price_is_refused():
    with pytest.raises(ValidationError) as caught:
        spec.parse_cell_spec("name: a\ngpu: 4090\nmax_price: inf")
    assert caught.value.field == "max_price"
