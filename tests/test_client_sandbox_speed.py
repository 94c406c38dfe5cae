"""``Novita.sandbox()`` runs at one documented speed, the same as ``%novita sandbox start``: a
newcomer following the README waits seconds for a create, not a minute and a half."""

from __future__ import annotations

from novita_notebook import Novita
from novita_notebook.config import SANDBOX_SPEED


def test_the_sandbox_is_not_real_time_by_default():
    client = Novita.sandbox()
    try:
        assert client.sandbox_server.speed == SANDBOX_SPEED == 50
        assert "50" in (Novita.sandbox.__doc__ or "")
    finally:
        client.close()


def test_the_magic_starts_its_sandbox_at_the_same_speed():
    from novita_notebook.notebook.magics import NovitaMagics

    assert NovitaMagics.sandbox_speed.default_value == SANDBOX_SPEED


def test_a_sandbox_eta_is_short():
    """Without history the ETA comes from the documented times, divided by the speed."""
    from novita_notebook.waiting.learned import instance_eta

    with Novita.sandbox(speed=50) as client:
        created = client.create("eta-1", gpu="RTX 4090")
        eta = instance_eta(created)
        assert eta is not None and 0 < eta[0] < 5  # not "~1 min by the documented times"
