"""The schema comparison itself: it derives nested types and reports missing fields, unknown
fields and type changes (digit strings, nullables, optionals), so the contract tests can fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import schema  # noqa: E402

FIXTURE = {
    "response": {
        "data": [{"id": "a.b", "price": "35000", "spotPrice": "1", "n": 2, "ok": True}],
        "total": 1,
    },
    "nullable": ["data[].spotPrice"],
    "optional": ["data[].spotPrice"],
}


def good() -> dict:
    return {
        "data": [{"id": "26", "price": "67000", "spotPrice": None, "n": 3, "ok": False}],
        "total": 0,
    }


def test_derive_marks_digit_strings_and_nests():
    derived = schema.derive(FIXTURE["response"])
    item = derived["object"]["data"]["array"]["object"]
    assert item == {
        "id": "string",
        "price": "digits",
        "spotPrice": "digits",
        "n": "int",
        "ok": "bool",
    }


def test_a_matching_body_passes_with_nullable_and_optional():
    assert schema.check(FIXTURE, good()) == []
    absent = good()
    del absent["data"][0]["spotPrice"]
    assert schema.check(FIXTURE, absent) == []


def test_each_kind_of_difference_is_reported():
    missing = good()
    del missing["data"][0]["price"]
    assert schema.check(FIXTURE, missing) == ["data[].price: missing"]
    unknown = good()
    unknown["data"][0]["extra"] = 1
    assert schema.check(FIXTURE, unknown) == ["data[].extra: unknown field"]
    wrong = good()
    wrong["data"][0]["price"] = 67000
    assert schema.check(FIXTURE, wrong)[0].startswith("data[].price: expected digits, got int")
    not_digits = good()
    not_digits["data"][0]["price"] = ""
    assert "expected digits" in schema.check(FIXTURE, not_digits)[0]
    null_total = good()
    null_total["total"] = None
    assert schema.check(FIXTURE, null_total) == ["total: expected int, got null (None)"]
    assert schema.check(FIXTURE, []) == ["<top>: expected an object, got list"]


def test_every_fixture_loads_and_names_its_source():
    names = schema.names()
    assert len(names) >= 13
    for name in names:
        fixture = schema.load(name)
        assert set(fixture) >= {"_source", "request", "status", "response"}
        assert fixture["request"]["method"] in ("GET", "POST")
        schema.derive(fixture["response"])
