"""The widgets driven as a person would in JupyterLab (dark theme, 1,000 px): filter the product
browser and create from it, watch the panel follow a stop made elsewhere, buttons enabled only
where they make sense, a guard warning that goes once extended or deleted, the card's buttons,
the form's validation, confirm and cancel a delete, and the panel once the API is gone. The
sandbox is checked over its API after each step; every view keeps its own alignment.
"""

from __future__ import annotations

import re

import pytest
import requests

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SETUP = """\
%load_ext novita_notebook
from novita_notebook import Novita
from novita_notebook.notebook.widgets import CreateForm, InstanceCard, InstancePanel, ProductBrowser

client = Novita.sandbox(speed=100, seed=0)
get_ipython().magics_manager.registry["NovitaMagics"].client = client  # %novita uses it too
print("sandbox at", client.sandbox_server.url)"""
#: The HTML views no widget draws, in the dark theme too: the doctor's report, the guard's
#: status and a class handout (their alignment is checked with the rest).
REPORTS = """\
from IPython.display import display
from novita_notebook.teaching import Handout, Seat

seat = Seat("student-1", "i-1", "running", "https://example.org/lab", "ssh root@x -p 1")
display(client.doctor(), client.guard_status(), Handout([seat], budget_total=40))"""
CELLS = [
    SETUP,
    "browser = ProductBrowser(client)\nbrowser",
    "panel = InstancePanel(client, interval=0.2)\npanel",
    "form = CreateForm(client)\nform",
    REPORTS,
    'card = InstanceCard(client.instance("drive-1"))\ncard',
    'client.guard("drive-1", stop_after=60, warn_before=58)',
    'client.guard("drive-1", delete_after=60, warn_before=58)',
    "%novita wait drive-1 --until removed",
    "client.sandbox_server.stop()  # the API goes away",
]
(SETUP_CELL, BROWSER_CELL, PANEL_CELL, FORM_CELL, REPORTS_CELL, CARD_CELL, GUARD_CELL,
 DELETE_GUARD_CELL, WAIT_CELL, GONE_CELL) = range(len(CELLS))  # fmt: skip


class Sandbox:
    """The sandbox the notebook's kernel started, reached over its public API."""

    def __init__(self, url: str) -> None:
        from novita_notebook.sandbox import DEFAULT_API_KEY
        from novita_notebook.sandbox.routes import API_PREFIX

        self.url = url.rstrip("/") + API_PREFIX
        self.headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}

    def instance(self, instance_id: str) -> dict:
        answer = requests.get(
            f"{self.url}/gpu/instance",
            params={"instanceId": instance_id},
            headers=self.headers,
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()

    def stop(self, instance_id: str) -> None:
        answer = requests.post(
            f"{self.url}/gpu/instance/stop",
            json={"instanceId": instance_id},
            headers=self.headers,
            timeout=10,
        )
        answer.raise_for_status()


def test_widgets_driven_by_hand(lab):
    lab.server.set_theme("JupyterLab Dark")  # the render tests run these notebooks in light
    name = lab.server.write_notebook("driven.ipynb", CELLS)
    lab.open(name)
    lab.select_cell(CARD_CELL)
    lab.menu("Run", "Run All Above Selected Cell")
    lab.wait_idle()
    assert lab.tracebacks() == [] and lab.widget_failures() == []
    reports = lab.cell(REPORTS_CELL)
    for view in (".novita-doctor", ".novita-guard-status", ".novita-handout"):
        assert reports.locator(view).count() == 1, view
    assert lab.misaligned() == [] and lab.wrapped_regions() == []
    assert lab.doubled_views() == 0
    lab.shot("reports", reports)
    url = re.search(r"sandbox at (\S+)", lab.cell(SETUP_CELL).inner_text()).group(1)
    sandbox = Sandbox(url)

    _filter_and_create(lab)
    instance_id = _panel_shows_the_new_instance(lab, sandbox)
    _panel_guard_warning_then_extend(lab)
    _card_stop_and_refresh(lab, sandbox, instance_id)
    _panel_follows_an_outside_stop(lab, sandbox, instance_id)
    _form_validation(lab)
    _delete_cancel_then_confirm(lab, sandbox, instance_id)
    _wait_until_removed(lab)
    assert lab.misaligned() == [] and lab.wrapped_regions() == []
    _panel_disconnected(lab)
    assert lab.tracebacks() == []
    assert lab.unstyled_links() == [] and lab.unpadded_cells() == []
    assert lab.console_errors == []


def _filter_and_create(lab) -> None:
    """Product browser: filter, money formatted, a row preselected, create from it."""
    browser = lab.cell(BROWSER_CELL)
    everything = _count(browser)
    browser.locator("input[placeholder='4090, A100…']").fill("4090")
    lab.page.wait_for_function(
        "([el, n]) => !el.innerText.includes('(' + n + ' offers)')",
        arg=[browser.element_handle(), everything],
    )
    assert 0 < _count(browser) < everything
    table = browser.locator(".novita-table").inner_text()
    assert re.search(r"\$0\.\d\d/h", table) and "0.2975" not in table
    assert browser.locator("select").last.input_value() != ""  # preselected product row
    lab.shot("browser-filtered", browser)
    _button(browser, "Create…").click()
    form = browser.locator(".widget-vbox", has_text="Create an instance").last
    form.locator("input[placeholder='my-gpu-box']").fill("drive-1")
    assert form.locator("input[placeholder='RTX 4090']").input_value() == "RTX 4090 24GB"
    _button(form, "Create").click()
    lab.page.wait_for_function(
        "el => el.innerText.includes('drive-1 is running')",
        arg=browser.element_handle(),
        timeout=60000,
    )
    lab.shot("browser-created", browser)


def _panel_shows_the_new_instance(lab, sandbox: Sandbox) -> str:
    """The new row appears on its own, aligned with the header; spend from the ledger."""
    panel = lab.cell(PANEL_CELL)
    row = panel.locator(".novita-table tr", has_text="drive-1")
    row.wait_for(timeout=30000)
    instance_id = row.locator("code").inner_text().strip()
    assert sandbox.instance(instance_id)["status"] == "running"
    _assert_columns_aligned(panel)
    assert _button(panel, "Start").is_disabled()  # running: nothing to start
    assert _button(panel, "Stop").is_enabled() and _button(panel, "Delete").is_enabled()
    lab.page.wait_for_function(  # cost so far is computed from the ledger's creation time
        "el => /1 live · \\$0\\.\\d\\d\\/h now · (<\\$0\\.01|≈\\$\\d)/.test(el.innerText)",
        arg=panel.element_handle(),
        timeout=15000,
    )
    assert "unknown" not in panel.locator(".novita-summary").inner_text()
    assert panel.locator("select").first.input_value() != ""  # first row preselected
    lab.shot("panel-running", panel)
    return instance_id


def _panel_guard_warning_then_extend(lab) -> None:
    """A guard deadline warns in the panel with the calls that answer it; Extend 1h there
    pushes the deadline back and the warning's buttons go away."""
    lab.select_cell(GUARD_CELL)
    lab.page.keyboard.press("Shift+Enter")
    panel = lab.cell(PANEL_CELL)
    warning = panel.locator(".novita-notice", has_text="Guard warning: drive-1")
    warning.wait_for(timeout=30000)
    assert "novita.extend('drive-1', '1h')" in warning.inner_text()
    panel.locator(".novita-guard", has_text="guarded").wait_for(timeout=15000)
    lab.shot("panel-guard-warning", panel)
    _button(panel, "Extend 1h").click()
    panel.get_by_text("Extended by 1h for drive-1.").wait_for(timeout=15000)
    assert _button(panel, "Extend 1h").is_hidden()
    warning.wait_for(state="detached", timeout=15000)  # answered: not left standing
    lab.page.wait_for_timeout(500)  # a few ticks later it has not come back
    assert panel.locator(".novita-notice", has_text="Guard warning").count() == 0


def _card_stop_and_refresh(lab, sandbox: Sandbox, instance_id: str) -> None:
    lab.select_cell(CARD_CELL)
    lab.page.keyboard.press("Shift+Enter")
    card = lab.cell(CARD_CELL)
    _button(card, "Stop").wait_for(timeout=30000)
    assert _button(card, "Start").is_disabled()
    _button(card, "Stop").click()
    card.get_by_text("Stop: drive-1 is now stopping.").wait_for(timeout=15000)
    _eventually(lambda: sandbox.instance(instance_id)["status"] == "exited")
    _button(card, "Refresh").click()
    card.locator(".novita-status", has_text="stopped").wait_for(timeout=15000)
    assert _button(card, "Start").is_enabled() and _button(card, "Stop").is_disabled()
    lab.shot("card-stopped", card)


def _panel_follows_an_outside_stop(lab, sandbox: Sandbox, instance_id: str) -> None:
    """Start from the panel's own button, then a stop made outside the notebook shows up."""
    panel = lab.cell(PANEL_CELL)
    panel.locator(".novita-table tr", has_text="stopped").wait_for(timeout=30000)
    _button(panel, "Start").click()
    panel.locator(".novita-table tr", has_text="running").wait_for(timeout=30000)
    sandbox.stop(instance_id)  # nobody touches the notebook
    panel.locator(".novita-table tr", has_text="stopped").wait_for(timeout=30000)
    assert "exited" not in panel.locator(".novita-table").first.inner_text()
    lab.shot("panel-external-stop", panel)


def _form_validation(lab) -> None:
    form = lab.cell(FORM_CELL)
    form.locator("input[placeholder='my-gpu-box']").fill("bad name!")
    form.locator("input[placeholder='8888/http, 22/tcp']").fill("2222/tcp")
    _button(form, "Create").click()
    for message in ("letters, digits and hyphens", "is reserved", "is required"):
        form.get_by_text(message).wait_for(timeout=15000)
    assert "Fix the fields marked above." in form.inner_text()
    lab.shot("form-validation", form)


def _delete_cancel_then_confirm(lab, sandbox: Sandbox, instance_id: str) -> None:
    """A delete deadline warns in the panel; the card deletes the instance (cancel first,
    then confirm) and the panel's warning goes with it."""
    card, panel = lab.cell(CARD_CELL), lab.cell(PANEL_CELL)
    lab.select_cell(DELETE_GUARD_CELL)
    lab.page.keyboard.press("Shift+Enter")
    warning = panel.locator(".novita-notice", has_text="Guard warning: drive-1")
    warning.wait_for(timeout=30000)
    _button(card, "Delete").click()
    _button(card, "Confirm delete").wait_for()
    lab.shot("card-delete-asked", card)
    _button(card, "Cancel").click()
    card.get_by_text("Delete cancelled.").wait_for()
    assert _button(card, "Confirm delete").is_hidden()
    assert sandbox.instance(instance_id)["status"] == "exited"
    _button(card, "Delete").click()
    _button(card, "Confirm delete").click()
    card.get_by_text(re.compile(r"Delete: drive-1 is now (deleting|deleted)")).wait_for(
        timeout=15000
    )
    panel.locator(".novita-table tr", has_text=re.compile("deleting|deleted")).wait_for(
        timeout=30000
    )
    lab.page.wait_for_function(  # nothing left to start, stop or delete
        "el => [...el.querySelectorAll('button')].filter(b => /^\\s*(Start|Stop|Delete)\\s*$/"
        ".test(b.innerText)).every(b => b.disabled)",
        arg=panel.element_handle(),
        timeout=30000,
    )
    _eventually(lambda: sandbox.instance(instance_id)["status"] in ("removing", "removed"))
    warning.wait_for(state="detached", timeout=15000)  # the deleted instance's warning goes
    assert panel.locator(".novita-notice", has_text="Guard warning").count() == 0
    lab.shot("deleted", panel)


def _wait_until_removed(lab) -> None:
    """``%novita wait … --until removed`` ends showing "removed" with a full, green bar."""
    lab.select_cell(WAIT_CELL)
    lab.page.keyboard.press("Shift+Enter")
    cell = lab.cell(WAIT_CELL)
    lab.page.wait_for_function(
        """el => { const bar = el.querySelector('.progress-bar');
                   return bar && bar.style.width === '100%'
                       && bar.classList.contains('progress-bar-success'); }""",
        arg=cell.element_handle(),
        timeout=60000,
    )
    label = cell.locator(".widget-hbox:has(.widget-hprogress) .widget-html").first.inner_text()
    assert re.search(r"^drive-1\s+\u2715?\s*deleted\b", label), label
    lab.wait_idle(need_busy=False)
    assert lab.tracebacks() == []
    lab.shot("wait-removed", cell)


def _panel_disconnected(lab) -> None:
    """With the API gone the panel says so, with the time of its last good read."""
    panel = lab.cell(PANEL_CELL)
    lab.select_cell(GONE_CELL)
    lab.page.keyboard.press("Shift+Enter")
    state = panel.locator(".novita-connection[data-state='disconnected']")
    state.wait_for(timeout=30000)
    assert re.search(r"last good read at \d\d:\d\d:\d\d UTC", panel.inner_text())
    lab.shot("panel-disconnected", panel)


def _button(widget, label: str):
    """The button whose whole label is ``label`` (icons aside)."""
    return widget.locator("button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).last


def _count(widget) -> int:
    """The number of offers the browser counts (compact: "... of N GPUs (M offers)")."""
    return int(re.search(r"(\d+) offers?\b", widget.inner_text()).group(1))


def _assert_columns_aligned(panel) -> None:
    """Every header cell starts where the cells of the rows below it start."""
    lefts = panel.evaluate(
        """el => [...el.querySelectorAll('table.novita-table')].map(
               t => [...t.querySelectorAll('tr')].filter(r => r.cells.length)
                     .map(r => [...r.cells].map(c => Math.round(c.getBoundingClientRect().left))))
               .flat()"""
    )
    assert len(lefts) >= 2, lefts
    for row in lefts[1:]:
        assert all(abs(a - b) <= 1 for a, b in zip(row, lefts[0], strict=True)), lefts


def _eventually(check, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.2)
