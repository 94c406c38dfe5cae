"""The local ledger of instances created through this package, surviving kernel restarts.
"""

from __future__ import annotations


class LedgerMixin:
    """Methods of Novita over the ledger: mine() and cleanup()."""
