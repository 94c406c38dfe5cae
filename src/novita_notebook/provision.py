"""Provisioning: cheapest available product with multi-region fallback and its report,
templates, registry auths, batches, budget, and never a duplicate instance.
"""

from __future__ import annotations


class ProvisioningMixin:
    """Methods of Novita for creating instances (filled in by the provisioning work)."""
