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


def test_prices_resting_on_a_guess_print_as_estimates():
    from novita_notebook.money import ESTIMATED_PRICES, price_is_estimate

    assert format_money(0.7, per_hour=True, estimate=True) == "≈$0.70/h"
    assert not price_is_estimate("onDemand", 1) and not price_is_estimate("spot", None)
    assert price_is_estimate("monthly", 1) and price_is_estimate("onDemand", 2)
    assert price_is_estimate(volume=True)
    assert set(ESTIMATED_PRICES) == {"monthly", "several GPUs", "network volume"}


def test_guessed_prices_are_marked_wherever_they_show(client):
    from novita_notebook import views

    two = client.create("two-gpus", gpu="RTX 3090", gpu_num=2, image="ubuntu:22.04")
    one = client.create("one-gpu", gpu="RTX 3090", image="ubuntu:22.04")
    assert two.price_estimated and not one.price_estimated
    assert "≈$" in repr(two) and "≈" not in repr(one)
    assert "≈$" in two.fallback_report.chosen.detail
    assert "≈$" not in one.fallback_report.chosen.detail
    assert "≈$" in two.fallback_report._repr_html_()
    assert "≈" in views.instance_card(two) and "≈" not in views.instance_card(one)
    assert client.products().attrs["estimated"] == ["monthly_per_hour"]
    assert "price_per_hour" in client.products(gpu_num=2).attrs["estimated"]
    assert client.instances().attrs["estimated"] == ["price_per_hour", "cost_so_far"]
    client.create_storage("data", "AS-SGP-02", 20)
    assert client.storages().attrs["estimated"] == ["price_per_hour", "price_per_month"]
