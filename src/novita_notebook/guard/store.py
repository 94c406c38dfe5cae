"""GuardStore: guard rules, create intents, action claims and the action log in the ledger
directory, shared by kernels and the guard process through a file lock and atomic writes.
A damaged file costs only the records it touches; those are rebuilt from the ledger's copy.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..ledger import ledger_dir
from ..pending import holder_alive
from .actionlog import LOG_FILE
from .records import (
    GuardIntent,
    GuardRecord,
    InstanceState,
    budget_kept,
    idle_reading_update,
    iso,
    scope_url,
    seen_stopped_update,
)
from .rules import GuardRules
from .spend import billing_update
from .store_doc import QUARANTINE_FILE
from .store_file import STORE_FILE, StoreFile

__all__ = ["GuardStore", "GuardRecord", "STORE_FILE", "LOG_FILE", "scope_url"]

log = logging.getLogger(__name__)


def _require_id(value: Any, field: str = "instance_id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    return value.strip()


class GuardStore:
    """Rules, intents, claims and the action log of one ledger directory, for one API URL.

    Every change holds ``guard.json.lock`` (threads and processes) and replaces the file
    atomically. A record that cannot be read is quarantined (``guard-quarantine.jsonl``),
    rebuilt from the ledger's copy of its rules when there is one, and announced either way.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, api_url: str | None = None):
        self._directory = Path(directory).expanduser() if directory is not None else None
        self.api_url = scope_url(api_url)
        self._file: StoreFile | None = None

    @property
    def directory(self) -> Path:
        return self._directory or ledger_dir()

    @property
    def file(self) -> StoreFile:
        """The file under its lock (resolved on use: NOVITA_NOTEBOOK_HOME may change)."""
        if self._file is None or self._file.directory != self.directory:
            self._file = StoreFile(self.directory, self.api_url, self._bind)
        return self._file

    @property
    def path(self) -> Path:
        return self.directory / STORE_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def quarantine_path(self) -> Path:
        return self.directory / QUARANTINE_FILE

    def __repr__(self) -> str:
        scope = f" for {self.api_url}" if self.api_url else ""
        return f"<GuardStore {self.path}{scope}>"

    # -- rules ---------------------------------------------------------------------------------
    def set_rules(
        self,
        instance_id: str,
        rules: GuardRules,
        *,
        name: str | None = None,
        created_at: datetime | None = None,
        price_per_hour: float | None = None,
        replace: bool = False,
    ) -> GuardRecord:
        """Guard an instance: ``rules`` are merged into its current ones (``replace=True``
        drops those). Returns the stored record."""
        instance_id = _require_id(instance_id)
        if not isinstance(rules, GuardRules):
            raise ValidationError("rules must be a GuardRules", field="rules")
        out: list[GuardRecord] = []
        details = {"name": name, "created_at": created_at, "price_per_hour": price_per_hour}
        self.file.update(lambda data: out.append(self._merge(data, instance_id, rules, replace,
                                                         details)))  # fmt: skip
        self.file.mirror(upserts=out)
        return out[0]

    def _merge(
        self,
        data: dict[str, Any],
        instance_id: str,
        rules: GuardRules,
        replace: bool,
        details: Mapping[str, Any],
    ) -> GuardRecord:
        old = self._find(data, instance_id)
        previous = GuardRecord.from_dict(old) if old else None
        merged = rules if (replace or previous is None) else previous.rules.merged(rules)
        record = budget_kept(previous, merged, replace)

        def kept(key: str) -> Any:
            given = details.get(key)
            if given not in (None, ""):
                return given
            return (
                getattr(previous, key)
                if previous
                else GuardRecord.__dataclass_fields__[key].default
            )

        record = dataclasses.replace(
            record,
            id=instance_id,
            rules=merged,
            api_url=self.api_url,
            name=kept("name") or "",
            created_at=kept("created_at"),
            price_per_hour=kept("price_per_hour"),
            warned=previous.warned if previous else {},
            seen_stopped=previous.seen_stopped if previous else None,
        )
        self._put(data, record)
        return record

    def note_states(self, states: Mapping[str, InstanceState], now: datetime) -> list[GuardRecord]:
        """Bring what the store knows of each guarded instance in ``states`` up to ``now``:
        the total budget's bookkeeping (guard/spend.py), since when it has been stopped and
        where the idle rule's utilisation came from, computed under the lock so that two
        guards looking at once agree; writes only on a change. Returns every record of this store's API URL, as stored afterwards."""
        out: list[GuardRecord] = []
        with self.file.thread_lock, self.file.file_lock():
            data = self.file.load()
            changed = False
            for index, item in enumerate(data["instances"]):
                if not self._in_scope(item.get("api_url")):
                    continue
                record = GuardRecord.from_dict(item)
                state = states.get(record.id)
                fields: dict[str, Any] = {}
                if state is not None:
                    if record.rules.budget_total is not None:
                        fields.update(billing_update(record, state, now))
                    fields.update(seen_stopped_update(record, state, now))
                    fields.update(idle_reading_update(record, state))
                if fields:
                    record = dataclasses.replace(record, **fields)
                    data["instances"][index] = record.to_dict()
                    changed = True
                out.append(record)
            if changed:
                self.file.write(data, time.time())
        return out

    note_billing = note_states

    def update_rules(
        self, instance_id: str, change_rules: Callable[[GuardRules], GuardRules]
    ) -> GuardRecord:
        """Apply ``change_rules`` to an instance's rules under the lock (extend, without)."""
        instance_id = _require_id(instance_id)
        out: list[GuardRecord] = []

        def change(data: dict[str, Any]) -> None:
            old = self._find(data, instance_id)
            if old is None:
                raise ValidationError(
                    f"instance {instance_id} has no guard rules", field="instance"
                )
            record = GuardRecord.from_dict(old)
            updated = dataclasses.replace(record, rules=change_rules(record.rules))
            self._put(data, updated)
            out.append(updated)

        self.file.update(change)
        self.file.mirror(upserts=out)
        return out[0]

    def extend(self, instance_id: str, duration: Any, rule: str | None = None) -> GuardRecord:
        """Push an instance's deadlines back by ``duration``."""
        return self.update_rules(instance_id, lambda rules: rules.extend(duration, rule))

    def get(self, instance_id: str) -> GuardRecord | None:
        for record in self.records():
            if record.id == instance_id:
                return record
        return None

    def records(self) -> list[GuardRecord]:
        """Every guarded instance of this store's API URL."""
        data = self.file.read()
        return [
            GuardRecord.from_dict(item)
            for item in data["instances"]
            if self._in_scope(item.get("api_url"))
        ]

    def remove(self, instance_id: str) -> bool:
        """Stop guarding an instance (its claims go too); True if it was guarded."""
        instance_id = _require_id(instance_id)
        removed: list[bool] = []

        def change(data: dict[str, Any]) -> None:
            before = len(data["instances"])
            data["instances"] = [i for i in data["instances"] if not self._is(i, instance_id)]
            data["claims"] = [
                c for c in data["claims"] if not self._is(c, instance_id, key="instance_id")
            ]
            removed.append(len(data["instances"]) != before)

        self.file.update(change)
        self.file.mirror(removals=[instance_id])
        return removed[0]

    def move(self, old_id: str, new_id: str) -> GuardRecord | None:
        """Carry an instance's rules over to its replacement (spot ``recreate``)."""
        old_id, new_id = _require_id(old_id, "old_id"), _require_id(new_id, "new_id")
        out: list[GuardRecord | None] = []

        def change(data: dict[str, Any]) -> None:
            old = self._find(data, old_id)
            if old is None:
                out.append(None)
                return
            data["instances"] = [i for i in data["instances"] if not self._is(i, old_id)]
            fresh = {**old, "id": new_id, "warned": {}, "seen_stopped": None}
            record = GuardRecord.from_dict(fresh)
            self._put(data, record)
            out.append(record)

        self.file.update(change)
        if out[0] is not None:
            self.file.mirror(upserts=[out[0]], removals=[old_id])
        return out[0]

    def mark_warned(self, instance_id: str, key: str, at: datetime | None = None) -> None:
        """Remember that the warning ``key`` was given (policy reads it as ``warned``)."""
        moment = at or datetime.now(UTC)

        def change(data: dict[str, Any]) -> None:
            old = self._find(data, instance_id)
            if old is not None:
                old.setdefault("warned", {})
                old["warned"].setdefault(key, iso(moment))

        self.file.update(change)

    # -- intents: rules stored before the create request is sent -----------------------------
    def add_intent(
        self,
        token: str,
        name: str,
        rules: GuardRules,
        *,
        price_per_hour: float | None = None,
        sent_at: datetime | None = None,
    ) -> GuardIntent:
        """Store ``rules`` for the create of ``name`` about to be sent (ledger token
        ``token``): the guard binds them to the instance once it is known."""
        intent = GuardIntent(
            token=_require_id(token, "token"),
            name=_require_id(name, "name"),
            rules=rules,
            sent_at=sent_at or datetime.now(UTC),
            api_url=self.api_url,
            price_per_hour=price_per_hour,
        )

        def change(data: dict[str, Any]) -> None:
            data["intents"] = [i for i in data["intents"] if i.get("token") != intent.token]
            data["intents"].append(intent.to_dict())

        self.file.update(change)
        return intent

    def intents(self) -> list[GuardIntent]:
        """The intents of this store's API URL not bound to an instance yet."""
        data = self.file.read()
        return [
            GuardIntent.from_dict(i) for i in data["intents"] if self._in_scope(i.get("api_url"))
        ]

    def bind_intent(
        self,
        token: str,
        instance_id: str,
        *,
        created_at: datetime | None = None,
        price_per_hour: float | None = None,
    ) -> GuardRecord | None:
        """The create of intent ``token`` made ``instance_id``: its rules become that
        instance's (merged into any it has). None when no such intent is left."""
        instance_id = _require_id(instance_id)
        out: list[GuardRecord] = []

        def change(data: dict[str, Any]) -> None:
            record = self._bind(data, token, instance_id, created_at, price_per_hour)
            out.extend([record] if record is not None else [])

        self.file.update(change)
        self.file.mirror(upserts=out)
        return out[0] if out else None

    def _bind(
        self,
        data: dict[str, Any],
        token: str,
        instance_id: str,
        created_at: datetime | None = None,
        price: float | None = None,
    ) -> GuardRecord | None:
        raw = next((i for i in data["intents"] if i.get("token") == token), None)
        if raw is None:
            return None
        intent = GuardIntent.from_dict(raw)
        data["intents"] = [i for i in data["intents"] if i is not raw]
        details = {
            "name": intent.name,
            "created_at": created_at or intent.sent_at,
            "price_per_hour": price if price is not None else intent.price_per_hour,
        }
        return self._merge(data, instance_id, intent.rules, False, details)

    def miss_intent(self, token: str) -> int:
        """One more listing did not show the instance of intent ``token``: how many so far."""
        out: list[int] = []

        def change(data: dict[str, Any]) -> None:
            for item in data["intents"]:
                if item.get("token") == token:
                    item["misses"] = int(item.get("misses") or 0) + 1
                    out.append(item["misses"])

        self.file.update(change)
        return out[0] if out else 0

    def drop_intent(self, token: str) -> GuardIntent | None:
        """Forget an intent whose create surely made nothing; returns it (None if gone)."""
        out: list[GuardIntent] = []

        def change(data: dict[str, Any]) -> None:
            for item in data["intents"]:
                if item.get("token") == token:
                    out.append(GuardIntent.from_dict(item))
            data["intents"] = [i for i in data["intents"] if i.get("token") != token]

        self.file.update(change)
        return out[0] if out else None

    # -- what the guard has learned of the API ------------------------------------------------
    def learned(self, key: str) -> dict[str, Any] | None:
        """What was learned for this API URL under ``key`` (e.g. the metrics unit), or None."""
        value = self.file.read()["units"].get(f"{self.api_url} {key}")
        return dict(value) if isinstance(value, dict) else None

    def learn(self, key: str, value: Mapping[str, Any]) -> None:
        def change(data: dict[str, Any]) -> None:
            data["units"][f"{self.api_url} {key}"] = dict(value)

        self.file.update(change)

    # -- claims --------------------------------------------------------------------------------
    def claim(
        self,
        instance_id: str,
        action: str,
        holder: str,
        ttl: float,
        *,
        now: float | None = None,
        pid: int | None = None,
    ) -> bool:
        """Take the claim on ``action`` for an instance: True for exactly one claimant until
        the claim expires after ``ttl`` seconds, is finished with :meth:`complete`, or its
        holder process (``pid`` on this host; default this process) is found dead."""
        instance_id = _require_id(instance_id)
        if not isinstance(action, str) or not action:
            raise ValidationError("action must be a non-empty string", field="action")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
            raise ValidationError("ttl must be a positive number of seconds", field="ttl")
        moment = time.time() if now is None else now
        won: list[bool] = []

        def change(data: dict[str, Any]) -> None:
            current = self._claim_of(data, instance_id, action)
            if current is not None and (
                current.get("done")
                or (float(current.get("expires") or 0) > moment and holder_alive(current))
            ):
                won.append(False)
                return
            data["claims"] = [c for c in data["claims"] if c is not current]
            data["claims"].append(
                {
                    "instance_id": instance_id,
                    "api_url": self.api_url,
                    "action": action,
                    "holder": holder,
                    "host": socket.gethostname(),
                    "pid": os.getpid() if pid is None else pid,
                    "taken": moment,
                    "expires": moment + float(ttl),
                    "done": False,
                }
            )
            won.append(True)

        self.file.update(change, now=moment)
        return won[0]

    def complete(self, instance_id: str, action: str, holder: str) -> None:
        """Mark a claimed action done: nobody claims it again (while the instance is guarded)."""

        def change(data: dict[str, Any]) -> None:
            current = self._claim_of(data, instance_id, action)
            if current is not None and current.get("holder") == holder:
                current["done"] = True
                current["finished"] = time.time()

        self.file.update(change)

    def release(self, instance_id: str, action: str, holder: str) -> None:
        """Give a claim back at once (not needed after all, or failed: retried next tick)."""

        def change(data: dict[str, Any]) -> None:
            current = self._claim_of(data, instance_id, action)
            if current is not None and current.get("holder") == holder:
                data["claims"] = [c for c in data["claims"] if c is not current]

        self.file.update(change)

    def claims(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self.file.read()["claims"] if self._in_scope(c.get("api_url"))]

    # -- action log ----------------------------------------------------------------------------
    def log_action(
        self, instance_id: str, action: str, reason: str, actor: str, result: str, **extra: Any
    ) -> dict[str, Any]:
        """Append one action (time, reason, actor, result) to the action log."""
        entry = self.file.actions_log.entry(instance_id, action, reason, actor, result, **extra)
        with self.file.thread_lock, self.file.file_lock():
            self.file.actions_log.append([entry])
        return entry

    def actions(self, instance_id: str | None = None, limit: int | None = None) -> list[dict]:
        """Logged actions of this API URL, oldest first (unreadable lines are skipped)."""
        return self.file.actions_log.read(instance_id, limit)

    # -- internals -----------------------------------------------------------------------------
    def _in_scope(self, url: Any) -> bool:
        return self.api_url is None or scope_url(url) == self.api_url

    def _is(self, item: dict[str, Any], instance_id: str, key: str = "id") -> bool:
        return item.get(key) == instance_id and self._in_scope(item.get("api_url"))

    def _find(self, data: dict[str, Any], instance_id: str) -> dict[str, Any] | None:
        return next((i for i in data["instances"] if self._is(i, instance_id)), None)

    def _put(self, data: dict[str, Any], record: GuardRecord) -> None:
        data["instances"] = [i for i in data["instances"] if not self._is(i, record.id)]
        data["instances"].append(record.to_dict())

    def _claim_of(self, data: dict[str, Any], instance_id: str, action: str) -> dict | None:
        return next(
            (
                c
                for c in data["claims"]
                if self._is(c, instance_id, key="instance_id") and c.get("action") == action
            ),
            None,
        )
