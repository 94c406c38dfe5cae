"""Rules stored before a create request is sent. ``CreateGuard`` keeps a create's rules with the
ledger's intent before the POST, starts the guard, binds them once the id is known and says, after
a Ctrl-C, that what exists is guarded. ``bind_listed`` lets any guard bind intents by listing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..ledger import LEDGER_FILE, Ledger
from ..pending import INTENT_WINDOW, PendingCreates, match_intent, resolve_from_listing
from .records import GuardIntent, GuardRecord
from .rules import GuardRules
from .store import GuardStore

__all__ = ["CreateGuard", "bind_listed"]

log = logging.getLogger(__name__)

#: Listings that must all miss an intent's instance (over INTENT_WINDOW) before it is dropped.
INTENT_MISSES = 3


def bind_listed(
    store: GuardStore,
    intents: list[GuardIntent],
    raws: list[Mapping[str, Any]],
    now: datetime,
    actor: str,
) -> list[GuardRecord]:
    """Bind each intent whose instance ``raws`` (one listing) shows: the newest instance of
    its name created after it was sent. An intent that no listing showed for INTENT_WINDOW,
    in at least INTENT_MISSES listings, never made an instance: it is dropped, and the log
    says so. Returns the records bound."""
    bound: list[GuardRecord] = []
    changed = False
    for intent in intents:
        found = match_intent({"name": intent.name, "sent_at": intent.sent_at.timestamp()}, raws)
        if found is not None:
            record = store.bind_intent(intent.token, found)
            if record is not None:
                bound.append(record)
                changed = True
                store.log_action(found, "bind", f"the create of {intent.name} made it (bound "
                                 "by name from a listing)", actor, "guarded",
                                 name=intent.name)  # fmt: skip
            continue
        misses = store.miss_intent(intent.token)
        expired = (now - intent.sent_at).total_seconds() > INTENT_WINDOW
        if expired and misses >= INTENT_MISSES and store.drop_intent(intent.token) is not None:
            changed = True
            store.log_action("", "forget", f"the create of {intent.name} sent at "
                             f"{intent.sent_at:%H:%M:%SZ} made no instance (none listed "
                             f"for {INTENT_WINDOW:g} s)", actor, "intent dropped",
                             name=intent.name)  # fmt: skip
    if changed:
        try:  # the ledger's own intent resolves on the same listing (mine() shows it)
            resolve_from_listing(Ledger(store.directory / LEDGER_FILE, store.api_url), raws)
        except (OSError, TimeoutError) as error:
            log.warning("the ledger's create intents were not updated: %s", error)
    return bound


class CreateGuard:
    """The guard of one create: ``sending`` before each POST (rules stored with the ledger's
    intent, the guard started), ``made`` once the id is known, ``settle`` afterwards (an
    intent whose create surely made nothing is dropped), ``interrupted`` for Ctrl-C."""

    def __init__(
        self, store: GuardStore, rules: GuardRules, ensure: Callable[[], Any] | None = None
    ) -> None:
        self.store = store
        self.rules = rules
        self.ensure = ensure
        self.token: str | None = None
        self.name = ""
        self.instance_id: str | None = None

    def sending(self, name: str, token: str | None, price_per_hour: float | None) -> None:
        """Called just before the create request: from here on, whatever interrupts the
        create, its instance will be guarded (by whichever guard sees it first)."""
        if token is None:
            return
        self.token, self.name = token, name
        self.store.add_intent(token, name, self.rules, price_per_hour=price_per_hour)
        copy = {
            "rules": self.rules.to_dict(),
            "price_per_hour": price_per_hour,
            "api_url": self.store.api_url,
        }
        try:
            PendingCreates(self._ledger()).attach_guard(token, copy)
        except (OSError, TimeoutError) as error:  # the guard store has the intent already
            log.warning("the ledger's copy of the rules of %s was not written: %s", name, error)
        if self.ensure is not None:
            self.ensure()

    def made(self, instance_id: str) -> GuardRecord | None:
        """The create answered with ``instance_id``: its rules are that instance's now."""
        self.instance_id = instance_id
        if self.token is None:
            return None
        return self.store.bind_intent(self.token, instance_id)

    def settle(self) -> None:
        """After the create: an intent not bound whose ledger intent is gone too (the create
        surely made nothing) is dropped; one the ledger keeps waits for a listing."""
        if self.token is None or self.instance_id is not None:
            return
        kept = {p.get("token") for p in self._ledger().pending()}
        if self.token not in kept:
            self.store.drop_intent(self.token)

    def interrupted(self) -> str:
        """What a Ctrl-C message adds: the instance (if it exists) is guarded, and how."""
        if self.token is None:
            return ""
        return (
            f" It is guarded ({self.rules.describe()}): the guard enforces that even if this "
            "kernel stops."
        )

    def _ledger(self) -> Ledger:
        return Ledger(self.store.directory / LEDGER_FILE, self.store.api_url)
