"""The switch matrix's rows: every sandbox switch that serves the other plausible answer to an
unverified guess (docs/assumptions.md), with what the doctor must say about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    """One switch and value. ``doctor``: the line that must differ (the package relies on
    the guess and a read-only look can tell), or None when the package no longer relies on
    it (it fails safe) or no read-only look can tell: then the doctor must still pass."""

    guess: str
    switches: dict[str, Any]
    doctor: str | None = None
    #: the guard column waits for another branch's work (reason), else None
    guard_pending: str | None = None
    #: faults set around the lifecycle's restart (the rate limit counts per second there)
    faults: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.switches.items()) or "guesses-hold"


CASES: tuple[Case, ...] = (
    Case("-", {}),
    Case("G1", {"clusterNames": "city"}, doctor="region join"),
    Case("G2", {"filteredRegions": "all"}, doctor="clusterId filter"),
    Case("G3", {"metricsScale": 1}, doctor="metrics"),
    Case("G4", {"metricsStep": 300}, doctor="metrics"),
    Case("G5", {"spotFields": "none"}, doctor="spot fields"),
    Case("G5", {"spotFields": "list"}, doctor="spot fields"),
    Case("G6", {"timestamps": "ms"}, doctor="timestamps"),
    Case("G6", {"timestamps": "none"}, doctor="timestamps"),
    Case("G8", {"repeatActions": True}, faults={"ambiguousActionRate": 1.0}),
    Case("G9", {"stopWhen": "running"}),
    Case("G11", {"healthyStatusError": True}, doctor="instance statuses"),
    Case("G12", {"storagePrice": "month"}),
    Case("G13", {"gpuNumPrices": "total"}, doctor="gpuNum prices"),
    Case("G14", {"retryAfter": False}, faults={"rateLimitPerMinute": 2}),
    Case("G15", {"jupyterBlock": "whenUsed"}),
    Case("G16", {"pendingRate": 1.0, "phaseJitter": 0.5}),
    Case("paging", {"pageBase": 1}, doctor="paging base"),
    Case("not-found", {"notFoundStatus": 400}, doctor="not-found status"),
    Case("wallet", {"walletNotFound": True}),
    Case("bad key", {"badKeyStatus": 400}, doctor="bad-key status"),
)
