"""Pending creates, kept in the ledger file under its lock: name claims that make a name unique
across clients and processes of one user, and create intents that find an interrupted create.

A claim is taken before the API check and the POST; it is marked *sent* just before the POST
and removed once the create resolves (the instance recorded in the ledger) or surely failed.
A sent intent that never resolved (Ctrl-C, a killed kernel, an ambiguous failure) stays in the
file until ``resolve_from_listing`` finds the instance by name in a later listing (``mine()``,
``cleanup()``) or ``INTENT_WINDOW`` shows it never landed.

Limit: the ledger is a local file, so claims bind the processes of one user on one machine (or
sharing one ``NOVITA_NOTEBOOK_HOME``). Two machines can still race on a name; the API check
before the POST narrows that window but cannot close it.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import ValidationError
from .ledger import Ledger
from .ledger import _normalise_url as _norm
from .models import parse_time

__all__ = [
    "PendingCreates",
    "resolve_from_listing",
    "holder_alive",
    "CLAIM_TTL",
    "INTENT_WINDOW",
]

#: Seconds a claim holds a name without being refreshed; a create refreshes it when it sends.
CLAIM_TTL = 180.0
#: Seconds after which a sent create that no listing has shown is taken as never landed.
INTENT_WINDOW = 600.0
#: How much earlier than the POST an instance's createdAt may read (clock skew) and still match.
CLOCK_SLACK = 120.0


def holder_alive(claim: Mapping[str, Any]) -> bool:
    """False only when the claim was taken on this host by a process that no longer runs
    (``host`` and ``pid`` of the claim; a claim without them is taken as alive)."""
    if claim.get("host") != socket.gethostname():
        return True
    pid = claim.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours to signal
        return True
    return True


def _blocks(claim: Mapping[str, Any], now: float) -> bool:
    """Does this claim still hold its name against another create?"""
    expires = claim.get("expires")
    return isinstance(expires, int | float) and expires > now and holder_alive(claim)


class PendingCreates:
    """Name claims and create intents of one ledger (its api_url)."""

    def __init__(self, ledger: Ledger, ttl: float = CLAIM_TTL) -> None:
        self.ledger = ledger
        self.ttl = ttl

    def _mine(self, claim: Mapping[str, Any]) -> bool:
        return _norm(claim.get("api_url")) == self.ledger.api_url

    def claim(self, name: str) -> str:
        """Hold ``name`` for a create; returns the claim's token. A ValidationError when a
        create of the same name is in flight in any client or process of this user."""
        token = secrets.token_hex(8)
        now = time.time()
        holder: list[dict[str, Any]] = []

        def change(entries: list, pending: list) -> tuple[list, list]:
            for other in pending:
                if other.get("name") == name and self._mine(other) and _blocks(other, now):
                    holder.append(other)
                    return entries, pending
            mine = {
                "token": token,
                "name": name,
                "api_url": self.ledger.api_url,
                "claimed_at": now,
                "expires": now + self.ttl,
                "sent_at": None,
                "host": socket.gethostname(),
                "pid": os.getpid(),
            }
            return entries, [*pending, mine]

        self.ledger.update_document(change)
        if holder:
            by = f"pid {holder[0].get('pid')} on {holder[0].get('host')}"
            raise ValidationError(
                f"name: an instance named {name!r} is being created right now ({by}); "
                "choose another name or pass unique_name=True",
                field="name",
                hint="Names are claimed across clients and processes of this user on this "
                "machine while a create is in flight.",
            )
        return token

    def _edit(self, token: str, **changes: Any) -> None:
        def change(entries: list, pending: list) -> tuple[list, list]:
            return entries, [{**p, **changes} if p.get("token") == token else p for p in pending]

        self.ledger.update_document(change)

    def mark_sent(self, token: str) -> None:
        """The POST is about to go out: from now on the intent survives until resolved."""
        now = time.time()
        self._edit(token, sent_at=now, expires=now + self.ttl)

    def attach_guard(self, token: str, guard: Mapping[str, Any]) -> None:
        """Keep a copy of the guard rules of this create with its intent (``{"rules": ...,
        "price_per_hour": ...}``): once the create resolves, the copy moves to the ledger's
        copies of guard rules under the instance's id, whatever resolves it."""
        self._edit(token, guard=dict(guard))

    def release(self, token: str) -> None:
        """Drop the claim (nothing was created)."""

        def change(entries: list, pending: list) -> tuple[list, list]:
            return entries, [p for p in pending if p.get("token") != token]

        self.ledger.update_document(change)

    def resolved(self, token: str, instance_id: str, name: str) -> None:
        """The create made ``instance_id``: record it and drop the claim in one write."""
        entry = self.ledger.entry_for({"id": instance_id, "name": name})
        copies: list[dict[str, Any]] = []

        def change(entries: list, pending: list) -> tuple[list, list]:
            known = any(e.get("id") == instance_id and self._mine(e) for e in entries)
            kept = [p for p in pending if p.get("token") != token]
            copies.extend(guard_copy(p, instance_id) for p in pending if p.get("token") == token)
            return (entries if known else [*entries, entry]), kept

        self.ledger.update_document(change)
        add_guard_copies(self.ledger, [c for c in copies if c is not None])

    def sent_at(self, token: str) -> float | None:
        for claim in self.ledger.pending():
            if claim.get("token") == token:
                value = claim.get("sent_at")
                return float(value) if isinstance(value, int | float) else None
        return None

    def waiting(self) -> list[dict[str, Any]]:
        """This api_url's sent creates not resolved yet."""
        return [p for p in self.ledger.pending() if self._mine(p) and p.get("sent_at")]


def match_intent(claim: Mapping[str, Any], raws: Iterable[Mapping[str, Any]]) -> str | None:
    """The id of the instance a sent create made: the newest listed with its exact name,
    created no earlier than the POST (less clock slack)."""
    sent = claim.get("sent_at")
    if not isinstance(sent, int | float):
        return None
    best: tuple[float, str] | None = None
    for raw in raws:
        if raw.get("name") != claim.get("name") or not raw.get("id"):
            continue
        created = parse_time(raw.get("createdAt"))
        stamp = created.timestamp() if created is not None else sent
        if stamp >= sent - CLOCK_SLACK and (best is None or stamp > best[0]):
            best = (stamp, str(raw["id"]))
    return best[1] if best else None


def resolve_from_listing(ledger: Ledger, raws: list[Mapping[str, Any]]) -> list[str]:
    """Turn sent intents of ``ledger``'s api_url into ledger entries when ``raws`` (one
    listing) shows their instance; drop intents too old to land and expired unsent claims.
    Returns the ids recorded."""
    now = time.time()
    url = ledger.api_url
    recorded: list[str] = []
    copies: list[dict[str, Any]] = []

    def change(entries: list, pending: list) -> tuple[list, list]:
        known = {e.get("id") for e in entries if _norm(e.get("api_url")) == url}
        kept = []
        for claim in pending:
            if _norm(claim.get("api_url")) != url:
                kept.append(claim)
                continue
            found = match_intent(claim, raws)
            if found is not None:
                copies.append(guard_copy(claim, found))
                if found not in known:
                    entries = [*entries, ledger.entry_for({"id": found, "name": claim["name"]})]
                    known.add(found)
                    recorded.append(found)
                continue
            sent = claim.get("sent_at")
            if isinstance(sent, int | float):
                if now - sent < INTENT_WINDOW:
                    kept.append(claim)
            elif _blocks(claim, now):
                kept.append(claim)
        return entries, kept

    if any(_norm(p.get("api_url")) == url for p in ledger.pending()):
        ledger.update_document(change)
        add_guard_copies(ledger, [c for c in copies if c is not None])
    return recorded


def guard_copy(claim: Mapping[str, Any], instance_id: str) -> dict[str, Any] | None:
    """The ledger's copy of the guard rules a resolved create intent carried (None if it
    carried none): the guard store binds its own intent of the same ``token`` to the id."""
    guard = claim.get("guard")
    if not isinstance(guard, Mapping) or not isinstance(guard.get("rules"), Mapping):
        return None
    sent = claim.get("sent_at")
    created = (
        datetime.fromtimestamp(float(sent), UTC).isoformat()
        if isinstance(sent, int | float)
        else None
    )
    return {
        "id": instance_id,
        "api_url": guard.get("api_url") or claim.get("api_url"),
        "name": claim.get("name"),
        "rules": dict(guard["rules"]),
        "created_at": created,
        "price_per_hour": guard.get("price_per_hour"),
        "token": claim.get("token"),
    }


def add_guard_copies(ledger: Ledger, copies: list[dict[str, Any]]) -> None:
    """Add copies of guard rules (one per resolved, guarded create) to the ledger."""
    if not copies:
        return
    ids = {c["id"] for c in copies}

    def change(existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [*[c for c in existing if c.get("id") not in ids], *copies]

    ledger.update_rules_copies(change)
