"""Ctrl-C during the create request must not leak an instance nothing can find.

A real SIGINT is delivered to a subprocess running ``create`` while its POST sits in the
sandbox (latency fault); afterwards ``mine()`` and the ledger must know the instance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.sandbox_view import live_named, wait_until

SCRIPT = textwrap.dedent(
    """
    import sys
    from novita_notebook import Novita

    client = Novita(api_key=sys.argv[1], api_url=sys.argv[2], timeout=(5, 30))
    try:
        client.create(sys.argv[3], gpu="4090", wait=True, progress="silent")
    except KeyboardInterrupt as interrupt:
        print("INTERRUPTED:", interrupt, flush=True)
        sys.exit(3)
    print("NOT INTERRUPTED", flush=True)
    """
)

CREATE_PATH = "/gpu/instance/create"


def _interrupt_during_create(sandbox, client, name: str, latency_ms: int) -> str:
    """Run create in a subprocess, SIGINT it 0.5 s after its POST reached the sandbox."""
    sandbox.set_faults(latencyMs=latency_ms)
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, sandbox.api_key, client.config.api_url, name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        wait_until(
            lambda: any(
                r["path"].endswith(CREATE_PATH) and r["method"] == "POST"
                for r in sandbox.requests()
            ),
            timeout=60,
            every=0.05,
        )
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 3, out + err
    return out


@pytest.mark.timeout(180)
def test_sigint_after_the_post_leaves_the_instance_findable_by_mine(sandbox, client):
    out = _interrupt_during_create(sandbox, client, "sig-post", latency_ms=3000)
    assert "sig-post" in out and "ledger" in out  # the message says what to do
    sandbox.clear_faults()
    # The instance lands after the latency; nothing but the ledger's intent knows of it.
    assert wait_until(lambda: live_named(sandbox, "sig-post"), timeout=30)
    mine = client.mine()
    assert list(mine["name"]) == ["sig-post"], mine
    assert mine.iloc[0]["id"] == live_named(sandbox, "sig-post")[0]["id"]
    assert [e["name"] for e in client.ledger.entries()] == ["sig-post"]
    assert client.ledger.pending() == []  # resolved, not kept forever
    preview = client.cleanup(delete=True)
    assert list(preview["name"]) == ["sig-post"]


@pytest.mark.timeout(180)
def test_sigint_message_names_the_instance_when_the_lookup_finds_it(sandbox, client):
    out = _interrupt_during_create(sandbox, client, "sig-found", latency_ms=1000)
    sandbox.clear_faults()
    raw = live_named(sandbox, "sig-found")[0]
    assert f"sig-found (id {raw['id']}) exists in" in out, out
    assert "novita.delete('sig-found') or %novita cleanup" in out
    # Found at interrupt time: already a ledger entry, no pending intent left.
    assert [e["id"] for e in client.ledger.entries()] == [raw["id"]]
    assert client.ledger.pending() == []


def test_a_create_refused_by_the_api_leaves_no_intent(sandbox, client):
    sandbox.set_stock(0)
    with pytest.raises(Exception):  # noqa: B017 - capacity or validation: not created
        client.create("nothing-here", gpu="4090")
    assert client.ledger.pending() == []
    assert client.ledger.entries() == []
