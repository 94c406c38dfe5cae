"""The live panel says whether it is live: live, paused or disconnected with its last good
read; guard warnings go once resolved (Extend, elsewhere, delete); buttons follow the
selected instance's state; an empty panel says what to do next."""

from __future__ import annotations

import re
import time

import pytest

from novita_notebook.notebook.widgets import InstancePanel

from .test_widgets import eventually


@pytest.fixture
def guarded(client, monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")  # the panel's watcher guards in-kernel
    return client.create("warn-1", gpu="RTX 3090", image="ubuntu:22.04", wait=True,
                         progress="silent")  # fmt: skip


def test_an_empty_panel_says_what_to_do_and_offers_no_action(client):
    panel = InstancePanel(client, interval=0.05)
    try:
        assert "No instances yet" in panel.empty.value and "%novita create" in panel.empty.value
        assert panel.empty.layout.display != "none"
        for button in (panel.start_button, panel.stop_button, panel.delete_button):
            assert button.disabled
        assert panel.delete_button.button_style == ""  # no active red Delete on nothing
        assert panel.selector.disabled
        assert "No instances yet" in panel._repr_html_()
    finally:
        panel.stop()


def test_buttons_follow_the_selected_instance(client):
    inst = client.create("btn-1", gpu="RTX 4090", wait=True, progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: panel.selector.value == inst.id)
        assert panel.start_button.disabled and not panel.stop_button.disabled
        assert not panel.delete_button.disabled and panel.delete_button.button_style == "danger"
        assert panel.empty.layout.display == "none"
        panel.stop_button.click()
        client.wait(inst.id, until="exited", timeout=30, progress=False)
        eventually(lambda: panel.states[inst.id].status == "exited")
        eventually(lambda: not panel.start_button.disabled and panel.stop_button.disabled)
        client.delete(inst.id)
        eventually(lambda: panel.states[inst.id].status in ("removing", "removed"))
        eventually(lambda: panel.delete_button.disabled and panel.start_button.disabled)
        assert panel.delete_button.button_style == ""
    finally:
        panel.stop()


def test_live_then_paused_with_the_time_of_the_last_read(client):
    client.create("live-1", gpu="RTX 4090", progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: panel.connection.last_read is not None)
        # the summary is redrawn right after the read is noted, on the panel's own thread
        eventually(lambda: "data-state='live'" in panel.summary.value)
        assert re.search(r"last good read \d\d:\d\d:\d\d UTC", panel.summary.value)
    finally:
        panel.stop()
    assert "data-state='paused'" in panel.summary.value
    assert "panel.start() resumes" in panel.summary.value
    assert "/h at the last read" in panel.summary.value and "/h now" not in panel.summary.value
    assert repr(panel).startswith("<InstancePanel paused")
    panel.start()
    try:
        eventually(lambda: "data-state='live'" in panel.summary.value)
    finally:
        panel.stop()


def test_disconnected_when_the_api_goes_away(client, sandbox):
    client.create("gone-1", gpu="RTX 4090", progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: "data-state='live'" in panel.summary.value)
        read = panel.connection.last_read
        sandbox.stop()
        eventually(lambda: "data-state='disconnected'" in panel.summary.value, timeout=30)
        summary = panel.summary.value
        assert f"last good read at {read:%H:%M:%S} UTC" in summary
        assert "did not answer" in summary and "gone-1" in panel._repr_html_()
        assert "disconnected" in repr(panel)
    finally:
        panel.stop()


def test_a_warning_goes_after_extend(client, guarded):
    panel = InstancePanel(client, interval=0.1)
    try:
        eventually(lambda: guarded.id in panel.row_html)
        client.guard(guarded, stop_after=60, warn_before=58)
        eventually(lambda: "Guard warning: warn-1" in panel.notices_box.value)
        panel.extend_button.click()
        assert "Extended by 1h for warn-1" in panel.message.value
        assert "Guard warning" not in panel.notices_box.value  # not stale under the buttons
        assert "Guard warning" not in panel._repr_html_()
        assert panel.guard_box.layout.display == "none"
    finally:
        panel.stop()


def test_a_warning_goes_when_extended_elsewhere(client, guarded):
    panel = InstancePanel(client, interval=0.1)
    try:
        client.guard(guarded, stop_after=60, warn_before=58)
        eventually(lambda: "Guard warning: warn-1" in panel.notices_box.value)
        client.extend("warn-1", "2h")  # another cell, not the panel's button
        eventually(lambda: "Guard warning" not in panel.notices_box.value)
        assert panel.guard_box.layout.display == "none"
    finally:
        panel.stop()


def test_a_warning_goes_with_its_deleted_instance(client, guarded):
    panel = InstancePanel(client, interval=0.1)
    try:
        client.guard(guarded, stop_after=60, warn_before=58)
        eventually(lambda: "Guard warning: warn-1" in panel.notices_box.value)
        panel.select("warn-1")
        panel.delete_button.click()
        panel.confirm_button.click()
        assert "Guard warning" not in panel.notices_box.value
        assert panel.guard_box.layout.display == "none"
        eventually(lambda: "deleting" in panel.row_html[guarded.id]
                   or "deleted" in panel.row_html[guarded.id])  # fmt: skip
        time.sleep(0.3)  # a few more ticks: the warning does not come back
        assert "Guard warning" not in panel.notices_box.value
    finally:
        panel.stop()


def test_statuses_read_as_words_and_the_sparkline_is_labelled(client):
    inst = client.create("words-1", gpu="RTX 4090", wait=True, progress="silent")
    panel = InstancePanel(client, interval=0.05)
    try:
        eventually(lambda: len(panel.history) > 2)
        panel.tick()
        row = panel.row_html[inst.id]
        assert "> running</span>" in row and "title='API status: running'" in row
        assert "spend per hour, latest minutes" in panel.summary.value
        client.stop(inst.id)
        eventually(lambda: "> stopped</span>" in panel.row_html[inst.id], timeout=30)
        assert "exited" not in panel.row_html[inst.id].replace("API status: exited", "")
        assert "\u23f1" not in panel._repr_html_()  # no glyph that needs an emoji font
    finally:
        panel.stop()
