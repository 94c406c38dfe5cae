"""Fixtures of the sandbox tests: ``api``, an authenticated session on the per-test sandbox.
The shared ``sandbox`` fixture (speed 300, seed 7) comes from tests/conftest.py.
"""

from __future__ import annotations

import pytest
from sandbox_helpers import Api


@pytest.fixture
def api(sandbox):
    client = Api(sandbox)
    yield client
    client.session.close()
