"""Fixtures for webhook tests (helpers live in webhook_helpers.py)."""

from __future__ import annotations

import pytest
from webhook_helpers import make_change

from novita_notebook.models import StatusChange


@pytest.fixture
def change() -> StatusChange:
    return make_change()
