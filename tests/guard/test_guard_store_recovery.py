"""The store fails per record, never whole: a bad record is quarantined with its reason and a
warning naming the instance while the others stay in force; a file cut short is recovered record
by record; what cannot be read is rebuilt from the ledger's copy; bytes that are not UTF-8 in
the store, the ledger or the action log are damage to repair, never an exception.
"""

from __future__ import annotations

import json
import warnings

import pytest
from tests.guard.polling import tick_past_deadline

from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardStore

URL = "http://127.0.0.1:9/gpu-instance/openapi/v1"
IMAGE = "ubuntu:22.04"


@pytest.fixture(autouse=True)
def no_guard_process(monkeypatch):
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")


def _three(store: GuardStore) -> None:
    for name in ("a", "b", "c"):
        store.set_rules(f"id-{name}", GuardRules.parse(stop_after="1h"), name=name)


def test_one_bad_record_is_quarantined_and_the_others_stay_in_force(tmp_path):
    store = GuardStore(tmp_path, api_url=URL)
    _three(store)
    data = json.loads(store.path.read_text())
    data["instances"][1]["rules"]["on_reclaim"] = "explode"
    store.path.write_text(json.dumps(data))
    ledger = tmp_path / "ledger.json"  # and the ledger lost its copy of b's rules too
    if ledger.exists():
        doc = json.loads(ledger.read_text())
        doc["guard_rules"] = [c for c in doc.get("guard_rules", []) if c["id"] != "id-b"]
        ledger.write_text(json.dumps(doc))
    with pytest.warns(RuntimeWarning, match="instance id-b") as caught:
        kept = [r.id for r in store.records()]
    assert kept == ["id-a", "id-c"]
    assert "NOT guarded" in str(caught[0].message)
    quarantined = [json.loads(x) for x in store.quarantine_path.read_text().splitlines()]
    assert [(q["instance_id"], q["kind"]) for q in quarantined] == [("id-b", "record")]
    assert "on_reclaim" in quarantined[0]["reason"]
    lost = [a for a in store.actions() if a["action"] == "quarantine"]
    assert [(a["instance_id"], a["result"]) for a in lost] == [("id-b", "rules lost: not guarded")]
    assert list(tmp_path.glob("guard.json.corrupt-*"))  # the damaged file, kept for a person


def test_a_file_cut_short_is_recovered_record_by_record_and_rebuilt_from_the_ledger(tmp_path):
    store = GuardStore(tmp_path, api_url=URL)
    _three(store)
    text = store.path.read_text()
    cut = text.index('"id-c"') + 10  # in the middle of the last record
    store.path.write_text(text[:cut])
    with pytest.warns(RuntimeWarning, match="instance id-c"):
        records = {r.id: r for r in store.records()}
    assert set(records) == {"id-a", "id-b", "id-c"}
    assert records["id-c"].rules.stop_after is not None  # from the ledger's copy
    rebuilt = [a for a in store.actions() if a["action"] == "quarantine"]
    assert rebuilt and rebuilt[-1]["result"] == "rebuilt from the ledger's copy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: the next read is quiet
        assert len(store.records()) == 3


def test_a_lost_store_is_rebuilt_from_the_ledger_and_says_so(tmp_path):
    store = GuardStore(tmp_path, api_url=URL)
    _three(store)
    store.path.unlink()
    with pytest.warns(RuntimeWarning, match="rebuilt from the ledger"):
        assert {r.id for r in store.records()} == {"id-a", "id-b", "id-c"}
    store.remove("id-a")  # a rule dropped on purpose stays dropped
    store.path.unlink()
    with pytest.warns(RuntimeWarning):
        assert {r.id for r in store.records()} == {"id-b", "id-c"}


def _spoil(path, marker: bytes) -> None:
    data = path.read_bytes()
    at = data.index(marker)
    path.write_bytes(data[:at] + b"\xff\xfe" + data[at:])


def test_bytes_that_are_not_utf8_are_damage_never_an_exception(client, sandbox):
    kept = client.create("kept", gpu="RTX 3090", image=IMAGE, wait=True, stop_after=60)
    other = client.create("other", gpu="RTX 3090", image=IMAGE, wait=True, stop_after=3600)
    store = client.guards.store
    store.log_action(kept.id, "warn", "a reason", "test", "announced")
    _spoil(store.path, other.id.encode())  # inside one record of guard.json
    _spoil(client.ledger.path, b'"instances"')  # in the structure of ledger.json
    _spoil(store.log_path, b'"reason"')  # in one line of guard-actions.jsonl
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # each damage is announced
        status = client.guard_status()
        assert kept.id in status["rules"]
        frame = client.mine()
        assert set(frame["name"]) >= {"kept"}
        client.cleanup()  # a dry run
        tick_past_deadline(client, sandbox.api_key, kept.id)
        client.create("after", gpu="RTX 3090", image=IMAGE, stop_after="1h")
        client.delete("after")
    assert sandbox.world.instances[kept.id].status in ("toStop", "stopping", "exited")
    assert store.get(other.id) is not None  # rebuilt from the ledger's copy
    for path in (store.path, client.ledger.path):
        path.read_bytes().decode("utf-8")  # both repaired
    logged = store.actions(kept.id)
    assert "stop" in [a["action"] for a in logged]
    assert "a reason" not in [a["reason"] for a in logged]  # the damaged line is skipped
