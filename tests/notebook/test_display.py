"""Rich display: connection cards and tables carry the connection details and never a secret;
the notebook face stays out of `import novita_notebook`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from novita_notebook import html, views
from novita_notebook.models import Instance


@pytest.fixture
def running(client):
    created = client.create("card-1", gpu="RTX 4090", wait=True, progress="silent")
    return client.instance(created.id), created


def test_instance_card_has_connection_details_and_no_password(running, sandbox):
    instance, _ = running
    assert instance.ssh_password, "the sandbox hands out an SSH password"
    card = instance._repr_html_()
    assert instance.ssh_command in card and "copy" in card
    assert f"href='{instance.jupyter_url}'" in card
    assert instance.region in card and "$0." in card and "/h" in card
    for shown in (card, repr(instance), str(instance), views.instance_text(instance)):
        assert instance.ssh_password not in shown
        assert sandbox.api_key not in shown
    text = views.instance_text(instance)
    assert instance.ssh_command in text and instance.jupyter_url in text


def test_card_escapes_hostile_values():
    hostile = Instance(id="x", name="<script>alert(1)</script>", status="running")
    hostile.jupyter_url = "javascript:alert('x')"
    card = views.instance_card(hostile)
    assert "<script>" not in card
    assert "alert(&#x27;x&#x27;)" in card


def test_instance_table_and_failed_card():
    from novita_notebook.models import StatusError

    ok = Instance(id="a", name="a", status="running", price_per_hour=0.35)
    bad = Instance(
        id="b", name="b", status="exited", status_error=StatusError("pullImageFailed", "no image")
    )
    table = views.instance_table([ok, bad])
    assert table.count("<tr ") == 3
    assert html.PHASE_COLOURS["running"] in table and html.PHASE_COLOURS["failed"] in table
    assert "pullImageFailed: no image" in views.instance_card(bad)


def test_spent_so_far_only_for_billed_instances():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    billed = Instance(id="a", name="a", status="running", price_per_hour=2.0)
    billed.started_at = now - timedelta(minutes=30)
    assert views.spent_so_far(billed, now=now) == pytest.approx(1.0)
    stopped = Instance(id="b", name="b", status="exited", price_per_hour=2.0)
    assert views.spent_so_far(stopped, now=now) is None


def test_html_money_goes_through_money_py(monkeypatch):
    """html has no cost arithmetic or money format of its own: both come from money.py."""
    from datetime import UTC, datetime, timedelta

    from novita_notebook import money

    now = datetime(2026, 1, 1, tzinfo=UTC)
    billed = Instance(id="a", name="a", status="running", price_per_hour=0.35)
    billed.started_at = now - timedelta(minutes=51)
    assert views.spent_so_far(billed, now=now) == money.cost_so_far(0.35, billed.started_at, now)
    monkeypatch.setattr(money, "cost_so_far", lambda *a: 42.0)
    monkeypatch.setattr(money, "format_money", lambda a, **k: f"M{a}")
    assert views.spent_so_far(billed, now=now) == 42.0
    assert html.format_money(1.5) == "M1.5" and html.money(2.0) == "M2.0"
    assert html.format_money(0.001) == "<$0.01"  # a bound, not an amount: html's wording


def test_fallback_report_and_watcher_reprs_have_no_secret(running, client, sandbox):
    _, created = running
    report = created.fallback_report
    assert "chosen" in report._repr_html_() and "chosen" in repr(report)
    watcher = client.watch(interval=0.05)
    try:
        watcher.wait_for(lambda w: len(w.latest) == 1, timeout=20)
        for shown in (watcher._repr_html_(), repr(watcher)):
            assert sandbox.api_key not in shown
            assert "card-1" in watcher._repr_html_()
    finally:
        watcher.stop()


def test_magic_outputs_have_no_secret(shell, magics, client, sandbox, capsys):
    magics.client = client
    shell.run_line_magic("novita", 'create sec-1 --gpu "RTX 4090" --wait')
    shown = [
        repr(shell.run_line_magic("novita", "config")),
        shell.run_line_magic("novita", "instances").to_html(),
        shell.run_line_magic("novita", "mine").to_html(),
        capsys.readouterr().out,
    ]
    password = client.instance("sec-1").ssh_password
    for text in shown:
        assert sandbox.api_key not in text
        assert password not in text
    magics.client = None


def test_import_stays_light():
    code = (
        "import sys, novita_notebook\n"
        "heavy = [m for m in ('IPython', 'ipywidgets', 'matplotlib', 'nbclient') if m in sys.modules]\n"
        "print(heavy)\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'novita_notebook')\n"
        "print('ipywidgets' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["[]", "False"]


def test_instances_magic_is_a_dataframe_drawn_compact(ip, client):
    """``%novita instances`` stays a DataFrame; its HTML is the compact table (8 columns,
    money and relative times, no SSH), not pandas' 19-column one."""
    import pandas as pd

    client.create("wide-1", gpu="RTX 4090", wait=True, progress="silent")
    client.create("wide-2", gpu="RTX 4090", gpu_num=2, progress="silent")
    frame = ip.run_line_magic("novita", "instances")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    markup = frame._repr_html_()
    assert "novita-instances" in markup and markup.count("<th ") == 8
    assert "max-width:1000px" in markup
    assert f"{len(frame.columns)} columns" in markup
    price = frame.loc[frame["name"] == "wide-1", "price_per_hour"].item()
    assert f"{html.format_money(price)}</td>" in markup and "\u00d72" in markup
    assert "ago" in markup or "just now" in markup
    assert "ssh root@" not in markup and "novita-running" in markup
    head = frame.head(1)  # any operation gives back a plain DataFrame
    assert type(head) is pd.DataFrame and "novita-instances" not in head._repr_html_()


def test_card_of_a_gone_instance_has_a_title_and_no_rows_of_dashes():
    gone = Instance(id="drive-1", name="", status="removed")
    card = views.instance_card(gone)
    assert "drive-1</div>" in card and "region" not in card and "image" not in card
    live = Instance(id="x1", name="x", status="running")
    assert "region" in views.instance_card(live)  # a live card keeps its layout


# -- one look, one vocabulary ------------------------------------------------------------------


def _every_table_part_is_styled(markup: str) -> None:
    """Each cell says its alignment and each row its background, inline: the notebook's own
    table CSS (right-aligned, striped) cannot win."""
    import re

    cells = re.findall(r"<t[dh](?: [^>]*)?>", markup)
    assert cells, "no table in the view"
    for cell in cells:
        assert "text-align:" in cell, cell
    for row in re.findall(r"<tr(?: [^>]*)?>", markup):
        assert "background:transparent" in row, row
    for table in re.findall(r"<table(?: [^>]*)?>", markup):
        assert "margin:0" in table and "table-layout:" in table, table


def test_every_html_view_is_styled_against_the_notebook_css(running, client, tmp_path):
    from novita_notebook.doctor.report import DoctorReport, Line
    from novita_notebook.notebook.widgets import InstancePanel, ProductBrowser
    from novita_notebook.teaching import Handout, Seat

    instance, created = running
    panel = InstancePanel(client, interval=0.05)
    try:
        views_to_check = {
            "card": views.instance_card(instance),
            "report": created.fallback_report._repr_html_(),
            "browser": ProductBrowser(client, gpu="4090")._repr_html_(),
            "panel": panel._repr_html_(),
            "doctor": DoctorReport(
                api_host="api.example", calls=2, lines=[Line("key", "ok", "valid")]
            )._repr_html_(),
            "handout": Handout([Seat("s-1", "i1", "running", "https://x/", "ssh a")]).to_html(),
            "guard status": client.guard_status()._repr_html_(),
            "instances": views.instances_overview(client.instances().to_dict("records")),
        }
    finally:
        panel.stop()
    for name, markup in views_to_check.items():
        try:
            _every_table_part_is_styled(markup)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None
    assert "white-space:nowrap'>AS-SGP-02" in views_to_check["card"]  # never "AS-SGP-" / "02"


def test_failed_reads_failed_and_statuses_read_as_words():
    from novita_notebook.models import StatusError

    failed = Instance(
        id="f", name="f", status="exited", status_error=StatusError("pullImageFailed", "no")
    )
    card = views.instance_card(failed)
    assert "> failed</span>" in card and "> exited</span>" not in card
    for status, word in (("toCreate", "creating"), ("exited", "stopped"), ("toRemove", "deleting"),
                         ("removed", "deleted"), ("toStop", "stopping")):  # fmt: skip
        markup = views.instance_card(Instance(id="x", name="x", status=status))
        assert f"> {word}</span>" in markup and f"API status: {status}" in markup
    assert views.instance_text(failed).startswith("f  failed")


def test_only_web_addresses_become_links():
    from novita_notebook.models import PortMapping
    from novita_notebook.teaching import Handout, Seat

    for url in ("javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)",
                "data:text/html,<b>x</b>", "vbscript:x", "//evil.example/x"):  # fmt: skip
        instance = Instance(id="x", name="x", status="running")
        instance.jupyter_url = url
        instance.web_terminal_url = url
        instance.port_mappings = (PortMapping(8888, "http", url),)
        card = views.instance_card(instance)
        page = Handout([Seat("s-1", "x", "running", url, "ssh x")]).to_html()
        for markup in (card, page):
            assert "href=" not in markup, (url, markup)
    safe = Instance(id="y", name="y", status="running")
    safe.jupyter_url = "https://example.org/lab?token=x"
    assert "href='https://example.org/lab?token=x'" in views.instance_card(safe)


def test_times_are_shown_to_the_second():
    from datetime import UTC, datetime

    moment = datetime(2026, 12, 1, 18, 0, 5, 123456, tzinfo=UTC)
    instance = Instance(id="t", name="t", status="running")
    instance.created_at = moment
    card = views.instance_card(instance)
    assert "2026-12-01 18:00:05 UTC" in card and "123456" not in card
    status = views.guard_status_html(
        {
            "actions": [
                {
                    "time": moment.isoformat(),
                    "action": "stop",
                    "instance_id": "t",
                    "result": "ok",
                    "reason": "deadline",
                }
            ]
        }  # fmt: skip
    )
    assert "2026-12-01 18:00:05 UTC" in status and "123456" not in status


def test_templates_and_guard_records_read_well():
    from datetime import UTC, datetime

    from novita_notebook.guard.rules import GuardRules
    from novita_notebook.guard.store import GuardRecord
    from novita_notebook.models import Template, TemplatePort

    template = Template("tpl-1", "my-torch", "pytorch/pytorch:2.1", channel="private",
                        ports=(TemplatePort("http", (8888,)),))  # fmt: skip
    assert (
        repr(template)
        == "<Template 'my-torch' (tpl-1) pytorch/pytorch:2.1 private, ports 8888/http>"
    )
    # a deadline is at most a year ahead of when it is set
    set_at = datetime(2029, 12, 31, tzinfo=UTC)
    rules = GuardRules.parse(stop_after=datetime(2030, 1, 1, 18, tzinfo=UTC), budget_total=5,
                             now=set_at)  # fmt: skip
    record = GuardRecord("i-1", rules, name="demo-1", spent=1.25)
    assert repr(record).startswith("<GuardRecord demo-1 (i-1): stop at 2030-01-01 18:00:00Z")
    assert repr(record).endswith("budget $5.00 total; $1.25 counted>")


def test_mine_is_the_compact_table(ip, client):
    import pandas as pd

    client.create("mine-1", gpu="RTX 4090", wait=True, progress="silent")
    frame = ip.run_line_magic("novita", "mine")
    assert isinstance(frame, pd.DataFrame) and list(frame["name"]) == ["mine-1"]
    markup = frame._repr_html_()
    assert "novita-instances" in markup and "1 instance created from here" in markup
    assert "> running</span>" in markup and "max-width:1000px" in markup
    assert "pending" in frame.attrs


def test_handout_says_the_budget_is_for_the_whole_class():
    from novita_notebook.teaching import Handout, Seat

    handout = Handout([Seat("s-1", "i1", "running", "https://x/", "ssh a")], budget_total=40)
    assert "budget $40.00 for the whole class (all seats together)" in handout.summary()


def test_an_empty_instance_list_says_what_to_do(ip):
    frame = ip.run_line_magic("novita", "instances")
    assert len(frame) == 0 and "%novita create NAME --gpu 4090" in frame._repr_html_()
