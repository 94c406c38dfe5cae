"""Ledger.created_times: the creation times listings fill in, per api_url, worked out once per
file version and fresh again as soon as anyone (another object, another process) writes."""

from __future__ import annotations

from datetime import UTC, datetime

from novita_notebook.ledger import Ledger
from novita_notebook.models import Instance

API = "http://127.0.0.1:9/gpu-instance/openapi/v1"
OTHER_API = "http://127.0.0.1:10/gpu-instance/openapi/v1"


def _instance(instance_id: str, created: int) -> Instance:
    return Instance.from_api(
        {"id": instance_id, "name": instance_id, "status": "running", "createdAt": str(created)}
    )


def test_times_by_id_for_this_api_only():
    ledger, other = Ledger(api_url=API), Ledger(api_url=OTHER_API)
    ledger.record(_instance("i-1", 1_700_000_000))
    other.record(_instance("i-2", 1_700_000_100))
    assert ledger.created_times() == {"i-1": datetime.fromtimestamp(1_700_000_000, tz=UTC)}
    assert set(other.created_times()) == {"i-2"}


def test_reused_while_unchanged_and_fresh_after_any_write():
    ledger = Ledger(api_url=API)
    ledger.record(_instance("i-1", 1_700_000_000))
    first = ledger.created_times()
    assert ledger.created_times() is first  # the same file version: no second pass
    Ledger(api_url=API).record(_instance("i-3", 1_700_000_200))  # another object writes
    assert set(ledger.created_times()) == {"i-1", "i-3"}
    ledger.forget("i-1")
    assert set(ledger.created_times()) == {"i-3"}


def test_an_empty_or_missing_ledger_has_no_times():
    assert Ledger(api_url=API).created_times() == {}
