"""push and pull against the sandbox's SFTP over real SSH: a 200 MB folder round-trips byte for
byte with its permissions and times, an unchanged folder sends nothing, interrupted transfers
resume (Ctrl-C, or a connection cut mid-way), ignore patterns follow .gitignore.
"""

from __future__ import annotations

import filecmp
import os
import random
import stat
from pathlib import Path

import pytest

from novita_notebook.errors import RemoteError, ValidationError
from novita_notebook.remote import unpulled

MB = 1_000_000


def _tree_files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}


def _assert_same_tree(ours: Path, theirs: Path, ignored: tuple[str, ...] = ()) -> None:
    mine = {k: v for k, v in _tree_files(ours).items() if not k.startswith(ignored)}
    copy = _tree_files(theirs)
    assert sorted(mine) == sorted(copy)
    for rel, path in mine.items():
        assert filecmp.cmp(path, copy[rel], shallow=False), rel
        a, b = path.stat(), copy[rel].stat()
        assert stat.S_IMODE(a.st_mode) == stat.S_IMODE(b.st_mode), rel
        assert int(a.st_mtime) == int(b.st_mtime), rel


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    """~200 MB: three large files, a few middling, many small, nested folders, an executable,
    a read-only file, and things the default ignore leaves out."""
    root = tmp_path_factory.mktemp("course") / "course"
    rng = random.Random(25)
    (root / "data" / "raw").mkdir(parents=True)
    for i in range(3):
        (root / "data" / f"big-{i}.bin").write_bytes(rng.randbytes(57 * MB))
    for i in range(6):
        (root / "data" / "raw" / f"mid-{i}.bin").write_bytes(rng.randbytes(5 * MB + i))
    for i in range(150):
        (root / "notes" / f"n{i // 50}").mkdir(parents=True, exist_ok=True)
        (root / "notes" / f"n{i // 50}" / f"note-{i}.txt").write_text(f"note {i}\n" * i)
    (root / "empty").mkdir()
    (root / "train.sh").write_text("#!/bin/sh\necho train\n")
    (root / "train.sh").chmod(0o755)
    (root / "frozen.txt").write_text("read only")
    (root / "frozen.txt").chmod(0o444)
    for junk in (".git/HEAD", "__pycache__/m.cpython-311.pyc", ".venv/bin/python",
                 "myenv/pyvenv.cfg", "myenv/lib/x.py", ".ipynb_checkpoints/a.ipynb"):  # fmt: skip
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("junk")
    return root


IGNORED = (".git", "__pycache__", ".venv", "myenv", ".ipynb_checkpoints")


def test_a_200_mb_folder_round_trips_and_an_unchanged_one_sends_nothing(
    client, instance, sandbox, big_folder, tmp_path
):
    size = sum(p.stat().st_size for p in _tree_files(big_folder).values())
    assert size > 200 * MB
    seen = []
    sent = client.push(instance, big_folder, "~/course", progress=seen.append)
    assert sent.bytes_sent > 200 * MB and len(sent.files) == 161 and sent.ignored == 5
    assert seen and seen[-1].fraction == 1.0 and seen[-1].files_done == 161
    home = Path(sandbox.instance_home(instance.id))
    _assert_same_tree(big_folder, home / "course", IGNORED)
    assert (home / "course" / "empty").is_dir()

    again = client.push(instance, big_folder, "course")
    assert again.files == [] and again.bytes_sent == 0 and len(again.unchanged) == 161

    back = client.pull(instance, "course", tmp_path / "back")
    assert back.bytes_sent > 200 * MB
    _assert_same_tree(big_folder, tmp_path / "back", IGNORED)

    # Only the mtime changed: a hash of both sides says it is the same, nothing is sent.
    os.utime(big_folder / "notes" / "n0" / "note-3.txt", (1, 1))
    touched = client.push(instance, big_folder, "course")
    assert touched.files == [] and touched.bytes_sent == 0
    # Same size, other bytes: that file is sent, and only it.
    (big_folder / "train.sh").write_text("#!/bin/sh\necho TRAIN\n")
    changed = client.push(instance, big_folder, "course")
    assert changed.files == ["train.sh"]
    assert (home / "course" / "train.sh").read_text().endswith("TRAIN\n")


def test_an_interrupted_push_resumes_where_it_stopped(client, instance, sandbox, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    rng = random.Random(7)
    for i in range(2):
        (folder / f"w{i}.bin").write_bytes(rng.randbytes(40 * MB))

    def stop_half_way(progress):
        if progress.done_bytes > 40 * MB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.push(instance, folder, progress=stop_half_way)
    home = Path(sandbox.instance_home(instance.id)) / "weights"
    assert list(home.glob(".*.novita-part"))  # the partial files are kept
    rest = client.push(instance, folder)
    assert rest.resumed and rest.bytes_sent < 70 * MB
    _assert_same_tree(folder, home)
    assert not list(home.glob(".*.novita-part"))


def test_a_connection_cut_mid_push_is_reopened_and_the_push_goes_on(
    client, instance, sandbox, tmp_path
):
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "one.bin").write_bytes(random.Random(3).randbytes(60 * MB))
    cuts = []

    def cut_once(progress):
        if progress.done_bytes > 20 * MB and not cuts:
            cuts.append(sandbox.sever_ssh(instance.id))

    done = client.push(instance, folder, progress=cut_once)
    assert cuts == [1] and done.attempts == 2 and done.resumed
    assert done.bytes_sent < 80 * MB
    _assert_same_tree(folder, Path(sandbox.instance_home(instance.id)) / "cut")


def test_an_interrupted_pull_resumes(client, instance, sandbox, tmp_path):
    assert client.remote.pool.run(instance.id, ["mkdir", "out"]).ok  # the disk is made
    home = Path(sandbox.instance_home(instance.id))
    (home / "out" / "result.bin").write_bytes(random.Random(5).randbytes(50 * MB))

    def stop(progress):
        if progress.done_bytes > 20 * MB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.pull(instance, "out", tmp_path / "out", progress=stop)
    rest = client.pull(instance, "out", tmp_path / "out")
    assert rest.resumed and rest.bytes_sent < 35 * MB
    _assert_same_tree(home / "out", tmp_path / "out")


def test_ignore_patterns_follow_gitignore(client, instance, sandbox, tmp_path):
    folder = tmp_path / "proj"
    for name in ("a.log", "keep.log", "build/x.o", "src/build/y.o", "src/main.py", ".git/HEAD"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    client.push(instance, folder, ignore="*.log\n!keep.log\nbuild/")
    there = Path(sandbox.instance_home(instance.id)) / "proj"
    assert sorted(_tree_files(there)) == ["keep.log", "src/main.py"]
    client.push(instance, folder, "raw", ignore=["*.log"], default_ignore=False)
    raw = _tree_files(Path(sandbox.instance_home(instance.id)) / "raw")
    assert ".git/HEAD" in raw and "build/x.o" in raw and "a.log" not in raw


def test_single_files_relative_to_the_home_and_clear_errors(
    client, instance, sandbox, tmp_path, monkeypatch
):
    home = Path(sandbox.instance_home(instance.id))
    note = tmp_path / "note.txt"
    note.write_text("hello")
    client.push(instance, note)
    assert (home / "note.txt").read_text() == "hello"
    (home / "inbox").mkdir()
    client.push(instance, note, "~/inbox/")
    assert (home / "inbox" / "note.txt").read_text() == "hello"
    monkeypatch.chdir(tmp_path / "..")
    pulled = client.pull(instance, "inbox/note.txt")
    assert Path("note.txt").read_text() == "hello" and pulled.files == ["note.txt"]

    opened = client.remote.pool.opened
    with pytest.raises(ValidationError, match="does not exist"):
        client.push(instance, tmp_path / "missing")
    with pytest.raises(ValidationError, match="unknown option"):
        client.remote.files.push(instance.id, instance.name, note, speed=3)
    assert client.remote.pool.opened == opened  # refused before any SSH
    with pytest.raises(RemoteError, match="there is no nothing-here"):
        client.pull(instance, "nothing-here")


def test_files_written_since_the_last_pull_are_named_before_a_stop(
    client, instance, sandbox, tmp_path, monkeypatch, caplog
):
    api = client.config.api_url
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("print(1)")
    assert unpulled.warning(api, instance.id, instance.name) is None
    client.push(instance, tmp_path / "src", "~/work/src")
    unpulled.note_written(api, instance.id, "~/runs/r-1/out", "run r-1")
    text = unpulled.warning(api, instance.id, instance.name, "delete")
    assert "work/src (push)" in text and "runs/r-1/out (run r-1)" in text
    assert "novita.pull('remote-1', 'runs/r-1/out')" in text and "delete" in text
    client.pull(instance, "work", tmp_path / "work")
    assert [w.path for w in unpulled.unpulled(api, instance.id)] == ["runs/r-1/out"]

    # A run's outputs come back in one call, and then nothing is left unpulled.
    assert client.remote.pool.run(instance.id, ["mkdir", "-p", "runs/r-1/out"]).ok
    (Path(sandbox.instance_home(instance.id)) / "runs/r-1/out/loss.csv").write_text("1,0.5\n")
    client.stop(instance.id)  # the user's stop names them first
    assert "novita.pull('remote-1', 'runs/r-1/out')" in caplog.text
    monkeypatch.chdir(tmp_path)
    client.wait(instance.id, until="exited", timeout=30)
    client.start(instance.id)
    client.wait(instance.id, until="running", timeout=30)
    got = client.remote.files.pull_outputs(instance.id, instance.name, "~/runs/r-1/out")
    assert (tmp_path / "novita-outputs/remote-1/out/loss.csv").read_text() == "1,0.5\n"
    assert got.files == ["loss.csv"] and unpulled.unpulled(api, instance.id) == []


def test_the_guards_warning_before_a_delete_names_unpulled_files(client, instance):
    from datetime import UTC, datetime

    from novita_notebook.guard.enforcer import Enforcer
    from novita_notebook.guard.events import event_text
    from novita_notebook.guard.policy import PlannedAction
    from novita_notebook.guard.store import GuardStore

    api = client.config.api_url
    unpulled.note_written(api, instance.id, "runs/r-2/out", "run r-2")
    seen = []

    class Announcer:
        def notify(self, event_type, data):
            seen.append(event_text(event_type, data))

    warn = PlannedAction(instance.id, "warn", "delete_after", "the deadline passed",
                         datetime.now(UTC), "k1", instance.name, "guard.warning",
                         {"action": "delete", "action_due": "12:00"})  # fmt: skip
    enforcer = Enforcer(Announcer(), GuardStore(api_url=api))
    enforcer._run(warn, datetime.now(UTC))
    assert "novita.pull('remote-1', 'runs/r-2/out')" in seen[0]
    assert "a delete removes them for good" in seen[0]


def test_the_guards_warning_before_a_stop_names_the_runs_still_going(client, instance):
    from datetime import UTC, datetime

    from novita_notebook.guard.enforcer import Enforcer
    from novita_notebook.guard.events import event_text
    from novita_notebook.guard.policy import PlannedAction
    from novita_notebook.guard.store import GuardStore

    api = client.config.api_url
    run = client.run(instance, "import time; time.sleep(30)", detach=True)
    seen = []

    class Announcer:
        def notify(self, event_type, data):
            seen.append(event_text(event_type, data))

    warn = PlannedAction(instance.id, "warn", "stop_after", "the deadline passed",
                         datetime.now(UTC), "k2", instance.name, "guard.warning",
                         {"action": "stop", "action_due": "12:00"})  # fmt: skip
    try:
        Enforcer(Announcer(), GuardStore(api_url=api))._run(warn, datetime.now(UTC))
    finally:
        run.kill()
    assert "Still going there, and ended by the stop:" in seen[0]
    assert f"active runs: {run.id}" in seen[0]
