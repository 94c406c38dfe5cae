"""What the ledger's views show of old entries: gone sandbox entries hidden after a while and
forgotten by cleanup, and money rounded in the ledger's frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.sandbox_view import wait_until

from novita_notebook.ledger import Ledger
from novita_notebook.ledger_views import HIDE_GONE_SANDBOX_AFTER


def _old_gone_entry(ledger: Ledger, instance_id: str, hours: float, price: float) -> None:
    ledger.record(
        {
            "id": instance_id,
            "name": instance_id,
            "price_per_hour": price,
            "created_at": (datetime.now(UTC) - timedelta(hours=hours)).isoformat(),
        }
    )


def test_mine_hides_old_gone_sandbox_entries_and_cleanup_forgets_them(sandbox, client):
    hours = HIDE_GONE_SANDBOX_AFTER.total_seconds() / 3600
    _old_gone_entry(client.ledger, "old-gone", hours + 1, 0.5)
    _old_gone_entry(client.ledger, "new-gone", 0.1, 0.5)
    dead = Ledger(api_url="http://127.0.0.1:9/gpu-instance/openapi/v1")  # nothing listens
    _old_gone_entry(dead, "dead-sandbox", 0.1, 0.5)

    mine = client.mine()
    assert list(mine["id"]) == ["new-gone"]  # recent gone entries still show
    assert mine.attrs["hidden_gone"] == ["old-gone"]

    preview = client.cleanup()
    assert set(preview["result"]) == {"dry run"}
    assert {e["id"] for e in client.ledger.entries()} == {"old-gone", "new-gone"}
    done = client.cleanup(forget_gone=True)
    assert set(done["result"]) == {"forgotten"}
    assert done.attrs["forgotten_elsewhere"] == 1
    assert client.ledger.entries(all_urls=True) == []


def test_money_in_the_ledger_frames_is_rounded(sandbox, client):
    inst = client.create("money", gpu="4090", progress="silent")
    client.ledger.record({"id": inst.id, "name": "money", "price_per_hour": 0.29750000000000004})
    mine = client.mine()
    assert mine.loc[mine["id"] == inst.id, "price_per_hour"].item() == 0.2975
    wait_until(lambda: client.mine()["cost_so_far"].notna().all(), timeout=30)
    cost = client.mine()["cost_so_far"].item()
    assert cost == round(cost, 6)
    preview = client.cleanup(delete=True)
    assert preview["price_per_hour"].item() == 0.2975
