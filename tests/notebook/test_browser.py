"""The product browser tells offers apart and creates exactly the one picked: RAM and disk
shown, each region's own stock in words, compact by default (the cheapest offer of each GPU)
with every offer one click away, and a filter matching nothing is a sentence, not an error."""

from __future__ import annotations

from novita_notebook.notebook.widgets import ProductBrowser


def test_compact_by_default_every_offer_on_request(client):
    browser = ProductBrowser(client)
    offers = len(browser.frame)
    gpus = browser.frame["gpu"].nunique()
    assert len(browser.shown) == gpus < offers
    assert len(browser.choice.options) == gpus
    assert f"each of {gpus} GPUs ({offers} offers)" in browser.count.value
    browser.all_button.value = True
    assert len(browser.shown) == offers == len(browser.choice.options)
    assert browser.count.value == f"{offers} offers"
    assert browser.all_button.description == "cheapest per GPU"


def test_rows_show_what_tells_them_apart_and_stock_in_words(client):
    browser = ProductBrowser(client, gpu="4090")
    browser.all_button.value = True
    table = browser.table.value
    for heading in ("RAM GB/GPU", "disk GB/GPU", "stock here"):
        assert f">{heading}</th>" in table
    assert "96</td>" in table and "200</td>" in table  # the $0.39 offer's RAM and disk
    words = {"none": "none: sold out here", "low": "low: a few left", "high": "> high<"}
    for level in set(browser.frame["stock"].dropna()):
        assert words.get(level, level) in table
    assert "*" not in table and "what the region&#x27;s own listing says" in table
    labels = [label for label, _ in browser.choice.options]
    assert "RTX 4090 24GB · US-CA-06 · $0.39/h · 96 GB RAM · 200 GB disk" in labels


def test_create_makes_exactly_the_row_picked(client):
    browser = ProductBrowser(client, gpu="4090")
    browser.all_button.value = True
    picked = next(value for label, value in browser.choice.options if "US-CA-06 · $0.39/h" in label)
    browser.choice.value = picked
    browser.create_button.click()
    form = browser.form
    assert "Creates exactly RTX 4090 24GB · US-CA-06 · $0.39/h" in form.offer.value
    form.fields["name"].value = "exact-1"
    form.wait_box.value = False
    form.create_button.click()
    assert form.error is None, form.status.value
    created = client.instance(form.instance.id)
    # the row's own product and region, not the $0.35 twin in AS-SGP-02
    assert created.product_id == browser.frame.loc[picked, "product_id"] == "4090.16c96g.v2"
    assert created.region == "US-CA-06" and created.price_per_hour == 0.39


def test_a_filter_matching_nothing_is_a_sentence_and_create_is_off(client):
    browser = ProductBrowser(client)
    assert not browser.create_button.disabled
    browser.gpu.value = "RTX 9999"
    assert "No product matches" in browser.table.value
    assert "ValidationError" not in browser.table.value and "\u26a0" not in browser.table.value
    assert browser.create_button.disabled and browser.choice.options == ()
    browser.gpu.value = "4090"
    assert not browser.create_button.disabled
    browser.max_price.value = 0.01
    assert "no offer passes these filters" in browser.table.value
    assert browser.create_button.disabled
