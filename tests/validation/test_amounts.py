"""Money and sizes: one grammar to read amounts (numbers or ``$0.5``-style text) and one
formatter to print them, the same in text and in HTML."""

from __future__ import annotations

import pytest

from novita_notebook import html
from novita_notebook.errors import ValidationError
from novita_notebook.money import format_money
from novita_notebook.validation import PER_HOUR, parse_money, parse_size, size_from_text


@pytest.mark.parametrize(
    ("text", "amount"),
    [(0.5, 0.5), (2, 2.0), ("0.5", 0.5), ("$0.5", 0.5), ("0.50/h", 0.5), ("$ 3 per hour", 3.0),
     ("$1,200", 1200.0), (".25", 0.25), ("0.35 USD/h", 0.35)],
)  # fmt: skip
def test_money_reads_numbers_and_the_ways_people_write_prices(text, amount):
    assert parse_money(text) == amount


@pytest.mark.parametrize("bad", ["cheap", "-1", 0, -2.5, float("nan"), float("inf"), True, "1,20"])
def test_bad_money_names_the_unit(bad):
    with pytest.raises(ValidationError) as caught:
        parse_money(bad, "spend_limit_per_hour", unit=PER_HOUR, example="5")
    assert "must be a positive number of USD per hour, e.g. 5" in caught.value.message
    assert caught.value.field == "spend_limit_per_hour"


@pytest.mark.parametrize(
    "amount", [None, 0, 0.003, 0.004999, 0.005, 0.2975, 0.35, 1234.5, -2, -0.003, 1e6]
)
@pytest.mark.parametrize("per_hour", [False, True])
def test_money_prints_the_same_in_text_and_html(amount, per_hour):
    text = format_money(amount, per_hour=per_hour)
    assert html.format_money(amount, per_hour=per_hour) == text
    assert html.money(amount, per_hour=per_hour) in (html.text(text), "&mdash;")


def test_small_amounts_are_never_shown_as_zero():
    assert format_money(0.003) == "<$0.01" and format_money(0.003, per_hour=True) == "<$0.01/h"
    assert format_money(0) == "$0.00" and format_money(None) == "\u2014"
    assert format_money(1234.5) == "$1,234.50" and format_money(-2) == "-$2.00"


def test_sizes_are_integers_within_bounds_and_text_may_carry_the_unit():
    assert parse_size(60, "rootfs_gb", 10, 6144, "GB") == 60
    assert size_from_text("60 GB", "GB") == 60 and size_from_text("60gb", "GB") == 60
    assert size_from_text("sixty", "GB") == "sixty"
    for bad in ("60", 9, 6145, 1.5, True):
        with pytest.raises(ValidationError, match="integer between 10 and 6144"):
            parse_size(bad, "rootfs_gb", 10, 6144, "GB")
