"""Money has one home: API price units, the cost of a billed span and how amounts print."""

from datetime import UTC, datetime, timedelta

from novita_notebook.money import cost_so_far, format_money, usd_from_api


def test_api_price_units_become_usd_and_junk_becomes_none():
    assert usd_from_api(35000) == 0.35 and usd_from_api("35000") == 0.35
    assert usd_from_api("") is None and usd_from_api("n/a") is None and usd_from_api(None) is None
    assert usd_from_api("nan") is None and usd_from_api(True) is None


def test_cost_of_a_span_without_float_noise():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert cost_so_far(0.35, start, start + timedelta(minutes=51)) == 0.2975
    assert cost_so_far(0.35, start, start - timedelta(hours=1)) == 0.0
    assert cost_so_far(None, start, start) is None and cost_so_far(0.35, None, start) is None


def test_amounts_print_rounded():
    assert format_money(0.29750000000000004, per_hour=True) == "$0.30/h"
    assert format_money(1234.5) == "$1,234.50"
    assert format_money(None) == "—" and format_money(None, missing="-") == "-"
