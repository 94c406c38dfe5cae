"""Runs at their edges: the files a run wrote are named before a stop (with the pull call)
until they are pulled; a run on a stopped instance says its state in one line and is
remembered as never started; options given with an instance's name are checked before the
instance is read; following with ``interrupt=False`` leaves the run going on Ctrl-C.
"""

from __future__ import annotations

import pytest

from novita_notebook.errors import RemoteError, ValidationError
from novita_notebook.remote import unpulled
from novita_notebook.remote.follow import written_folders


def quiet(stream: str, text: str) -> None:
    return None


def test_the_files_a_run_wrote_are_named_before_a_stop_until_pulled(
    client, instance, tmp_path, caplog
):
    code = (
        "import os\n"
        "os.makedirs('outputs/plots', exist_ok=True)\n"
        "open('outputs/model.txt', 'w').write('weights')\n"
        "open('outputs/plots/loss.svg', 'w').write('<svg/>')\n"
        "open('summary.csv', 'w').write('loss\\n0.3\\n')\n"
    )
    run = client.run(instance, code, on_output=quiet)
    api = client.config.api_url
    found = {(w.path, w.by) for w in unpulled.unpulled(api, instance.id)}
    assert found == {("outputs", f"run {run.id}"), ("summary.csv", f"run {run.id}")}
    client.attach(run.id, on_output=quiet)  # replaying it later notes nothing again
    assert len(unpulled.unpulled(api, instance.id)) == 2
    text = unpulled.warning(api, instance.id, instance.name)
    assert "novita.pull('remote-1', 'outputs')" in text and f"run {run.id}" in text

    client.pull(instance, "outputs", tmp_path / "here")
    assert (tmp_path / "here/plots/loss.svg").read_text() == "<svg/>"
    assert [w.path for w in unpulled.unpulled(api, instance.id)] == ["summary.csv"]
    with caplog.at_level("WARNING", logger="novita_notebook"):
        client.stop(instance)
    assert "novita.pull('remote-1', 'summary.csv')" in caplog.text


def test_a_run_that_writes_nothing_notes_nothing(client, instance):
    client.run(instance, "print('only output')", on_output=quiet)
    assert unpulled.unpulled(client.config.api_url, instance.id) == []


def test_written_folders_keep_the_outermost_place_of_each_file():
    listing = "./a/b/c.pt\n./a/b/d/e.pt\n./a/x.txt\n./top.csv\n./z/y/w.bin\n\n../out\n"
    assert written_folders(listing) == ["a", "top.csv", "z/y"]
    many = "".join(f"./f{i:02d}.txt\n" for i in range(30))
    assert len(written_folders(many, limit=20)) == 20


def test_a_run_on_a_stopped_instance_says_its_state_and_is_not_started(client, instance):
    client.stop(instance)
    client.wait(instance.id, until="exited", timeout=30)
    with pytest.raises(RemoteError) as caught:
        client.run("remote-1", "print(1)", on_output=quiet)
    message = caught.value.message
    assert "remote-1" in message and "is stopped (API status exited)" in message
    assert "novita.start('remote-1')" in message and "\n" not in message
    row = client.runs().iloc[0]
    assert row["state"] == "not_started" and row["instance"] == "remote-1"


def test_options_are_checked_before_an_instance_named_is_read(client, instance):
    before = client.requests_made
    with pytest.raises(ValidationError) as caught:
        client.run("remote-1", "echo hi", shell=True, get=["x"])
    assert "shell" in caught.value.message
    with pytest.raises(ValidationError) as caught:
        client.run("remote-1", "   ")
    assert caught.value.field == "code"
    assert client.requests_made == before


def test_following_without_interrupting_leaves_the_run_going(client, instance):
    code = "import time\nprint('ready', flush=True)\ntime.sleep(1.5)\nprint('finished')\n"
    run = client.run(instance, code, detach=True, on_output=quiet)

    def impatient(stream: str, text: str) -> None:
        if "ready" in text:
            raise KeyboardInterrupt

    followed = client.attach(run.id, wait=False, on_output=impatient)
    with pytest.raises(KeyboardInterrupt):
        followed.wait(interrupt=False)
    assert run.wait().state == "succeeded" and run.output == "ready\nfinished\n"


def test_a_runs_outputs_come_back_in_one_call(client, instance, tmp_path, monkeypatch):
    code = (
        "import os\n"
        "os.makedirs('results/plots', exist_ok=True)\n"
        "open('results/plots/loss.svg', 'w').write('<svg/>')\n"
        "open('notes.txt', 'w').write('done')\n"
    )
    run = client.run(instance, code, on_output=quiet)
    assert set(run.written) == {"results/plots", "notes.txt"}
    # remembered with the run: a later kernel's attach knows them too
    again = client.attach(run.id, wait=False, on_output=quiet)
    assert set(again.written) == {"results/plots", "notes.txt"}

    monkeypatch.chdir(tmp_path)
    transfers = again.pull_outputs()
    assert len(transfers) == 2
    here = tmp_path / "novita-outputs" / instance.name
    assert (here / "results/plots/loss.svg").read_text() == "<svg/>"
    assert (here / "notes.txt").read_text() == "done"
    assert unpulled.unpulled(client.config.api_url, instance.id) == []

    elsewhere = run.pull_outputs(tmp_path / "elsewhere")  # copied again on request
    assert len(elsewhere) == 2 and (tmp_path / "elsewhere/results/plots/loss.svg").exists()


def test_outputs_of_a_run_still_going_are_refused_in_words(client, instance):
    run = client.run(instance, "import time; time.sleep(30)", detach=True, on_output=quiet)
    try:
        with pytest.raises(ValidationError, match="outputs are known when it ends"):
            run.pull_outputs()
    finally:
        run.kill()
