"""The ledger file: record/forget/entries, scoping by api_url, no secrets on disk, a corrupt
file moved aside, and no lost entries with concurrent threads and processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import platformdirs
import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.ledger import LEDGER_FILE, Ledger
from novita_notebook.models import Instance

API = "http://127.0.0.1:9/gpu-instance/openapi/v1"
OTHER_API = "https://api.novita.ai/gpu-instance/openapi/v1"
SSH_PASSWORD = "ssh-Secret-pass-71x"
AUTH_PASSWORD = "registry-Secret-pw-93q"


def raw_instance(instance_id: str = "i-1", name: str = "demo-1") -> dict:
    return {
        "id": instance_id,
        "name": name,
        "status": "running",
        "clusterName": "AS-SGP-02",
        "productName": "RTX 4090 24GB",
        "gpuNum": "2",
        "createdAt": "1700000000",
        "imageAuth": f"user:{AUTH_PASSWORD}",
        "connectComponentSSH": {"sshCommand": "ssh root@h -p 2", "password": SSH_PASSWORD},
    }


def test_the_home_override_and_the_default_location(monkeypatch, tmp_path):
    assert Ledger().path == tmp_path / "novita-home" / LEDGER_FILE
    monkeypatch.delenv("NOVITA_NOTEBOOK_HOME")
    expected = Path(platformdirs.user_config_dir("novita-notebook")) / LEDGER_FILE
    assert Ledger().path == expected
    assert Ledger(path=tmp_path / "x.json").path == tmp_path / "x.json"


def test_record_entries_and_forget():
    ledger = Ledger(api_url=API)
    instance = Instance.from_api(raw_instance())
    instance.price_per_hour = 0.7
    entry = ledger.record(instance)
    assert entry["id"] == "i-1" and entry["api_url"] == API
    assert (entry["region"], entry["product"], entry["gpu_num"]) == (
        "AS-SGP-02",
        "RTX 4090 24GB",
        2,
    )
    assert entry["price_per_hour"] == 0.7
    assert entry["created_at"].startswith("2023-11-14T22:13:20")
    user_host, _, pid = entry["created_by"].partition(" pid ")
    assert "@" in user_host and pid == str(os.getpid())
    assert [e["id"] for e in ledger.entries()] == ["i-1"]
    assert ledger.get("i-1")["name"] == "demo-1"
    assert ledger.forget("i-1") is True
    assert ledger.forget("i-1") is False
    assert ledger.entries() == []


def test_record_accepts_a_raw_api_dict_and_keeps_the_original_creator():
    ledger = Ledger(api_url=API)
    first = ledger.record(raw_instance())
    again = ledger.record({"id": "i-1", "name": "renamed"})
    assert again["created_at"] == first["created_at"]
    assert again["created_by"] == first["created_by"]
    assert again["product"] == "RTX 4090 24GB"  # unknown fields keep what was recorded
    assert [e["name"] for e in ledger.entries()] == ["renamed"]


def test_entries_are_scoped_to_the_api_url():
    here, there = Ledger(api_url=API), Ledger(api_url=OTHER_API + "/")
    here.record(raw_instance("i-1"))
    there.record(raw_instance("i-1"))
    there.record(raw_instance("i-2"))
    assert [e["id"] for e in here.entries()] == ["i-1"]
    assert sorted(e["id"] for e in there.entries()) == ["i-1", "i-2"]
    assert len(here.entries(all_urls=True)) == 3
    assert len(here.entries(OTHER_API)) == 2
    assert here.forget("i-1") is True
    assert [e["id"] for e in there.entries()] == ["i-1", "i-2"]  # same id elsewhere untouched


def test_no_secret_reaches_the_file():
    ledger = Ledger(api_url=API)
    ledger.record(Instance.from_api(raw_instance()))
    text = ledger.path.read_text()
    assert SSH_PASSWORD not in text and AUTH_PASSWORD not in text
    assert "password" not in text.lower()
    assert set(json.loads(text)["instances"][0]) == {
        "id",
        "name",
        "api_url",
        "region",
        "product",
        "gpu_num",
        "price_per_hour",
        "created_at",
        "created_by",
    }


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"instances": "nope"}', "[1, 2, 3]", '{"instances": [{"name": "no id"}]}', ""],
)
def test_a_corrupt_file_is_moved_aside_with_a_warning(content, caplog):
    ledger = Ledger(api_url=API)
    ledger.path.parent.mkdir(parents=True, exist_ok=True)
    ledger.path.write_text(content)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert ledger.entries() == []
    aside = list(ledger.path.parent.glob(f"{LEDGER_FILE}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content
    assert "moved it to" in caplog.text
    ledger.record(raw_instance())  # and the ledger carries on
    assert [e["id"] for e in ledger.entries()] == ["i-1"]


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda ledger: ledger.record(42), "instance"),
        (lambda ledger: ledger.record({"name": "no id"}), "instance.id"),
        (lambda ledger: ledger.record({"id": "x", "price_per_hour": "cheap"}), "price_per_hour"),
        (lambda ledger: ledger.forget(""), "instance_id"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValidationError) as caught:
        call(Ledger(api_url=API))
    assert caught.value.field == field


def test_concurrent_threads_lose_nothing():
    shared = Ledger(api_url=API)

    def write(worker: int) -> None:
        own = Ledger(api_url=API)  # separate objects, so only the file lock keeps them in line
        for n in range(15):
            (shared if n % 2 else own).record({"id": f"t{worker}-{n}", "name": f"w{worker}"})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len({e["id"] for e in shared.entries()}) == 6 * 15


WRITER = """
import sys
from novita_notebook.ledger import Ledger
ledger = Ledger(api_url=sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # start together
for n in range(int(sys.argv[3])):
    ledger.record({"id": f"{sys.argv[2]}-{n}", "name": sys.argv[2], "price_per_hour": 0.5})
print("done", flush=True)
"""


def test_two_processes_and_a_thread_appending_at_once_lose_nothing():
    env = dict(os.environ)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, API, f"p{k}", "30"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(2)
    ]
    for proc in writers:
        assert proc.stdout.readline().strip() == "ready"
    local = Ledger(api_url=API)
    for proc in writers:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for n in range(30):
        local.record({"id": f"local-{n}", "name": "local"})
    for proc in writers:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "done" in out
    ids = {e["id"] for e in local.entries()}
    assert len(ids) == 90
    assert {f"p0-{n}" for n in range(30)} <= ids and {f"p1-{n}" for n in range(30)} <= ids


READER = """
import json, sys
from novita_notebook.ledger import Ledger
print(json.dumps(Ledger(api_url=sys.argv[1]).entries()))
"""


def test_a_fresh_process_reads_the_ledger_back():
    ledger = Ledger(api_url=API)
    ledger.record(raw_instance("i-1", "first"))
    ledger.record(raw_instance("i-2", "second"))
    Ledger(api_url=OTHER_API).record(raw_instance("i-3", "elsewhere"))
    out = subprocess.run(
        [sys.executable, "-c", READER, API],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=True,
    ).stdout
    entries = json.loads(out)
    assert [(e["id"], e["name"]) for e in entries] == [("i-1", "first"), ("i-2", "second")]
    assert entries == ledger.entries()


RECORDER = """
import sys
from novita_notebook.ledger import Ledger
Ledger(api_url=sys.argv[1]).record({"id": sys.argv[2], "name": "from another process"})
"""


def test_a_write_by_another_ledger_or_process_is_seen_on_the_next_read():
    reader = Ledger(api_url=API)
    reader.record(raw_instance("i-1", "first"))
    assert [e["id"] for e in reader.entries()] == ["i-1"]  # parsed and kept
    Ledger(api_url=API).record({"id": "i-2", "name": "same size?"})  # a second object
    assert [e["id"] for e in reader.entries()] == ["i-1", "i-2"]
    subprocess.run(
        [sys.executable, "-c", RECORDER, API, "i-3"],
        timeout=60,
        env=dict(os.environ),
        check=True,
    )
    assert [e["id"] for e in reader.entries()] == ["i-1", "i-2", "i-3"]
    assert reader.get("i-3")["name"] == "from another process"
    Ledger(api_url=API).forget("i-1")
    assert [e["id"] for e in reader.entries()] == ["i-2", "i-3"]


def test_reading_neither_waits_for_the_lock_nor_shares_its_entries():
    from filelock import FileLock

    ledger = Ledger(api_url=API)
    ledger.record(raw_instance("i-1", "first"))
    held = FileLock(str(ledger.path) + ".lock", timeout=1)
    with held:  # another kernel mid-write: the file on disk is still whole
        done: list[list] = []
        reader = threading.Thread(target=lambda: done.append(ledger.entries()))
        reader.start()
        reader.join(timeout=5)
        assert done and [e["id"] for e in done[0]] == ["i-1"]
    done[0][0]["name"] = "changed by the caller"
    assert ledger.entries()[0]["name"] == "first"


def test_a_file_broken_after_a_good_read_is_still_moved_aside():
    ledger = Ledger(api_url=API)
    ledger.record(raw_instance("i-1", "first"))
    assert len(ledger.entries()) == 1
    ledger.path.write_text("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert ledger.entries() == []
    assert len(list(ledger.path.parent.glob(f"{LEDGER_FILE}.corrupt-*"))) == 1
