"""Fixtures of the provisioning tests: a client tuned for fault storms.
Same sandbox as the shared ``client`` fixture; only retry and breaker timings differ.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_client(sandbox):
    """Short backoffs and a quick breaker so fault storms cost seconds, not minutes."""
    from novita_notebook import Novita

    novita = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        retry_backoff=0.05,
        retry_backoff_max=5.0,
        breaker_reset_timeout=0.5,
    )
    yield novita
    novita.close()
