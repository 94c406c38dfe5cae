"""Fixtures for the paging tests: a sandbox per page base holding many instances, made
straight through the API (fast), and a client bound to it."""

from __future__ import annotations

import pytest
from paging_helpers import CLUSTER_ID, MANY, PRODUCT_ID, create_many


@pytest.fixture(scope="module", params=[0, 1], ids=["0-based", "1-based"])
def crowded(request):
    """(sandbox, ids): a sandbox serving ``pageNum`` with the given base, holding MANY
    instances. Shared by a module's tests (read-only use)."""
    from novita_notebook import Novita
    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=1000.0, seed=7, page_base=request.param) as server:
        server.set_stock(MANY + 50, cluster_id=CLUSTER_ID, product_id=PRODUCT_ID)
        with Novita(api_key=server.api_key, api_url=server.url) as maker:
            ids = create_many(maker, MANY)
        yield server, ids


@pytest.fixture
def crowded_client(crowded):
    from novita_notebook import Novita

    server, _ = crowded
    novita = Novita(api_key=server.api_key, api_url=server.url)
    yield novita
    novita.close()
