"""GuardStore: rules per instance and API URL, claims (expiry, completion, release), the action
log, moving rules to a recreated instance, and a corrupt file moved aside.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from novita_notebook.errors import ValidationError
from novita_notebook.guard.rules import GuardRules
from novita_notebook.guard.store import GuardStore

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
URL = "http://127.0.0.1:9/gpu-instance/openapi/v1"


def test_rules_are_scoped_merged_and_replaced(tmp_path):
    store = GuardStore(tmp_path, api_url="http://127.0.0.1:9/")  # same scope as URL
    other = GuardStore(tmp_path, api_url="https://api.novita.ai")
    store.set_rules(
        "a", GuardRules.parse(stop_after="1h", now=NOW), name="demo", price_per_hour=0.4
    )
    other.set_rules("a", GuardRules.parse(idle_stop="5m", now=NOW))
    assert GuardStore(tmp_path, api_url=URL).get("a").rules.stop_after == NOW + timedelta(hours=1)
    assert other.get("a").rules.stop_after is None
    merged = store.set_rules("a", GuardRules.parse(budget_total=3, now=NOW))
    assert merged.rules.stop_after is not None and merged.rules.budget_total == 3
    assert merged.name == "demo" and merged.price_per_hour == 0.4
    replaced = store.set_rules("a", GuardRules.parse(budget_total=3, now=NOW), replace=True)
    assert replaced.rules.stop_after is None
    assert len(GuardStore(tmp_path).records()) == 2  # no scope: every API URL
    assert store.remove("a") is True and store.remove("a") is False
    assert other.get("a") is not None


def test_extend_update_and_move(tmp_path):
    store = GuardStore(tmp_path, api_url=URL)
    store.set_rules("old", GuardRules.parse(stop_after="1h", now=NOW))
    store.mark_warned("old", "stop_after:x", NOW)
    assert store.extend("old", "30m").rules.stop_after == NOW + timedelta(minutes=90)
    assert store.update_rules("old", lambda r: r.without("stop_after")).rules.stop_after is None
    with pytest.raises(ValidationError):
        store.extend("missing", "1h")
    moved = store.move("old", "new")
    assert moved.id == "new" and moved.warned == {}
    assert store.get("old") is None and store.get("new") is not None
    assert store.move("nothing", "else") is None


def test_claims_expire_complete_and_release(tmp_path):
    store = GuardStore(tmp_path, api_url=URL)
    t = 1_000_000_000.0
    assert store.claim("a", "stop:k", "kernel", ttl=10, now=t)
    assert not store.claim("a", "stop:k", "kernel", ttl=10, now=t + 1)  # not even the holder
    assert not store.claim("a", "stop:k", "guard", ttl=10, now=t + 5)
    assert store.claim("a", "stop:k", "guard", ttl=10, now=t + 11)  # expired: taken over
    store.complete("a", "stop:k", "kernel")  # not the holder: no effect
    assert store.claim("a", "stop:k", "kernel", ttl=10, now=t + 30)
    store.complete("a", "stop:k", "kernel")
    assert not store.claim("a", "stop:k", "guard", ttl=10, now=t + 10_000)  # done for good
    assert store.claim("a", "warn:k", "guard", ttl=60)
    store.release("a", "warn:k", "guard")
    assert store.claim("a", "warn:k", "kernel", ttl=60)
    with pytest.raises(ValidationError) as info:
        store.claim("a", "stop:k", "x", ttl=0)
    assert info.value.field == "ttl"


def test_action_log_skips_bad_lines_and_keeps_scope(tmp_path):
    store = GuardStore(tmp_path, api_url=URL)
    store.log_action("a", "stop", "deadline", "guard pid 1", "done", rule="stop_after")
    with open(store.log_path, "a", encoding="utf-8") as file:
        file.write("{not json\n")
    GuardStore(tmp_path, api_url="https://api.novita.ai").log_action("b", "stop", "r", "k", "ok")
    entries = store.actions()
    assert [(e["instance_id"], e["action"], e["rule"]) for e in entries] == [
        ("a", "stop", "stop_after")
    ]
    assert store.actions("b") == []


def test_corrupt_store_is_moved_aside(tmp_path):
    store = GuardStore(tmp_path, api_url=URL)
    store.path.write_text("{broken")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert store.records() == []
    assert list(tmp_path.glob("guard.json.corrupt-*"))
    store.set_rules("a", GuardRules.parse(stop_after="1h"))
    assert json.loads(store.path.read_text())["instances"][0]["id"] == "a"
    bad_record = {"instances": [{"id": "x", "rules": {"on_reclaim": "explode"}}], "claims": []}
    store.path.write_text(json.dumps(bad_record))
    with pytest.warns(RuntimeWarning):  # x is quarantined; a, lost from the file, is rebuilt
        assert [r.id for r in store.records()] == ["a"]
