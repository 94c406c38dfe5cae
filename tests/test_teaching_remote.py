"""Teaching on the sandbox over real SSH: every seat's handout SSH command works with
OpenSSH's own client and its Jupyter link answers; one call pushes the course folder to every
seat with a per-seat result table, and a second one sends nothing.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import requests

from tests.sandbox.openssh import needs_openssh, ssh


@needs_openssh
def test_every_seat_s_ssh_command_and_jupyter_link_work(client, sandbox):
    handout = client.classroom(3, "RTX 4090", stop_after="1h")
    assert len(handout.ok) == 3
    for seat in handout:
        client.wait(seat.instance_id, until="reachable", timeout=30)
        detail = client.api.get_instance(seat.instance_id)
        assert detail["connectComponentSSH"]["sshCommand"] == seat.ssh_command
        done = ssh(detail, "nvidia-smi -L && pwd")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("GPU 0: NVIDIA GeForce RTX 4090")
        assert done.stdout.strip().endswith(sandbox.instance_home(seat.instance_id))
        page = requests.get(seat.jupyter_url, timeout=10)
        assert page.status_code == 200 and "Jupyter" in page.text


def test_one_call_pushes_the_course_to_every_seat(client, sandbox, tmp_path):
    course = tmp_path / "course"
    (course / "week1").mkdir(parents=True)
    (course / "week1" / "intro.ipynb").write_text('{"cells": []}')
    (course / "data.csv").write_bytes(b"x,y\n" * 50_000)
    (course / ".git").mkdir()
    (course / ".git" / "HEAD").write_text("ref")
    handout = client.classroom(3, "RTX 4090", stop_after="1h")
    table = client.push_to_class(handout, course, "~/course")
    assert list(table["name"]) == ["student-1", "student-2", "student-3"]
    assert table["ok"].all() and set(table["files"]) == {2} and table["error"].isna().all()
    for seat in handout:
        home = Path(sandbox.instance_home(seat.instance_id)) / "course"
        assert filecmp.cmp(course / "data.csv", home / "data.csv", shallow=False)
        assert (home / "week1" / "intro.ipynb").exists() and not (home / ".git").exists()

    client.stop("student-2")
    client.wait("student-2", until="exited", timeout=30)
    again = client.push_to_class(handout, course, "~/course")
    assert list(again["ok"]) == [True, False, True]
    assert set(again.loc[again["ok"], "files"]) == {0}
    assert set(again.loc[again["ok"], "unchanged"]) == {2}
    assert "not running" in again.loc[1, "error"]
