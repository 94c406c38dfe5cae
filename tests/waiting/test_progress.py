"""What a wait shows: the final state always reaches the display (removed, exited, running),
bars are coloured, and a refused wait draws nothing before its error."""

from __future__ import annotations

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.models import Instance
from novita_notebook.waiting.progress import CallbackProgress, progress_sink
from tests.waiting.watch_helpers import FAST, wait_until_gone

pytest.importorskip("IPython")
pytest.importorskip("ipywidgets")

from novita_notebook.notebook.progress import WaitProgress  # noqa: E402


def test_callback_receives_the_final_status_when_the_instance_vanishes(client, make_instance):
    instance_id = make_instance("prog-gone")
    handle = client.wait(instance_id, poll=FAST, timeout=30, progress=False)
    client.api.delete_instance(instance_id)
    wait_until_gone(client, instance_id)
    seen: list[tuple[str, str]] = []
    final = client.wait(
        handle,
        until="removed",
        poll=FAST,
        timeout=5,
        progress=lambda i, e, p: seen.append((i.status, p)),
    )
    assert final.status == "removed"
    # The only answer was a 404: the callback still hears "removed".
    assert seen[-1] == ("removed", "removed")


def test_removed_wait_ends_with_a_full_green_bar(client, make_instance):
    instance_id = make_instance("prog-del")
    client.wait(instance_id, poll=FAST, timeout=30, progress=False)
    client.api.delete_instance(instance_id)
    progress = WaitProgress("prog-del", until="removed")
    client.wait(instance_id, until="removed", poll=FAST, timeout=30, progress=progress.update)
    progress.finish()
    assert progress.last_status == "removed"
    assert progress.bar.value == progress.bar.max
    assert progress.bar.bar_style == "success"
    assert "deleted" in repr(progress) and "deleted" in progress._repr_html_()


def test_stop_wait_bar_is_coloured_while_it_stops_and_full_when_exited(client, make_instance):
    instance_id = make_instance("prog-stop")
    client.wait(instance_id, poll=FAST, timeout=30, progress=False)
    progress = WaitProgress("prog-stop", until="exited")
    styles: list[str] = []

    def record(instance: Instance, elapsed: float, phase: str) -> None:
        progress.update(instance, elapsed, phase)
        styles.append(progress.bar.bar_style)

    client.api.stop_instance(instance_id)
    client.wait(instance_id, until="exited", poll=FAST, timeout=30, progress=record)
    assert progress.bar.value == progress.bar.max and progress.bar.bar_style == "success"
    # Never the grey default: "info" while stopping, "success" once exited.
    assert "" not in styles and set(styles) <= {"info", "success"}


def test_a_refused_wait_draws_nothing(client, sandbox, make_instance, capsys):
    instance_id = make_instance("prog-refused")
    sandbox.clear_requests()
    progress = WaitProgress("prog-refused").display()
    with pytest.raises(ValidationError) as info:
        client.wait(instance_id, timeout=0, progress=progress.update)
    progress.finish()
    assert info.value.field == "timeout"
    assert capsys.readouterr().out == ""  # no progress line before (or after) the error
    assert sandbox.requests() == []


def test_a_displayed_progress_draws_with_its_first_status(client, make_instance, capsys):
    instance_id = make_instance("prog-shown")
    progress = WaitProgress("prog-shown").display()
    assert capsys.readouterr().out == ""
    client.wait(instance_id, poll=FAST, timeout=30, progress=progress.update)
    progress.finish()
    assert "prog-shown" in capsys.readouterr().out


def test_callback_sink_reports_the_final_state_once():
    seen: list[str] = []
    sink = CallbackProgress(lambda instance, elapsed, phase: seen.append(instance.status))
    running = Instance(id="i", name="n", status="running")
    sink.update(running, 1.0)
    sink.finish(running, 1.0, "is running")  # already shown: not repeated
    sink.finish(Instance(id="i", name="n", status="removed"), 2.0, "is removed")
    assert seen == ["running", "removed"]


def test_progress_outside_a_kernel_is_silent_and_text_prints(capsys):
    instance = Instance(id="i", name="n", status="running")
    progress_sink(None).update(instance, 1.0)
    assert capsys.readouterr().out == ""
    sink = progress_sink("text")
    sink.update(instance, 1.0)
    sink.finish(instance, 1.0, "is running")
    assert capsys.readouterr().out.splitlines() == ["n  running  1.0 s", "n  is running  1.0 s"]


def test_a_name_already_gone_still_shows_removed(client, make_instance):
    instance_id = make_instance("prog-already")
    client.wait(instance_id, poll=FAST, timeout=30, progress=False)
    client.api.delete_instance(instance_id)
    wait_until_gone(client, instance_id)
    progress = WaitProgress("prog-already", until="removed")
    final = client.wait("prog-already", until="removed", timeout=5, progress=progress.update)
    progress.finish()
    assert final.status == "removed"
    assert progress.last_status == "removed" and progress.bar.value == progress.bar.max
