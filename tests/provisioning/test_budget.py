"""Budget: a create that would push the hourly spend of live, billed or starting instances over
budget_per_hour is refused with the figures; a concurrent batch cannot overshoot.
"""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.errors import BudgetExceededError

from .helpers import CREATE_PATH, calls, live_instances


@pytest.fixture
def budget_client(sandbox):
    def make(budget: float) -> Novita:
        return Novita(api_key=sandbox.api_key, api_url=sandbox.url, budget_per_hour=budget)

    clients: list[Novita] = []

    def build(budget: float) -> Novita:
        clients.append(make(budget))
        return clients[-1]

    yield build
    for novita in clients:
        novita.close()


def test_a_create_over_budget_is_refused_with_the_figures(sandbox, budget_client):
    probe = budget_client(100.0)
    first = probe.create("spend-1", gpu="4090")
    price = first.price_per_hour
    client = budget_client(round(price * 2.5, 4))
    client.create("spend-2", gpu="4090")
    sandbox.clear_requests()

    with pytest.raises(BudgetExceededError) as caught:
        client.create("spend-3", gpu="4090")

    error = caught.value
    assert error.current_per_hour == pytest.approx(2 * price)
    assert error.price_per_hour == pytest.approx(price)
    assert error.budget_per_hour == pytest.approx(price * 2.5)
    message = str(error)
    assert f"${2 * price:.2f}/h" in message and f"${price * 2.5:.2f}/h" in message
    assert calls(sandbox, CREATE_PATH) == []
    assert len(live_instances(sandbox)) == 2


def test_stopped_instances_do_not_count_against_the_budget(sandbox, budget_client):
    first = budget_client(100.0).create("paused", gpu="4090", wait=True, progress="silent")
    client = budget_client(first.price_per_hour * 1.5)
    with pytest.raises(BudgetExceededError):
        client.create("second", gpu="4090")
    client.stop(first.id)
    client.wait(first.id, until="exited", progress="silent")
    assert client.current_spend_per_hour() == 0
    assert client.create("second", gpu="4090").name == "second"


def test_a_concurrent_batch_cannot_overshoot_the_budget(sandbox, budget_client):
    probe = budget_client(100.0)
    price = min(
        p.price
        for p in probe.cached_products()
        if p.id == "4090.16c62g" and "AS-SGP-02" in p.regions
    )
    client = budget_client(round(price * 3.5, 4))

    frame = client.create_many(
        8, gpu="4090", regions=["AS-SGP-02"], concurrency=4, name_prefix="capped"
    )

    created = frame[frame["instance_id"].notna()]
    refused = frame[frame["error"].fillna("").str.contains("BudgetExceededError")]
    assert len(created) == 3 and len(refused) == 5
    assert created["price_per_hour"].sum() <= client.config.budget_per_hour + 1e-9
    assert len(live_instances(sandbox)) == 3
    assert client.current_spend_per_hour() <= client.config.budget_per_hour + 1e-9
