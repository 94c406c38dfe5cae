"""Novita: the facade users hold. Composes the core client (config, transport, endpoints,
DataFrames, caches, lifecycle) with the provisioning, watching and ledger mixins.
"""

from __future__ import annotations

from .ledger import LedgerMixin
from .provision import ProvisioningMixin
from .watch import WatchMixin


class Novita(ProvisioningMixin, WatchMixin, LedgerMixin):
    """The client. See docs/architecture.md for what the mixins may rely on."""
