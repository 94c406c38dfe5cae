"""Names are unique across clients and processes of the same user (the ledger's
file lock holds a claim while a create is in flight)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from novita_notebook import Novita
from novita_notebook.errors import ValidationError
from novita_notebook.pending import PendingCreates
from tests.sandbox_view import live_named


@pytest.mark.timeout(120)
def test_eight_clients_creating_one_name_make_one_instance(sandbox):
    # Slow the API a little so the creates really overlap.
    sandbox.set_faults(latencyMs=150)
    clients = [Novita(api_key=sandbox.api_key, api_url=sandbox.url) for _ in range(8)]
    results: list[object] = []
    start = threading.Barrier(len(clients))

    def create(client: Novita) -> None:
        start.wait()
        try:
            results.append(client.create("twin-b", gpu="4090"))
        except Exception as error:  # noqa: BLE001 - collected and checked below
            results.append(error)

    threads = [threading.Thread(target=create, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    for client in clients:
        client.close()
    sandbox.clear_faults()
    assert len(live_named(sandbox, "twin-b")) == 1
    made = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(made) == 1 and len(refused) == 7, results
    for error in refused:
        assert isinstance(error, ValidationError) and error.field == "name", error
        assert "twin-b" in error.message


PROCESS_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from novita_notebook import Novita
    from novita_notebook.errors import ValidationError
    client = Novita(api_key=sys.argv[1], api_url=sys.argv[2])
    time.sleep(max(0.0, float(sys.argv[4]) - time.time()))
    try:
        client.create(sys.argv[3], gpu="4090")
        print("CREATED")
    except ValidationError as error:
        print("REFUSED", error.field)
    """
)


@pytest.mark.timeout(180)
def test_two_processes_never_duplicate_a_name(sandbox):
    import time

    sandbox.set_faults(latencyMs=100)
    api_url = sandbox.url
    for round_ in range(3):
        name = f"twin-p{round_}"
        at = time.time() + 2.5  # both start sending at the same moment
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", PROCESS_SCRIPT, sandbox.api_key, api_url, name, str(at)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(os.environ),
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=60) for p in processes]
        said = sorted(out.strip().splitlines()[-1] for out, _ in outputs if out.strip())
        assert said == ["CREATED", "REFUSED name"], outputs
        assert len(live_named(sandbox, name)) == 1


def test_a_claim_of_a_dead_process_does_not_block_the_name(client):
    pending = PendingCreates(client.ledger)
    token = pending.claim("orphan")
    with pytest.raises(ValidationError, match="being created right now"):
        pending.claim("orphan")

    def as_if_dead(entries, claims):
        return entries, [{**c, "pid": 2**22 + 12345} if c["token"] == token else c for c in claims]

    client.ledger.update_document(as_if_dead)
    assert pending.claim("orphan") != token  # taken over: the holder no longer runs
