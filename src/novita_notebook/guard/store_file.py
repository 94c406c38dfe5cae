"""The guard store's file under its lock: read record by record (a damaged file is kept aside,
written back with what could be read, rebuilt from the ledger's copies and its losses
announced), written atomically, and mirrored into the ledger's copy of the rules.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files import atomic_write_text, move_aside
from ..ledger import LEDGER_FILE, Ledger
from .actionlog import LOG_FILE, ActionLog
from .records import GuardRecord, scope_url
from .store_doc import (
    QUARANTINE_FILE,
    StoreDocument,
    announce_losses,
    read_document,
    rebuild,
    render,
)

__all__ = ["StoreFile", "STORE_FILE", "COPY_FIELDS"]

log = logging.getLogger(__name__)

STORE_FILE = "guard.json"
LOCK_TIMEOUT = 30.0
#: Finished claims of instances that are no longer guarded are kept this long (seconds).
DONE_CLAIM_KEEP = 7 * 86400
#: The record fields the ledger keeps a copy of (enough to guard the instance again).
COPY_FIELDS = ("id", "api_url", "name", "rules", "created_at", "price_per_hour", "budget_since")

#: ``bind(data, token, instance_id)``: bind an intent in a document, the record made or None.
Binder = Callable[[dict[str, Any], str, str], GuardRecord | None]


def copy_of(record: GuardRecord) -> dict[str, Any]:
    data = record.to_dict()
    return {key: data.get(key) for key in COPY_FIELDS}


class StoreFile:
    """``guard.json`` in ``directory``, with its lock, for a store of ``api_url``. ``bind``
    turns an intent the ledger saw resolved into a record while reading."""

    def __init__(self, directory: Path, api_url: str | None, bind: Binder) -> None:
        self.directory = directory
        self.api_url = api_url
        self.bind = bind
        self.thread_lock = threading.RLock()

    @property
    def path(self) -> Path:
        return self.directory / STORE_FILE

    @property
    def quarantine_path(self) -> Path:
        return self.directory / QUARANTINE_FILE

    @property
    def ledger(self) -> Ledger:
        """The ledger beside the store: it holds the copies the store is rebuilt from."""
        return Ledger(self.directory / LEDGER_FILE)

    @property
    def actions_log(self) -> ActionLog:
        return ActionLog(self.directory / LOG_FILE, self.api_url)

    def file_lock(self) -> Any:
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)

    def read(self) -> dict[str, Any]:
        with self.thread_lock, self.file_lock():
            return self.load()

    def update(self, change: Callable[[dict[str, Any]], None], now: float | None = None) -> None:
        with self.thread_lock, self.file_lock():
            data = self.load()
            change(data)
            self.write(data, time.time() if now is None else now)

    def write(self, data: dict[str, Any], now: float) -> None:
        """Prune and replace the file (the caller holds the lock)."""
        _prune(data, now)
        atomic_write_text(self.path, render(data))

    def load(self) -> dict[str, Any]:
        """The file's content (the caller holds the lock), record by record. A damaged file
        is moved aside and written back with what could be read; records the ledger has a
        copy of are rebuilt from it; intents the ledger saw resolved are bound."""
        doc = read_document(self.path)
        rebuilt: list[GuardRecord] = []
        if doc.damaged or doc.missing:
            rebuilt = self._rebuild(doc)
        bound = self._bind_resolved(doc) if doc.intents else []
        if doc.damaged or rebuilt:
            self._repair(doc, rebuilt)
        if doc.damaged or rebuilt or bound:
            self.write(doc.as_data(), time.time())
        if bound:
            self.mirror(upserts=bound)
        return doc.as_data()

    def _rebuild(self, doc: StoreDocument) -> list[GuardRecord]:
        """Records and intents the ledger has a copy of but the file lost."""
        try:
            copies, pending = self.ledger.rules_copies(), self.ledger.pending()
        except (OSError, TimeoutError) as error:
            log.warning("guard store: the ledger's copies of the rules are unreadable: %s", error)
            return []
        return rebuild(doc, copies, pending)

    def _bind_resolved(self, doc: StoreDocument) -> list[GuardRecord]:
        """Bind intents whose create the ledger saw resolved (its copy names the token)."""
        try:
            copies = self.ledger.rules_copies()
        except (OSError, TimeoutError):
            return []
        by_token = {c.get("token"): c for c in copies if c.get("token")}
        data = doc.as_data()
        out: list[GuardRecord] = []
        for intent in list(doc.intents):
            copy = by_token.get(intent.get("token"))
            if copy is not None and isinstance(copy.get("id"), str):
                record = self.bind(data, str(intent["token"]), copy["id"])
                if record is not None:
                    out.append(record)
        doc.instances, doc.intents = data["instances"], data["intents"]
        return out

    def _repair(self, doc: StoreDocument, rebuilt: list[GuardRecord]) -> None:
        """Keep a damaged file for a person, quarantine what could not be read, and announce
        each loss and each record rebuilt: a warning naming the instance, an action log line."""
        if doc.damaged and self.path.exists():
            aside = move_aside(self.path)
            log.warning("guard store %s was damaged; kept as %s", self.path, aside.name)
        notices = announce_losses(self.path, self.quarantine_path, doc.problems, rebuilt,
                                  doc.rebuilt_intents)  # fmt: skip
        actor = f"pid {os.getpid()}"
        entries = []
        for who, reason, result, count, kind in notices:
            # a create in flight is named by its name: it has no instance id yet
            instance, name = ("", who) if kind == "intent" else (who, "")
            entries.append(self.actions_log.entry(instance, "quarantine", reason, actor, result,
                                                  count=count, kind=kind, name=name))  # fmt: skip
        if entries:
            self.actions_log.append(entries)

    def mirror(
        self, upserts: list[GuardRecord] | None = None, removals: list[str] | None = None
    ) -> None:
        """Keep the ledger's copy of the rules in step (what a damaged store is rebuilt
        from). A ledger that cannot be written only costs that backup: logged."""
        changed = {(r.id, r.api_url) for r in upserts or ()}
        changed |= {(i, self.api_url) for i in removals or ()}
        if not changed:
            return
        fresh = [copy_of(r) for r in upserts or ()]

        def change(copies: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [c for c in copies if (c.get("id"), scope_url(c.get("api_url"))) not in changed]
            return [*kept, *fresh]

        try:
            self.ledger.update_rules_copies(change)
        except (OSError, TimeoutError) as error:
            log.warning("the ledger's copy of the guard rules was not updated: %s", error)


def _prune(data: dict[str, Any], now: float) -> None:
    """Drop expired claims and old finished claims of instances no longer guarded."""
    guarded = {(i.get("id"), scope_url(i.get("api_url"))) for i in data["instances"]}
    kept = []
    for claim in data["claims"]:
        key = (claim.get("instance_id"), scope_url(claim.get("api_url")))
        if claim.get("done"):
            if key in guarded or now - float(claim.get("finished") or now) < DONE_CLAIM_KEEP:
                kept.append(claim)
        elif float(claim.get("expires") or 0) > now:
            kept.append(claim)
    data["claims"] = kept
