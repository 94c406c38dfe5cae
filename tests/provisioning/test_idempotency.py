"""No duplicates: names are unique among live instances, unique_name adds a suffix, and an
ambiguous create (applied, then the connection dropped) yields exactly one instance.
"""

from __future__ import annotations

import contextlib
import re

import pytest

from novita_notebook.errors import NetworkError, NovitaError, ValidationError

from .helpers import CREATE_PATH, calls, live_instances


def test_a_second_live_instance_with_the_same_name_is_refused(sandbox, client):
    first = client.create("twin", gpu="4090")
    sandbox.clear_requests()
    with pytest.raises(ValidationError) as caught:
        client.create("twin", gpu="4090")
    message = str(caught.value)
    assert caught.value.field == "name"
    assert first.id in message and "unique_name=True" in message
    assert calls(sandbox, CREATE_PATH) == []
    # A similar name is another name: the API's fuzzy filter must not count it.
    assert client.create("twin-b", gpu="4090").name == "twin-b"


def test_a_deleted_instance_frees_its_name(sandbox, client):
    first = client.create("reuse", gpu="4090")
    client.api.delete_instance(first.id)
    second = client.create("reuse", gpu="4090")
    assert second.id != first.id


def test_unique_name_appends_a_short_random_suffix(sandbox, client):
    client.create("worker", gpu="4090")
    one = client.create("worker", gpu="4090", unique_name=True)
    two = client.create("worker", gpu="4090", unique_name=True)
    assert re.fullmatch(r"worker-[a-z0-9]{6}", one.name)
    assert one.name != two.name
    assert len(live_instances(sandbox)) == 3


def test_names_are_kept_exactly_as_given(sandbox, client):
    instance = client.create("MixedCase-01", gpu="4090")
    assert client.api.get_instance(instance.id)["name"] == "MixedCase-01"


def test_ambiguous_create_is_adopted_not_duplicated(sandbox, client):
    sandbox.set_faults(ambiguousCreateRate=1.0)  # every create is applied, then the reply dropped
    instance = client.create("ambiguous", gpu="4090")
    sandbox.clear_faults()

    matching = live_instances(sandbox, "ambiguous")
    assert len(matching) == 1
    assert matching[0]["id"] == instance.id
    assert len(calls(sandbox, CREATE_PATH)) == 1  # found by name: never sent again
    assert "adopted" in repr(instance.fallback_report)
    assert instance.id in {entry["id"] for entry in client.ledger.entries()}


def test_ambiguous_creates_under_dropped_connections_never_duplicate(sandbox, fast_client):
    # Drops and 5xx hit reads and creates alike; each name must end up with at most one
    # instance, and every create that returned must have exactly one.
    sandbox.set_faults(dropRate=0.2, errorRate=0.2, ambiguousCreateRate=0.5)
    created = []
    for n in range(6):
        with contextlib.suppress(NovitaError):
            created.append(fast_client.create(f"flaky-{n}", gpu="4090"))
    sandbox.clear_faults()
    for n in range(6):
        assert len(live_instances(sandbox, f"flaky-{n}")) <= 1
    assert created, "most creates get through these faults"
    for instance in created:
        assert [raw["id"] for raw in live_instances(sandbox, instance.name)] == [instance.id]


def test_create_is_resent_when_the_lookup_proves_nothing_was_made(sandbox, client, monkeypatch):
    # A create that dies before reaching the server (the sandbox cannot fail only the first
    # send) must be looked up by name, found absent, and sent again.
    real_create = client.api.create_instance
    sent = []

    def flaky_create(body):
        sent.append(body["name"])
        if len(sent) == 1:
            raise NetworkError("connection reset", method="POST", path="/gpu/instance/create")
        return real_create(body)

    monkeypatch.setattr(client.api, "create_instance", flaky_create)
    instance = client.create("resent", gpu="4090")
    assert sent == ["resent", "resent"]
    assert [raw["id"] for raw in live_instances(sandbox, "resent")] == [instance.id]


def test_a_create_landing_after_the_read_timeout_is_adopted_not_resent(sandbox):
    from novita_notebook import Novita
    from novita_notebook.sandbox.faults import Decision

    original = sandbox.faults.decide

    def slow_creates(is_create, now=None, **kinds):
        decision = original(is_create, now, **kinds)
        return Decision(latency=0.7) if is_create and decision == Decision() else decision

    sandbox.faults.decide = slow_creates  # only creates are slow: they land after 0.7 s
    client = Novita(api_key=sandbox.api_key, api_url=sandbox.url, timeout=(2.0, 0.3))
    try:
        instance = client.create("slow", gpu="4090")
    finally:
        sandbox.faults.decide = original
        client.close()
    assert [raw["id"] for raw in live_instances(sandbox, "slow")] == [instance.id]
    assert len(calls(sandbox, CREATE_PATH)) == 1
    assert "adopted" in repr(instance.fallback_report)


def test_concurrent_creates_of_one_name_make_one_instance(sandbox, client):
    from concurrent.futures import ThreadPoolExecutor

    def attempt(_):
        try:
            return client.create("racer", gpu="4090")
        except ValidationError as error:
            return error

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, range(6)))
    made = [r for r in results if not isinstance(r, ValidationError)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(made) == 1 and len(refused) == 5
    assert all(error.field == "name" for error in refused)
    assert [raw["id"] for raw in live_instances(sandbox, "racer")] == [made[0].id]
