"""Provisioning: create instances on the cheapest available offer with region fallback, never
a duplicate, within budget; templates, registry auths and batches. See each module's docstring.

offers (match + rank), report (FallbackReport), request (validation and the body), create (the
pipeline), idempotency (names, ambiguous creates), budget, batch, resources.
"""

from __future__ import annotations

from .batch import Batch
from .budget import Budget
from .create import Provisioner
from .idempotency import MAX_NOT_SENT_WAIT, NameClaims
from .offers import find_alternatives, judge_region, match_gpu, order_regions
from .report import (
    OUTCOME_CHOSEN,
    OUTCOME_CREATE_FAILED,
    OUTCOME_NO_PRODUCT,
    OUTCOME_NO_STORAGE,
    OUTCOME_OVER_PRICE,
    OUTCOME_ROOTFS,
    OUTCOME_UNAVAILABLE,
    Attempt,
    FallbackReport,
)
from .request import DEFAULT_IMAGE, DEFAULT_ROOTFS_GB, CreateRequest, prepare_request
from .resources import Resources

__all__ = [
    "Batch",
    "Budget",
    "Provisioner",
    "NameClaims",
    "Resources",
    "MAX_NOT_SENT_WAIT",
    "find_alternatives",
    "judge_region",
    "match_gpu",
    "order_regions",
    "OUTCOME_CHOSEN",
    "OUTCOME_CREATE_FAILED",
    "OUTCOME_NO_PRODUCT",
    "OUTCOME_NO_STORAGE",
    "OUTCOME_OVER_PRICE",
    "OUTCOME_ROOTFS",
    "OUTCOME_UNAVAILABLE",
    "Attempt",
    "FallbackReport",
    "DEFAULT_IMAGE",
    "DEFAULT_ROOTFS_GB",
    "CreateRequest",
    "prepare_request",
]
