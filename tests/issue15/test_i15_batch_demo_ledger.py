"""Issue 15 #20 (batch error cells one short line), #22 (the demo keeps the kernel's TCP
warning out), #23 (gone sandbox entries hidden after a while; cleanup forgets them) and #14
(money rounded in the ledger's frames)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from novita_notebook.demo import KernelStderr
from novita_notebook.ledger import Ledger
from novita_notebook.ledger_views import HIDE_GONE_SANDBOX_AFTER

from .helpers15 import wait_until


def test_all_or_nothing_error_cells_are_one_short_line(sandbox, client):
    specs = [
        {"name": "cell-1"},
        {"name": "cell-2", "gpu": "H200", "regions": ["EU-DE-01"]},  # pinned out of stock
    ]
    frame = client.create_many(specs, gpu="4090", all_or_nothing=True, concurrency=2)
    cells = frame["error"].dropna()
    assert len(cells) == 2
    for cell in cells:
        assert "\n" not in cell and len(cell) <= 120, repr(cell)
    details = frame.attrs["errors"]
    assert "cell-2" in details and "CapacityError" in details["cell-2"]
    assert "\n" in details["cell-2"] and len(details["cell-2"]) > 120  # the whole story


def test_demo_kernel_stderr_drops_only_the_tcp_warning():
    out = io.StringIO()
    with KernelStderr(out) as fd:
        os.write(
            fd,
            b"[W 12:00:00 kernelapp] Kernel is running over TCP without encryption."
            b" All communication is sent in plain text.\n",
        )
        os.write(fd, b"a real kernel error\n")
    assert out.getvalue() == "a real kernel error\n"


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


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_demo_output_has_no_kernel_tcp_warning(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("print('hello from the kernel')"))
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "WEBHOOK_"))}
    env["NOVITA_NOTEBOOK_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "novita_notebook.cli", "demo", "--notebook", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "hello from the kernel" in result.stdout
    assert "without encryption" not in result.stdout + result.stderr
