"""One sandbox instance: its stored fields and its lazily computed state machine, including the
spot reclaim lifecycle (notice → reclaiming → terminated) driven by timestamps.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

from .catalog import ClusterSpec, Offer, ProductSpec

RECLAIMED_ERROR = {
    "state": "spotReclaimed",
    "message": "the spot instance was reclaimed by the platform",
}


@dataclass
class InstanceRecord:
    id: str
    name: str
    offer: Offer
    gpu_num: int
    rootfs_size: int
    image_url: str
    image_auth_id: str
    image_auth_ok: bool  # inline "user:pass" credentials were complete
    ports: list[tuple[int, str]]
    envs: list[dict[str, str]]
    tools: list[dict[str, Any]]
    command: str
    entrypoint: str
    billing_mode: str
    month: int
    network_storages: list[dict[str, str]]
    network_id: str
    min_cuda_version: str
    created_at: float
    slot: int  # the instance's number in this sandbox: names its pretend tcp endpoints
    ssh_password: str
    terminal_password: str
    ip: str
    status: str = "toCreate"
    stages: list[tuple[str, float]] = field(default_factory=list)  # (status, until)
    final_status: str | None = None
    final_error: dict[str, str] | None = None
    status_error: dict[str, str] = field(default_factory=lambda: {"state": "", "message": ""})
    last_started_at: float | None = None
    last_stopped_at: float | None = None
    running_since: float | None = None
    removed_at: float | None = None
    # Spot reclaim: "" for non-spot; running | notified | reclaiming | terminated for spot.
    spot_status: str = ""
    spot_reclaim_time: float | None = None  # when the platform takes it back (shown while set)
    notice_at: float | None = None  # a scheduled (random) notice
    notice_seconds: float = 0.0  # scaled notice length for the scheduled notice
    reclaim_at: float | None = None  # notified: reclaiming starts then
    reclaim_seconds: float = 0.0  # scaled duration of "reclaiming"
    notice_drawn: bool = False  # a random notice time was drawn for this run
    # GPU utilisation overrides: (since, percent or None = back to the default pattern).
    utilization: list[tuple[float, float | None]] = field(default_factory=list)
    restarts: int = 0  # restarts accepted (a repeated restart with repeatActions counts twice)
    actions: dict[str, int] = field(default_factory=dict)  # repeats accepted, by action

    @property
    def product(self) -> ProductSpec:
        return self.offer.product

    @property
    def cluster(self) -> ClusterSpec:
        return self.offer.cluster

    @property
    def is_spot(self) -> bool:
        return self.billing_mode == "spot"

    def begin(
        self,
        now: float,
        stages: list[tuple[str, float]],
        final: str,
        error: dict[str, str] | None = None,
    ) -> None:
        """Start a transition: timed stages (status, seconds already scaled) then ``final``."""
        until = now
        self.stages = []
        for status, seconds in stages:
            until += seconds
            self.stages.append((status, until))
        self.final_status = final
        self.final_error = error
        self.status = self.stages[0][0] if self.stages else final
        if not self.stages:
            self._arrive(now)

    def settle(self, now: float) -> None:
        """Advance to ``now`` (statuses are computed lazily on read), spot events in order."""
        while True:
            events = [t for t in (self.notice_at, self.reclaim_at) if t is not None and t <= now]
            if not events:
                break
            at = min(events)
            self._advance(at)
            if at == self.notice_at:
                self.notice_at = None
                self.notify(at, self.notice_seconds)
            else:
                self.reclaim_at = None
                self._reclaim(at)
        self._advance(now)

    def notify(self, at: float, notice_seconds: float) -> bool:
        """A reclaim notice: the instance is taken back ``notice_seconds`` (scaled) later."""
        if not self.is_spot or self.status != "running" or self.final_status is not None:
            return False
        self.spot_status = "notified"
        self.spot_reclaim_time = at + notice_seconds
        self.reclaim_at = at + notice_seconds
        self.notice_at = None
        return True

    def clear_spot_notice(self) -> None:
        self.notice_at = self.reclaim_at = self.spot_reclaim_time = None
        self.notice_drawn = False
        if self.is_spot:
            self.spot_status = "running"

    def _reclaim(self, at: float) -> None:
        if self.status != "running" or self.final_status is not None:
            self.clear_spot_notice()
            return
        self.spot_status = "reclaiming"
        self.running_since = None
        self.begin(at, [("stopping", self.reclaim_seconds)], "exited", dict(RECLAIMED_ERROR))

    def _advance(self, now: float) -> None:
        if self.final_status is None:
            return
        while self.stages and self.stages[0][1] <= now:
            arrived_at = self.stages.pop(0)[1]
            if not self.stages:
                self._arrive(arrived_at)
                return
        if self.stages:
            self.status = self.stages[0][0]

    def _arrive(self, at: float) -> None:
        self.status = self.final_status or self.status
        self.final_status = None
        if self.status == "running":
            self.last_started_at = at
            self.running_since = at
            self.status_error = {"state": "", "message": ""}
            if self.is_spot:
                self.spot_status = "running"
                self.spot_reclaim_time = None
                self.notice_drawn = False
        elif self.status == "exited":
            self.last_stopped_at = at
            self.running_since = None
            if self.final_error:
                self.status_error = dict(self.final_error)
            if self.spot_status == "reclaiming":
                self.spot_status = "terminated"
            self.notice_at = self.reclaim_at = None
        elif self.status == "removed":
            self.removed_at = at
            self.running_since = None
            self.notice_at = self.reclaim_at = None


def token(
    rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits
) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))
