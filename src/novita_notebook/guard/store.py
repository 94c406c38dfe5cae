"""GuardStore: guard rules, action claims and the action log in the ledger directory, shared
by kernels and the guard process through a file lock and atomic replace writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import inf
from pathlib import Path
from typing import Any

from ..config import API_PREFIX
from ..errors import ValidationError
from ..files import atomic_write_text, move_aside
from ..ledger import ledger_dir
from .rules import GuardRules
from .spend import billing_update

__all__ = ["GuardStore", "GuardRecord", "STORE_FILE", "LOG_FILE", "scope_url"]

log = logging.getLogger(__name__)

STORE_FILE = "guard.json"
LOG_FILE = "guard-actions.jsonl"
STORE_VERSION = 1
LOCK_TIMEOUT = 30.0
#: The action log is trimmed to its newer half when it grows past this size.
LOG_MAX_BYTES = 2_000_000
#: Finished claims of instances that are no longer guarded are kept this long (seconds).
DONE_CLAIM_KEEP = 7 * 86400


def _url(url: str | None) -> str | None:
    """The scope of an API URL: without a trailing slash, with the v1 prefix (the same
    scope whether a caller passes ``https://api.novita.ai`` or the client's ``api_url``)."""
    if not isinstance(url, str) or not url:
        return None
    url = url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


scope_url = _url


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if isinstance(moment, datetime) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _budget_kept(previous: GuardRecord | None, rules: GuardRules, replace: bool) -> GuardRecord:
    """A record for ``rules`` that keeps the total budget's count of ``previous``: setting
    other rules (or a new cap) goes on counting; a first total budget, or ``replace``,
    starts the count at the rules' ``set_at``. Only the bookkeeping fields matter here."""
    fresh = GuardRecord(id="", rules=rules)
    if rules.budget_total is None:
        return fresh
    if previous is None or replace or previous.rules.budget_total is None:
        return dataclasses.replace(fresh, budget_since=rules.set_at)
    return dataclasses.replace(
        fresh,
        budget_since=previous.budget_since or previous.rules.set_at,
        spent=previous.spent,
        billed_since=previous.billed_since,
        billed_seen=previous.billed_seen,
    )


def _require_id(value: Any, field: str = "instance_id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    return value.strip()


@dataclass(frozen=True)
class GuardRecord:
    """One guarded instance as stored: its rules and what the guard knows about it. The total
    budget's bookkeeping (guard/spend.py): ``budget_since`` when it began counting, ``spent``
    USD of billed stretches that are over, ``billed_since``/``billed_seen`` the stretch billing
    now (its start, the last look that saw it)."""

    id: str
    rules: GuardRules
    api_url: str | None = None
    name: str = ""
    created_at: datetime | None = None
    price_per_hour: float | None = None
    warned: dict[str, datetime] = field(default_factory=dict)
    budget_since: datetime | None = None
    spent: float = 0.0
    billed_since: datetime | None = None
    billed_seen: datetime | None = None

    def __repr__(self) -> str:
        """``<GuardRecord demo-1 (id): stop at 2026-12-01 18:00:00Z; budget 5 USD total>``."""
        counted = f"; {self.spent:.2f} USD counted" if self.rules.budget_total else ""
        return f"<GuardRecord {self.name or '?'} ({self.id}): {self.rules.describe()}{counted}>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "api_url": self.api_url,
            "name": self.name,
            "rules": self.rules.to_dict(),
            "created_at": _iso(self.created_at),
            "price_per_hour": self.price_per_hour,
            "warned": {key: _iso(at) for key, at in self.warned.items()},
            "budget_since": _iso(self.budget_since),
            "spent": self.spent,
            "billed_since": _iso(self.billed_since),
            "billed_seen": _iso(self.billed_seen),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardRecord:
        price, spent = data.get("price_per_hour"), data.get("spent")
        warned = data.get("warned") if isinstance(data.get("warned"), dict) else {}
        if isinstance(spent, bool) or not isinstance(spent, int | float) or not 0 <= spent < inf:
            spent = 0.0  # absent (a store from before the count) or nonsense: count afresh
        return cls(
            id=str(data["id"]),
            rules=GuardRules.from_dict(data["rules"]),
            api_url=_url(data.get("api_url")),
            name=str(data.get("name") or ""),
            created_at=_time(data.get("created_at")),
            price_per_hour=float(price) if isinstance(price, int | float) else None,
            warned={k: t for k, v in warned.items() if (t := _time(v)) is not None},
            budget_since=_time(data.get("budget_since")),
            spent=float(spent),
            billed_since=_time(data.get("billed_since")),
            billed_seen=_time(data.get("billed_seen")),
        )


class GuardStore:
    """Rules, claims and the action log of one ledger directory, scoped to one API URL.

    Every change holds ``guard.json.lock`` (threads and processes) and replaces the file
    atomically; a file that cannot be read is moved aside (``guard.json.corrupt-<time>``).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, api_url: str | None = None):
        self._directory = Path(directory).expanduser() if directory is not None else None
        self.api_url = _url(api_url)
        self._thread_lock = threading.RLock()

    @property
    def directory(self) -> Path:
        return self._directory or ledger_dir()

    @property
    def path(self) -> Path:
        return self.directory / STORE_FILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

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

        def change(data: dict[str, Any]) -> None:
            old = self._find(data, instance_id)
            previous = GuardRecord.from_dict(old) if old else None
            merged = rules if (replace or previous is None) else previous.rules.merged(rules)
            record = _budget_kept(previous, merged, replace)
            record = dataclasses.replace(
                record,
                id=instance_id,
                rules=merged,
                api_url=self.api_url,
                name=name if name is not None else (previous.name if previous else ""),
                created_at=created_at or (previous.created_at if previous else None),
                price_per_hour=price_per_hour
                if price_per_hour is not None
                else (previous.price_per_hour if previous else None),
                warned=previous.warned if previous else {},
            )
            self._put(data, record)
            out.append(record)

        self._update(change)
        return out[0]

    def note_billing(self, states: Mapping[str, Any], now: datetime) -> list[GuardRecord]:
        """Bring the total budget's bookkeeping (guard/spend.py) of every instance with a
        total budget in ``states`` (id -> ``InstanceState``) up to ``now``, computed from the
        stored records under the lock, so that two guards looking at once agree; writes only
        on a change. Returns every record of this store's API URL, as stored afterwards."""
        out: list[GuardRecord] = []
        with self._thread_lock, self._file_lock():
            data = self._read()
            changed = False
            for index, item in enumerate(data["instances"]):
                if not self._in_scope(item.get("api_url")):
                    continue
                record = GuardRecord.from_dict(item)
                state = states.get(record.id)
                counted = state is not None and record.rules.budget_total is not None
                fields = billing_update(record, state, now) if counted else {}
                if fields:
                    record = dataclasses.replace(record, **fields)
                    data["instances"][index] = record.to_dict()
                    changed = True
                out.append(record)
            if changed:
                self._write(data, time.time())
        return out

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

        self._update(change)
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
        data = self._locked_read()
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

        self._update(change)
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
            record = GuardRecord.from_dict({**old, "id": new_id, "warned": {}})
            self._put(data, record)
            out.append(record)

        self._update(change)
        return out[0]

    def mark_warned(self, instance_id: str, key: str, at: datetime | None = None) -> None:
        """Remember that the warning ``key`` was given (policy reads it as ``warned``)."""
        moment = at or datetime.now(UTC)

        def change(data: dict[str, Any]) -> None:
            old = self._find(data, instance_id)
            if old is not None:
                old.setdefault("warned", {})
                old["warned"].setdefault(key, _iso(moment))

        self._update(change)

    # -- claims --------------------------------------------------------------------------------
    def claim(
        self, instance_id: str, action: str, holder: str, ttl: float, *, now: float | None = None
    ) -> bool:
        """Take the claim on ``action`` for an instance: True for exactly one claimant until
        the claim expires after ``ttl`` seconds or is finished with :meth:`complete`."""
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
                current.get("done") or float(current.get("expires") or 0) > moment
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
                    "taken": moment,
                    "expires": moment + float(ttl),
                    "done": False,
                }
            )
            won.append(True)

        self._update(change, now=moment)
        return won[0]

    def complete(self, instance_id: str, action: str, holder: str) -> None:
        """Mark a claimed action done: nobody claims it again (while the instance is guarded)."""

        def change(data: dict[str, Any]) -> None:
            current = self._claim_of(data, instance_id, action)
            if current is not None and current.get("holder") == holder:
                current["done"] = True
                current["finished"] = time.time()

        self._update(change)

    def release(self, instance_id: str, action: str, holder: str) -> None:
        """Give a claim back at once (the action was not needed after all)."""

        def change(data: dict[str, Any]) -> None:
            current = self._claim_of(data, instance_id, action)
            if current is not None and current.get("holder") == holder:
                data["claims"] = [c for c in data["claims"] if c is not current]

        self._update(change)

    def claims(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._locked_read()["claims"] if self._in_scope(c.get("api_url"))]

    # -- action log ----------------------------------------------------------------------------
    def log_action(
        self, instance_id: str, action: str, reason: str, actor: str, result: str, **extra: Any
    ) -> dict[str, Any]:
        """Append one action (time, reason, actor, result) to the action log."""
        entry = {
            "time": datetime.now(UTC).isoformat(),
            "instance_id": instance_id,
            "api_url": self.api_url,
            "action": action,
            "reason": reason,
            "actor": actor,
            "result": result,
            **{k: v for k, v in extra.items() if isinstance(v, str | int | float | bool | None)},
        }
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self._thread_lock, self._file_lock():
            with open(self.log_path, "a", encoding="utf-8") as file:
                file.write(line)
            if self.log_path.stat().st_size > LOG_MAX_BYTES:
                self._trim_log()
        return entry

    def actions(self, instance_id: str | None = None, limit: int | None = None) -> list[dict]:
        """Logged actions of this API URL, oldest first (unreadable lines are skipped)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict) or not self._in_scope(entry.get("api_url")):
                continue
            if instance_id is None or entry.get("instance_id") == instance_id:
                out.append(entry)
        return out[-limit:] if limit else out

    def _trim_log(self) -> None:
        lines = self.log_path.read_text(encoding="utf-8").splitlines(keepends=True)
        self._atomic_write(self.log_path, "".join(lines[len(lines) // 2 :]))

    # -- internals -----------------------------------------------------------------------------
    def _in_scope(self, url: Any) -> bool:
        return self.api_url is None or _url(url) == self.api_url

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

    def _file_lock(self) -> Any:
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)

    def _locked_read(self) -> dict[str, Any]:
        with self._thread_lock, self._file_lock():
            return self._read()

    def _update(self, change: Callable[[dict[str, Any]], None], now: float | None = None) -> None:
        with self._thread_lock, self._file_lock():
            data = self._read()
            change(data)
            self._write(data, time.time() if now is None else now)

    def _write(self, data: dict[str, Any], now: float) -> None:
        """Prune and replace the file (the caller holds the lock)."""
        self._prune(data, now)
        payload = {"version": STORE_VERSION, **data}
        self._atomic_write(self.path, json.dumps(payload, indent=1, sort_keys=True))

    @staticmethod
    def _prune(data: dict[str, Any], now: float) -> None:
        """Drop expired claims and old finished claims of instances no longer guarded."""
        guarded = {(i.get("id"), _url(i.get("api_url"))) for i in data["instances"]}
        kept = []
        for claim in data["claims"]:
            key = (claim.get("instance_id"), _url(claim.get("api_url")))
            if claim.get("done"):
                if key in guarded or now - float(claim.get("finished") or now) < DONE_CLAIM_KEEP:
                    kept.append(claim)
            elif float(claim.get("expires") or 0) > now:
                kept.append(claim)
        data["claims"] = kept

    def _read(self) -> dict[str, Any]:
        """The file's content (caller holds the lock); an unreadable file is moved aside."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"instances": [], "claims": []}
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a guard store: expected an object")
            instances, claims = data.get("instances", []), data.get("claims", [])
            if not isinstance(instances, list) or not isinstance(claims, list):
                raise ValueError("not a guard store: 'instances' and 'claims' must be lists")
            for item in instances:
                GuardRecord.from_dict(item)  # every record must parse
            if not all(isinstance(c, dict) for c in claims):
                raise ValueError("not a guard store: claims must be objects")
        except (ValueError, KeyError, TypeError, ValidationError) as error:
            self._move_aside(error)
            return {"instances": [], "claims": []}
        return {"instances": instances, "claims": claims}

    def _move_aside(self, error: BaseException) -> None:
        path = self.path
        aside = move_aside(path)
        message = (
            f"novita-notebook: the guard store {path} was unreadable ({error}); "
            f"moved it to {aside.name} and started a new one"
        )
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=5)

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        atomic_write_text(path, text)
