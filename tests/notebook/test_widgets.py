"""Widgets built against the sandbox, buttons clicked programmatically, and the sandbox's
state checked afterwards; HTML fallbacks and the no-secrets rule."""

from __future__ import annotations

import os
import re
import time

import pytest

from novita_notebook.notebook.widgets import (
    CreateForm,
    InstancePanel,
    ProductBrowser,
    WaitProgress,
    spend_of,
)


def eventually(check, timeout=20.0, interval=0.02):
    """Poll ``check`` until truthy (generous: the machine is noisy)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


# -- product browser ---------------------------------------------------------------------------


def test_product_browser_filters_sort_and_create_form(client):
    browser = ProductBrowser(client)
    everything = len(browser.frame)
    assert everything > 0 and "<table" in browser.table.value

    browser.gpu.value = "4090"
    assert 0 < len(browser.frame) < everything
    assert browser.frame["product"].str.contains("4090").all()

    browser.region.value = "CN-HK-01"
    assert set(browser.frame["region"]) == {"CN-HK-01"}
    browser.region.value = "any"

    browser.available.value = True
    assert browser.frame["available"].all()

    browser.sort.value = "price_per_hour"
    prices = list(browser.frame["price_per_hour"])
    assert prices == sorted(prices)

    browser.max_price.value = 0.01
    assert len(browser.frame) == 0
    assert "No product matches" in browser.table.value
    browser.max_price.value = 0.0

    browser.choice.value = browser.choice.options[0][1]
    browser.create_button.click()
    form = browser.form
    assert isinstance(form, CreateForm)
    row = browser.frame.loc[browser.choice.value]
    assert form.fields["gpu"].value == row["product"]
    assert form.fields["region"].value == row["region"]
    assert browser.form_box.children == (form.widget,)


def test_product_browser_html_fallback(client):
    browser = ProductBrowser(client, gpu="A100")
    markup = browser._repr_html_()
    assert "A100" in markup and "<table" in markup
    bundle = browser._repr_mimebundle_()
    assert "text/html" in bundle and "text/plain" in bundle
    assert "application/vnd.jupyter.widget-view+json" in bundle


# -- create form -------------------------------------------------------------------------------


def test_create_form_inline_validation(client):
    form = CreateForm(client)
    form.fields["name"].value = "bad name!"
    form.fields["envs"].value = "NOEQUALS"
    form.fields["ports"].value = "2222/tcp"
    form.create_button.click()
    assert form.instance is None
    assert "letters, digits and hyphens" in form.messages["name"].value
    assert "KEY=value" in form.messages["envs"].value
    assert "reserved" in form.messages["ports"].value
    assert "required" in form.messages["gpu"].value
    assert client.instances().empty  # nothing was sent

    # Fixing a field clears its message live.
    form.fields["name"].value = "good-name"
    assert form.messages["name"].value == ""


def test_create_form_creates_waits_and_shows_report(client):
    form = CreateForm(client, name="form-1", gpu="RTX 4090", region="AS-SGP-02")
    form.fields["envs"].value = "A=1"
    form.wait_box.value = True
    form.create_button.click()
    instance = form.join(timeout=60)
    assert form.error is None
    assert instance is not None and instance.status == "running"
    assert client.instance("form-1").status == "running"
    assert "AS-SGP-02" in form.result.value  # fallback report + card
    assert "ssh root@" in form.result.value
    assert form.progress is not None and form.progress.statuses[-1] == "running"


def test_create_form_api_error_is_shown_not_raised(client):
    form = CreateForm(client, name="nope-1", gpu="RTX 9999")
    form.wait_box.value = False
    form.create_button.click()
    assert form.instance is None and form.error is not None
    assert "9999" in form.status.value


def test_create_form_volumes_pin_the_region_and_prefer_reaches_create(client):
    assert CreateForm(client).volumes.options == ()  # none yet: the row is hidden
    client.create_storage("data-de", "EU-DE-01", 20)
    client.create_storage("data-hk", "CN-HK-01", 20)
    form = CreateForm(client, name="vol-1", gpu="RTX 4090", region="AS-SGP-02")
    assert ("data-de (EU-DE-01, 20 GB)", "data-de") in form.volumes.options
    assert form.prefer.value == "price"
    form.volumes.value = ("data-de",)
    assert form.fields["region"].value == "EU-DE-01" and form.fields["region"].disabled
    form.volumes.value = ("data-de", "data-hk")  # two regions: refused inline, no call
    assert form.validate() is None
    assert "one region only" in form.messages["volumes"].value
    form.volumes.value = ()  # what was typed comes back
    assert form.fields["region"].value == "AS-SGP-02" and not form.fields["region"].disabled
    form.volumes.value = ("data-de",)
    form.mount.value = "data"
    assert form.validate() is None and "absolute path" in form.messages["volumes"].value
    form.mount.value = "/data"
    form.prefer.value = "region"
    kwargs = form.validate()
    assert kwargs["volumes"] == ["data-de:/data"] and kwargs["prefer"] == "region"
    form.wait_box.value = False
    form.create_button.click()
    assert form.error is None, form.status.value
    assert form.instance.region == "EU-DE-01"
    assert "data-de" in form.result.value  # the report's restriction: pinned by the volume
    assert "prefer" in form._repr_html_() and "data-de:/data" in form._repr_html_()


# -- instance panel ----------------------------------------------------------------------------


def test_instance_panel_rows_buttons_and_delete_confirmation(client, sandbox):
    first = client.create("panel-1", gpu="RTX 4090", wait=True, progress="silent")
    client.create("panel-2", gpu="RTX 4090", wait=True, progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: len(panel.row_widgets) == 2)
        assert {i.name for i in panel.states.values()} == {"panel-1", "panel-2"}
        per_hour, _ = panel.spend()
        assert per_hour > 0 and "/h now" in panel.summary.value

        panel.select("panel-1")
        assert "ssh root@" in panel.card.value  # the detailed card, fetched on selection

        # Redraw only what changed: an identical state redraws nothing.
        before = panel.redraws
        panel.apply(panel.states[first.id])
        assert panel.redraws == before

        untouched = panel.row_widgets[
            next(i for i, s in panel.states.items() if s.name == "panel-2")
        ]
        untouched_value = untouched.value
        panel.stop_button.click()
        assert "Stop: panel-1 is now stopping." in panel.message.value
        eventually(lambda: panel.states[first.id].status == "exited")
        eventually(lambda: "exited" in panel.row_widgets[first.id].value)  # drawn after it
        assert untouched.value == untouched_value  # the other row kept its markup

        panel.start_button.click()
        eventually(lambda: panel.states[first.id].status == "running")

        panel.delete_button.click()
        assert panel.pending_delete == first.id
        assert panel.confirm_box.layout.display == ""
        panel.cancel_button.click()
        assert panel.pending_delete is None
        assert client.instance(first.id).status == "running"

        panel.delete_button.click()
        panel.confirm_button.click()
        assert "Delete: panel-1 is being deleted." in panel.message.value
        eventually(lambda: panel.states[first.id].status == "removed")
        assert [i.name for i in panel.live] == ["panel-2"]
    finally:
        panel.stop()
    assert panel.watcher is None


def test_panel_shows_guard_warnings_and_extends_or_cancels_from_them(client, monkeypatch):
    from datetime import timedelta

    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")  # the panel's watcher guards in-kernel
    inst = client.create("box-g1", gpu="RTX 3090", image="ubuntu:22.04", wait=True,
                         progress="silent")  # fmt: skip
    panel = InstancePanel(client, interval=0.1)
    try:
        eventually(lambda: inst.id in panel.row_html)
        assert (
            "novita-guard" not in panel.row_html[inst.id]
            and panel.guard_box.layout.display == "none"
        )
        client.guard(inst, stop_after=60, warn_before=58)
        eventually(lambda: panel.warning is not None)
        # the notice is kept, then drawn, on the watcher's thread
        eventually(lambda: "Guard warning: box-g1" in panel.notices_box.value)
        notices = panel.notices_box.value
        assert "Guard warning: box-g1" in notices and "novita.extend(&#x27;box-g1" in notices
        assert panel.guard_box.layout.display == "" and panel.extend_button.layout.display == ""
        assert "guarded \u00b7 until" in panel.row_html[inst.id]
        before = client.guards.store.get(inst.id).rules.stop_after
        panel.extend_button.click()
        after = client.guards.store.get(inst.id).rules.stop_after
        assert after - before >= timedelta(minutes=59)
        assert "Extended by 1h for box-g1" in panel.message.value
        assert panel.guard_box.layout.display == "none"
        client.guard(inst, stop_after=60, warn_before=58, replace=True)
        eventually(lambda: panel.warning is not None)
        panel.unguard_button.click()
        assert "Guard rule cancelled" in panel.message.value
        record = client.guards.store.get(inst.id)
        assert record is None or record.rules.stop_after is None
        eventually(lambda: "novita-guard" not in panel.row_html[inst.id])
        # A spot notice (the sandbox reclaims only spot instances, on its own clock): the guard
        # service announces it; the panel lists it and marks the row.
        client.guards.emit("spot.reclaim_notice", {"instanceId": inst.id, "name": "box-g1",
                                                   "reclaim_time": "17:42Z", "rule": "spot"})  # fmt: skip
        assert "Spot reclaim notice: box-g1" in panel.notices_box.value
        assert "reclaim 17:42Z" in panel.row_html[inst.id]
        assert "Spot reclaim notice" in panel._repr_html_()
    finally:
        panel.stop()
    assert panel.on_guard_event not in client.guards.listeners


def test_panel_rows_on_their_way_show_an_eta_that_counts_down(client):
    from datetime import UTC, datetime, timedelta

    from novita_notebook.models import Instance

    panel = InstancePanel(client, start=False)
    pulling = Instance(id="eta-1", name="eta-1", status="pulling", price_per_hour=0.35)
    pulling.created_at = datetime.now(UTC) - timedelta(seconds=5)
    panel.apply(pulling)
    row = panel.row_html["eta-1"]
    assert "novita-eta" in row and re.search(r"(ready in|no history yet:) ~\d+ (s|min)", row)
    assert "pulling, " not in row and "pulling \u00b7" not in row  # the badge says pulling
    assert "novita-eta" in panel._repr_html_()
    assert "eta-1" in panel._eta_rows  # each tick redraws it: the countdown moves alone
    seen = []
    panel.apply = seen.append  # what tick() hands on, without a status change
    panel.tick()
    assert [i.id for i in seen] == ["eta-1"]
    del panel.apply
    running = Instance(id="eta-1", name="eta-1", status="running", price_per_hour=0.35)
    panel.apply(running)
    assert "novita-eta" not in panel.row_html["eta-1"] and "eta-1" not in panel._eta_rows


def test_instance_panel_needs_a_selection(client):
    panel = InstancePanel(client, interval=0.05)
    try:
        panel.stop_button.click()
        assert "Select an instance" in panel.message.value
    finally:
        panel.stop()


def test_panel_html_and_repr_have_no_secret(client):
    client.create("secret-1", gpu="RTX 4090", wait=True, progress="silent")
    detailed = client.instance("secret-1")
    assert detailed.ssh_password  # the sandbox gives one; it must never be shown
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: panel.states)
        panel.select("secret-1")
        for text in (
            panel._repr_html_(),
            repr(panel),
            panel.card.value,
            panel.rows_box.children[0].value,
        ):
            assert detailed.ssh_password not in text
        assert "secret-1" in panel._repr_html_()
    finally:
        panel.stop()


# -- wait progress -----------------------------------------------------------------------------


def test_wait_progress_as_wait_callback(client):
    instance = client.create("prog-1", gpu="RTX 4090")
    progress = WaitProgress("prog-1")
    final = client.wait(instance, until="running", timeout=60, progress=progress.update)
    assert final.status == "running"
    assert progress.statuses[-1] == "running"
    assert progress.phase == "running"
    assert progress.bar.value == progress.bar.max
    assert progress.elapsed > 0
    text = repr(progress)
    assert text.startswith("prog-1") and "running" in text
    assert "running" in progress._repr_html_()


def test_wait_progress_is_thread_safe_to_update():
    import threading

    from novita_notebook.models import Instance

    progress = WaitProgress("t")
    statuses = ["toCreate", "creating", "pulling", "running"]

    def feed():
        for status in statuses:
            progress.update(Instance(id="i", name="t", status=status), 1.0, "provisioning")

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert progress.statuses[0] == "toCreate" and progress.last_status == "running"


def test_spend_of_counts_billed_only():
    from datetime import UTC, datetime, timedelta

    from novita_notebook.models import Instance

    now = datetime(2026, 1, 1, tzinfo=UTC)
    running = Instance(id="a", name="a", status="running", price_per_hour=1.0)
    running.started_at = now - timedelta(hours=2)
    stopped = Instance(id="b", name="b", status="exited", price_per_hour=5.0)
    per_hour, so_far = spend_of([running, stopped], now=now)
    assert per_hour == pytest.approx(1.0)
    assert so_far == pytest.approx(2.0)


# -- without ipywidgets ------------------------------------------------------------------------


@pytest.fixture
def no_ipywidgets(monkeypatch):
    """Simulate an environment without ipywidgets (it is installed here, so force the edge)."""
    from novita_notebook.notebook import display

    monkeypatch.setattr(display, "ipywidgets_module", lambda: None)


def test_everything_renders_as_html_without_ipywidgets(client, no_ipywidgets):
    browser = ProductBrowser(client, gpu="4090")
    assert browser.widget is None
    bundle = browser._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "RTX 4090" in bundle["text/html"]
    assert browser.open_form(0).prefill["gpu"].startswith("RTX 4090")

    form = CreateForm(client, name="plain-1", gpu="RTX 4090", wait="no")
    instance = form.submit()
    assert instance is not None and client.instance("plain-1").name == "plain-1"
    assert "plain-1" in form._repr_html_()

    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: "plain-1" in {i.name for i in panel.states.values()})
        assert "plain-1" in panel._repr_html_() and "plain-1" in repr(panel)
        assert set(panel._repr_mimebundle_()) == {"text/plain", "text/html"}
    finally:
        panel.stop()

    progress = WaitProgress("plain-1")
    client.wait(instance, until="running", timeout=60, progress=progress.update)
    assert "running" in progress._repr_html_() and progress.widget is None


def test_create_form_without_widgets_reports_problems(client, no_ipywidgets):
    form = CreateForm(client, name="bad name", gpu="RTX 4090", ports="2223/tcp")
    assert form.submit() is None
    assert set(form.problems) == {"name", "ports"}


# -- instance card -----------------------------------------------------------------------------


def test_instance_card_buttons_act_on_the_sandbox(client):
    from novita_notebook.notebook.widgets import InstanceCard

    instance = client.create("cardw-1", gpu="RTX 4090", wait=True, progress="silent")
    card = InstanceCard(instance)
    assert "cardw-1" in card.card.value
    card.stop_button.click()
    assert "Stop: cardw-1 is now stopping." in card.message.value
    client.wait(instance.id, until="exited", timeout=30, progress=False)
    assert card.refresh().status == "exited" and "exited" in card.card.value

    card.delete_button.click()
    card.cancel_button.click()
    assert client.instance(instance.id).status == "exited"
    card.delete_button.click()
    card.confirm_button.click()
    assert client.wait(instance.id, until="removed", timeout=30, progress=False).status == "removed"


def test_load_ext_displays_bound_instances_as_cards(shell, magics, client):
    """Outside a kernel the card shows as its HTML and text (the widget needs a frontend;
    tests/notebook/test_kernel_display.py checks the widget in a real kernel)."""
    from IPython.utils.capture import capture_output

    instance = client.create("fmt-1", gpu="RTX 4090", progress="silent")
    with capture_output() as shown:
        data, _ = shell.display_formatter.format(instance)
    assert data == {}  # the card displayed itself
    (output,) = shown.outputs
    assert "fmt-1" in output.data["text/html"] and "novita-card" in output.data["text/html"]
    assert output.data["text/plain"].startswith("fmt-1  creating")
    shell.run_line_magic("unload_ext", "novita_notebook")
    try:
        data, _ = shell.display_formatter.format(instance)
        assert "application/vnd.jupyter.widget-view+json" not in data
        assert "fmt-1" in data["text/html"]  # the Instance's own card
    finally:
        shell.run_line_magic("load_ext", "novita_notebook")


def test_create_form_never_shows_env_values(client):
    form = CreateForm(client, name="env-1", gpu="RTX 4090", envs="HF_TOKEN=hf_very_secret")
    for shown in (form._repr_html_(), repr(form)):
        assert "hf_very_secret" not in shown
        assert "HF_TOKEN=***" in shown


# -- issue 13: what the browser showed wrong ------------------------------------------------------


def test_panel_cost_so_far_uses_ledger_times_and_says_unknown_for_others(
    client, sandbox, monkeypatch, tmp_path
):
    from datetime import timedelta

    from novita_notebook import Novita
    from novita_notebook.notebook.panel import spend_detail

    ours = client.create("ours-1", gpu="RTX 4090", wait=True, progress="silent")
    # Created by someone else: another ledger, so this client has no creation time for it.
    home = os.environ["NOVITA_NOTEBOOK_HOME"]
    monkeypatch.setenv("NOVITA_NOTEBOOK_HOME", str(tmp_path / "elsewhere"))
    other_client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
    other_client.create("theirs-1", gpu="RTX 4090", wait=True, progress="silent")
    other_client.close()
    monkeypatch.setenv("NOVITA_NOTEBOOK_HOME", home)
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: {i.name for i in panel.live} == {"ours-1", "theirs-1"})
        listed = panel.states[ours.id]
        assert listed.started_at is None and listed.created_at is None  # the list view's gap
        starts = panel.starts()
        assert set(starts) == {ours.id}
        spend = spend_detail(panel.live, now=starts[ours.id] + timedelta(hours=2), starts=starts)
        assert spend.so_far == pytest.approx(2 * listed.price_per_hour)
        assert spend.unknown == ("theirs-1",)
        eventually(lambda: "unknown for theirs-1" in panel.summary.value)
        assert "$0.00 so far" not in panel.summary.value
    finally:
        panel.stop()


def test_panel_summary_redraws_each_tick_without_row_changes(client):
    client.create("tick-1", gpu="RTX 4090", wait=True, progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: panel.row_widgets)
        eventually(lambda: len(panel.history) >= 3)
        redraws, summary = panel.redraws, panel.summary.value
        eventually(lambda: panel.summary.value != summary)  # the sparkline moved on
        assert panel.redraws == redraws  # no row changed
        assert "<svg" in panel.summary.value
    finally:
        panel.stop()
    assert panel._ticker is None


def test_panel_header_and_rows_share_one_fixed_layout(client):
    client.create("align-1", gpu="RTX 4090", wait=True, progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: panel.row_widgets)
        row = next(iter(panel.row_widgets.values())).value
        header = panel.header.value
        colgroup = header[header.index("<colgroup>") : header.index("</colgroup>")]
        assert colgroup and colgroup in row
        for markup in (header, row):
            assert "table-layout:fixed;width:100%" in markup
        assert panel.header.layout.margin == panel.rows_box.layout.margin == "0"
    finally:
        panel.stop()


def test_dropdowns_preselect_the_first_row(client):
    browser = ProductBrowser(client, gpu="4090")
    assert browser.choice.value == browser.choice.options[0][1]
    browser.create_button.click()  # straight away: no "choose a product row first"
    assert browser.form is not None and "choose" not in browser.count.value
    client.create("pre-1", gpu="RTX 4090", wait=True, progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: panel.selector.value)
        panel.stop_button.click()
        assert "Stop: pre-1 is now stopping." in panel.message.value
    finally:
        panel.stop()


def test_product_browser_is_compact_and_formats_money(client):
    browser = ProductBrowser(client, gpu="4090")
    table = browser.table.value
    assert table.count("<th ") == 8  # the default set: what tells offers apart
    assert "RAM GB/GPU</th>" in table and "disk GB/GPU</th>" in table
    assert "$/h</th>" in table and "monthly" not in table
    assert "0.2975" not in table and "0.29750000000000004" not in browser._repr_html_()
    assert "$0.35/h" in table
    assert "boolean value of NA" not in table and "&lt;NA&gt;" not in table
    assert "</span> high</td>" in table and "*" not in table  # the region's stock, in words
    assert "white-space:nowrap'>RTX 4090 24GB" in table  # names stay on one line
    browser.columns_button.value = True
    assert browser.columns.layout.display == ""
    browser.columns.value = (*browser.columns.value, "monthly_per_hour")
    assert "monthly $/h" in browser.table.value
    assert "0.2975" not in browser.table.value  # $0.30/h
    assert "$0.30/h" in browser.table.value
    assert "by region" in browser.chart.value and "<div style='background:" in browser.chart.value


def test_links_are_styled_and_report_cells_padded(client):
    from novita_notebook import html

    assert "var(--jp-content-link-color" in html.link("http://x")
    form = CreateForm(client, name="pad-1", gpu="RTX 4090")
    form.wait_box.value = False
    form.create_button.click()
    assert form.instance is not None
    report = form.result.value.split("novita-card")[0]
    assert "<td style='padding:3px 8px" in report and "text-align:left" in report
    assert "var(--jp-content-link-color" in form.result.value  # the card's Jupyter link


def test_money_and_relative_time_formatting():
    from datetime import UTC, datetime, timedelta

    from novita_notebook import html

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert html.format_money(0.29750000000000004, per_hour=True) == "$0.30/h"
    assert html.format_money(0.001) == "<$0.01"
    assert html.format_money(0) == "$0.00"
    assert html.format_money(None) == "\u2014"
    assert html.relative_time(now - timedelta(minutes=3), now=now) == "3 min ago"
    assert html.relative_time(now - timedelta(seconds=3), now=now) == "just now"
    assert html.relative_time(now - timedelta(hours=5), now=now) == "5 h ago"
    assert html.sparkline([1.0]) == "" and "<polyline" in html.sparkline([0.0, 1.0, 0.5])


def test_status_badge_is_not_colour_alone():
    from novita_notebook import html

    for phase in ("running", "stopped", "failed", "provisioning"):
        markup = html.badge("x", phase)
        assert html.PHASE_ICONS[phase] in markup and "var(--jp-" in markup
    assert len({html.PHASE_ICONS[p] for p in ("running", "stopped", "failed")}) == 3
