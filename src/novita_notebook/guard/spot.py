"""Spot reclaim notices: the spot fields a listing lacks fetched per spot instance, and each
notice announced once (``spot.reclaim_notice``) under the same claim the enforcer uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import NovitaError
from ..models import GONE_STATUSES, parse_time
from .policy import SPOT_NOTICE_STATUSES
from .store import GuardStore

__all__ = ["SpotWatch", "with_spot_details", "notice_stamp"]

log = logging.getLogger(__name__)

#: A notice's claim lives this long when not finished (then another actor may announce it).
NOTICE_CLAIM_TTL = 120.0


def _is_spot(raw: Mapping[str, Any]) -> bool:
    return raw.get("billingMode") == "spot" and raw.get("status") not in GONE_STATUSES


def with_spot_details(api: Any, listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``listing`` with ``spotStatus``/``spotReclaimTime`` on every spot instance: a list
    view may lack them, so those instances are read one by one (on-demand ones never)."""
    out = []
    for raw in listing:
        if _is_spot(raw) and "spotStatus" not in raw:
            try:
                detail = api.get_instance(str(raw.get("id") or raw.get("Id")))
            except NovitaError as exc:
                log.debug("spot details of %s unavailable: %s", raw.get("id"), exc)
            else:
                raw = {
                    **raw,
                    "spotStatus": detail.get("spotStatus"),
                    "spotReclaimTime": detail.get("spotReclaimTime"),
                }
        out.append(raw)
    return out


def notice_stamp(raw: Mapping[str, Any]) -> str | None:
    """The reclaim-time stamp of a pending notice (the claim key's part), else None."""
    status = raw.get("spotStatus")
    reclaim = parse_time(raw.get("spotReclaimTime"))
    if status not in SPOT_NOTICE_STATUSES and reclaim is None:
        return None
    if status == "terminated":
        return None
    return reclaim.isoformat() if reclaim else "unknown"


class SpotWatch:
    """Turns notices in a listing into ``spot.reclaim_notice`` events, once per reclaim time
    across kernels and the guard process (claim ``notify:spot:<time>``)."""

    def __init__(
        self,
        api: Any,
        store: GuardStore,
        emit: Callable[[str, dict[str, Any]], None],
        relay: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.api = api
        self.store = store
        self.emit = emit
        #: told (once) of a notice another actor (the guard process) announced, so the
        #: notebook shows it too; the webhook already went out from there
        self.relay = relay
        self._relayed: set[str] = set()

    def enrich(self, listing: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return with_spot_details(self.api, listing)

    def announce(self, listing: list[dict[str, Any]], actor: str) -> list[str]:
        """Announce each new notice in ``listing``; returns the instance ids announced."""
        announced = []
        for raw in listing:
            stamp = notice_stamp(raw)
            if stamp is None:
                continue
            instance_id = str(raw.get("id") or raw.get("Id") or "")
            claim = f"notify:spot:{stamp}"
            if not instance_id:
                continue
            if not self.store.claim(instance_id, claim, actor, NOTICE_CLAIM_TTL):
                self._relay_announced(raw, instance_id, stamp, actor)
                continue
            record = self.store.get(instance_id)
            policy = record.rules.on_reclaim if record is not None else "notify"
            reason = f"spot reclaim notice (reclaim at {stamp}); on_reclaim={policy}"
            payload = {
                "instanceId": instance_id,
                "name": str(raw.get("name") or ""),
                "rule": "spot",
                "reason": reason,
                "actor": actor,
                "spot_status": raw.get("spotStatus"),
                "reclaim_time": stamp,
                "on_reclaim": policy,
            }
            try:
                self.emit("spot.reclaim_notice", payload)
                result = "announced"
            except Exception as exc:  # noqa: BLE001 - a receiver failing must not stop it
                log.warning("could not announce the spot notice of %s: %s", instance_id, exc)
                result = f"announce failed: {type(exc).__name__}"
            self.store.complete(instance_id, claim, actor)
            self.store.log_action(
                instance_id, "notify", reason, actor, result, rule="spot", key=f"spot:{stamp}"
            )
            announced.append(instance_id)
        return announced

    def _relay_announced(
        self, raw: Mapping[str, Any], instance_id: str, stamp: str, actor: str
    ) -> None:
        """A notice another actor claimed: once its action log says it was announced, hand
        it to ``relay`` (once per reclaim time)."""
        key = f"spot:{stamp}"
        if self.relay is None or f"{instance_id} {key}" in self._relayed:
            return
        done = [
            entry
            for entry in self.store.actions(instance_id)
            if entry.get("key") == key and entry.get("action") == "notify"
        ]
        if not done or done[-1].get("actor") == actor:
            return  # still in flight elsewhere (next tick), or our own
        self._relayed.add(f"{instance_id} {key}")
        entry = done[-1]
        record = self.store.get(instance_id)
        self.relay(
            "spot.reclaim_notice",
            {
                "instanceId": instance_id,
                "name": str(raw.get("name") or ""),
                "rule": "spot",
                "reason": entry.get("reason") or f"spot reclaim notice (reclaim at {stamp})",
                "actor": entry.get("actor"),
                "spot_status": raw.get("spotStatus"),
                "reclaim_time": stamp,
                "on_reclaim": record.rules.on_reclaim if record is not None else "notify",
            },
        )
