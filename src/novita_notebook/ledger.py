"""The local ledger of instances created through this package, surviving kernel restarts:
a small JSON file (no secrets) holding the instances and the pending creates (pending.py).
Its views, mine() and cleanup(), are LedgerService in ledger_views.py.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import socket
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import money
from .errors import ValidationError
from .files import (
    atomic_write_text,
    has_bad_bytes,
    move_aside,
    read_text_marked,
    recover_objects,
)
from .models import Instance, parse_time

__all__ = ["Ledger", "ledger_dir", "LEDGER_FILE"]

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.json"
LEDGER_VERSION = 1
HOME_ENV = "NOVITA_NOTEBOOK_HOME"
LOCK_TIMEOUT = 30.0  # seconds; a kernel holding the lock longer than this is stuck
GONE = "gone"  # status shown for ledger instances the API no longer knows

#: The only keys a ledger entry holds: identifiers and prices, never credentials.
ENTRY_FIELDS = (
    "id",
    "name",
    "api_url",
    "region",
    "product",
    "gpu_num",
    "price_per_hour",
    "created_at",
    "created_by",
)


def ledger_dir() -> Path:
    """``$NOVITA_NOTEBOOK_HOME`` if set, else the user's config dir for novita-notebook."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("novita-notebook"))


def _created_by() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _normalise_url(url: str | None) -> str | None:
    return url.rstrip("/") if isinstance(url, str) and url else None


def _entry_from(instance: Any, api_url: str | None) -> dict[str, Any]:
    """A ledger entry from an Instance, a raw API dict or an entry-like mapping."""
    raw_keys = {"status", "productId", "productName", "clusterId", "clusterName"}
    if isinstance(instance, Mapping) and raw_keys & set(instance):
        instance = Instance.from_api(dict(instance))
    if isinstance(instance, Instance):
        fields = {
            "id": instance.id,
            "name": instance.name,
            "region": instance.region,
            "product": instance.product_name,
            "gpu_num": instance.gpu_num,
            "price_per_hour": instance.price_per_hour,
            "created_at": instance.created_at,
        }
    elif isinstance(instance, Mapping):
        fields = {key: instance.get(key) for key in ENTRY_FIELDS if key != "created_by"}
        fields["created_at"] = parse_time(fields.get("created_at"))
    else:
        raise ValidationError(
            "record() takes an Instance, a raw instance dict or a mapping with an 'id'",
            field="instance",
        )
    if not isinstance(fields.get("id"), str) or not fields["id"]:
        raise ValidationError("the instance to record has no id", field="instance.id")
    price = fields.get("price_per_hour")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int | float)):
        raise ValidationError("price_per_hour must be a number of USD", field="price_per_hour")
    created = fields.get("created_at")
    return {
        "id": fields["id"],
        "name": str(fields.get("name") or ""),
        "api_url": _normalise_url(fields.get("api_url") or api_url),
        "region": fields.get("region"),
        "product": fields.get("product"),
        "gpu_num": fields.get("gpu_num"),
        "price_per_hour": money.round_usd(float(price)) if price is not None else None,
        "created_at": _iso(created if isinstance(created, datetime) else datetime.now(UTC)),
        "created_by": _created_by(),
    }


def _stated_created_at(instance: Any) -> bool:
    """Does what is recorded carry its own creation time (not just "now")?"""
    if isinstance(instance, Instance):
        return instance.created_at is not None
    if isinstance(instance, Mapping):
        return parse_time(instance.get("createdAt") or instance.get("created_at")) is not None
    return False


#: Parsed ledger files by path: (stamp, document). Never handed out uncopied.
_SNAPSHOTS: dict[str, tuple[tuple[int, int, int], _Document]] = {}


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    # An atomic replace makes a new inode, so a same-size write in the same tick still counts.
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class _Document:
    """A ledger file's three parts: the instances, the pending creates (pending.py) and the
    copies of guard rules (so the guard store can be rebuilt). ``lost`` says what could not
    be read (empty for a whole file); ``whole`` is False when the file needs repairing."""

    def __init__(
        self,
        entries: list[dict[str, Any]],
        pending: list[dict[str, Any]],
        copies: list[dict[str, Any]],
        lost: list[str] | None = None,
        whole: bool = True,
    ) -> None:
        self.entries = entries
        self.pending = pending
        self.copies = copies
        self.lost = lost or []
        self.whole = whole


def _is_entry(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str) and not has_bad_bytes(item)


def _is_pending(item: Any) -> bool:
    return isinstance(item, dict) and bool(item.get("name")) and not has_bad_bytes(item)


def _is_copy(item: Any) -> bool:
    return _is_entry(item) and isinstance(item.get("rules"), dict)


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item.get(key) for key in ENTRY_FIELDS}


def _parse(data: bytes) -> _Document:
    """The document in a ledger file's bytes. A whole file gives ``whole=True``; otherwise
    every entry, pending create and rules copy that can still be read is kept (record by
    record) and ``lost`` names what could not be."""
    text = read_text_marked(data)
    try:
        doc = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("instances"), list):
        parts = {
            key: doc.get(key) if isinstance(doc.get(key), list) else []
            for key in ("instances", "pending", "guard_rules")
        }
        entries = [_entry(e) for e in parts["instances"] if _is_entry(e)]
        pending = [p for p in parts["pending"] if _is_pending(p)]
        copies = [c for c in parts["guard_rules"] if _is_copy(c)]
        lost = [_lost_name(json.dumps(e)) for e in parts["instances"] if not _is_entry(e)]
        lost += [_lost_name(json.dumps(c)) for c in parts["guard_rules"] if not _is_copy(c)]
        return _Document(entries, pending, copies, lost, whole=not lost)
    entries, pending, copies, lost = [], [], [], []
    for start, end, item in recover_objects(text):
        if item is None or has_bad_bytes(item):
            if "{" in text[start:end] or item is not None:
                lost.append(_lost_name(text[start:end]))
        elif isinstance(item.get("rules"), dict) and _is_copy(item):
            copies.append(item)
        elif "token" in item and _is_pending(item):
            pending.append(item)
        elif _is_entry(item):
            entries.append(_entry(item))
    if not text.strip() or not (entries or pending or copies):
        lost = lost or ["the whole file"]
    return _Document(entries, pending, copies, lost, whole=False)


_ID_IN_TEXT = re.compile(r'"id"\s*:\s*"([^"\\]{1,200})"')


def _lost_name(fragment: str) -> str:
    """What a fragment that could not be read was: the instance it names, if it names one."""
    match = _ID_IN_TEXT.search(fragment)
    return f"instance {match.group(1)}" if match else "an unreadable part"


class Ledger:
    """Instances created through this package, in ``<config dir>/ledger.json``.

    Every read-modify-write holds a cross-process file lock and replaces the file atomically,
    so several kernels can record at once. A file that is not a valid ledger is moved aside
    (``ledger.json.corrupt-<time>``) with a warning and a fresh ledger starts.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, api_url: str | None = None):
        if path is not None and not isinstance(path, str | os.PathLike):
            raise ValidationError("path must be a file path", field="path")
        self._explicit_path = Path(path).expanduser() if path is not None else None
        self.api_url = _normalise_url(api_url)
        # The file lock is per process; the thread lock keeps this object's threads in line.
        self._thread_lock = threading.RLock()
        self._created_memo: tuple[Any, str | None, dict[str, datetime]] | None = None

    @property
    def path(self) -> Path:
        # Resolved on use so that NOVITA_NOTEBOOK_HOME set after construction still counts.
        return self._explicit_path or ledger_dir() / LEDGER_FILE

    def __repr__(self) -> str:
        scope = f" for {self.api_url}" if self.api_url else ""
        return f"<Ledger {self.path}{scope}>"

    # -- public --------------------------------------------------------------------------------
    def record(self, instance: Any) -> dict[str, Any]:
        """Add (or update) an instance; returns the stored entry."""
        entry = _entry_from(instance, self.api_url)
        stated = _stated_created_at(instance)

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [e for e in entries if not self._same(e, entry["id"], entry["api_url"])]
            previous = [e for e in entries if self._same(e, entry["id"], entry["api_url"])]
            if previous:  # keep who created it and when; refresh what may have been unknown
                if not stated:  # the API's creation time beats the one noted at the POST
                    entry["created_at"] = previous[0].get("created_at") or entry["created_at"]
                entry["created_by"] = previous[0].get("created_by") or entry["created_by"]
                for key in ("region", "product", "gpu_num", "price_per_hour", "name"):
                    if entry.get(key) in (None, ""):
                        entry[key] = previous[0].get(key)
            return [*kept, entry]

        self._update(change)
        return dict(entry)

    def entry_for(self, instance: Any) -> dict[str, Any]:
        """The entry ``record`` would store for ``instance`` (nothing is written)."""
        return _entry_from(instance, self.api_url)

    def forget(self, instance_id: str, api_url: str | None = None) -> bool:
        """Remove an instance (of this ledger's api_url); True if it was there."""
        if not isinstance(instance_id, str) or not instance_id:
            raise ValidationError("instance_id must be a non-empty string", field="instance_id")
        url = _normalise_url(api_url) or self.api_url
        removed: list[bool] = []

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [e for e in entries if not self._same(e, instance_id, url)]
            removed.append(len(kept) != len(entries))
            return kept

        self._update(change)
        return removed[0]

    def forget_many(self, instance_ids: Iterable[str], api_url: str | None = None) -> int:
        """Remove several instances in one locked write; returns how many were removed."""
        ids = set(instance_ids)
        url = _normalise_url(api_url) or self.api_url
        counts: list[int] = []

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [e for e in entries if not (e.get("id") in ids and self._in_scope(e, url))]
            counts.append(len(entries) - len(kept))
            return kept

        if not ids:
            return 0
        self._update(change)
        return counts[0]

    def entries(
        self, api_url: str | None = None, *, all_urls: bool = False
    ) -> list[dict[str, Any]]:
        """Entries for ``api_url`` (default: this ledger's), oldest first; ``all_urls`` for all."""
        url = None if all_urls else (_normalise_url(api_url) or self.api_url)
        entries = self._snapshot().entries
        chosen = [dict(e) for e in entries if self._in_scope(e, url)]
        return sorted(chosen, key=lambda e: e.get("created_at") or "")

    def created_times(self) -> dict[str, datetime]:
        """When each instance of this api_url was created, by id, as on record. Worked out
        once per file version (every listing asks; copying and sorting the entries each time
        was a quarter of ``instances()`` on a long ledger). Do not modify the answer."""
        entries = self._snapshot().entries
        memo = self._created_memo
        if memo is not None and memo[0] is entries and memo[1] == self.api_url:
            return memo[2]
        times: dict[str, datetime] = {}
        for entry in entries:
            if self._in_scope(entry, self.api_url):
                created = parse_time(entry.get("created_at"))
                if created is not None:
                    times[str(entry.get("id"))] = created
        self._created_memo = (entries, self.api_url, times)
        return times

    def get(self, instance_id: str) -> dict[str, Any] | None:
        """The entry of one instance (this api_url), or None."""
        for entry in self.entries():
            if entry.get("id") == instance_id:
                return entry
        return None

    def clear(self) -> None:
        """Forget every instance of this ledger's api_url (all of them when it has none)."""
        self._update(lambda entries: [e for e in entries if not self._in_scope(e, self.api_url)])

    # -- internals -----------------------------------------------------------------------------
    @staticmethod
    def _in_scope(entry: Mapping[str, Any], url: str | None) -> bool:
        return url is None or _normalise_url(entry.get("api_url")) == url

    def _same(self, entry: Mapping[str, Any], instance_id: str, url: str | None) -> bool:
        return entry.get("id") == instance_id and self._in_scope(entry, url)

    def _file_lock(self) -> Any:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)

    def _update(self, change: Any) -> None:
        self.update_document(lambda entries, pending: (change(entries), pending))

    def update_document(self, change: Callable[[list, list], tuple[list, list]]) -> None:
        """Read-modify-write the instances AND the pending creates (name claims and create
        intents, see ``pending.py``) under the lock: ``change(entries, pending)`` returns both."""
        with self._thread_lock, self._file_lock():
            doc = self._read()
            doc.entries, doc.pending = change(doc.entries, doc.pending)
            self._write(doc)

    def update_rules_copies(self, change: Callable[[list], list]) -> None:
        """Read-modify-write the copies of guard rules (all api_urls) under the lock. The guard
        store keeps them in step with its own records, to be rebuilt from when it is damaged."""
        with self._thread_lock, self._file_lock():
            doc = self._read()
            doc.copies = change(doc.copies)
            self._write(doc)

    def pending(self) -> list[dict[str, Any]]:
        """The pending creates on disk (all api_urls)."""
        return [dict(p) for p in self._snapshot().pending]

    def rules_copies(self) -> list[dict[str, Any]]:
        """The copies of guard rules on disk (all api_urls; see ``update_rules_copies``)."""
        return [dict(c) for c in self._snapshot().copies]

    def _snapshot(self) -> _Document:
        """The document as on disk, read without the lock: writers replace the file
        atomically, so a read sees a whole file. Parsed once per file version, keyed by
        (inode, mtime_ns, size), so reading an unchanged ledger costs one stat."""
        path = self.path
        key = str(path)
        try:
            stamp = _stamp(os.stat(path))
        except FileNotFoundError:
            return _Document([], [], [])
        cached = _SNAPSHOTS.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            with open(path, "rb") as handle:
                stamp = _stamp(os.fstat(handle.fileno()))  # the version actually read
                data = handle.read()
        except FileNotFoundError:
            return _Document([], [], [])
        parsed = _parse(data)
        if not parsed.whole:  # damaged: repair it under the lock, as a writer would
            with self._thread_lock, self._file_lock():
                return self._read()
        _SNAPSHOTS[key] = (stamp, parsed)
        return parsed

    def _read(self) -> _Document:
        """The document on disk (caller holds the lock). A damaged file (not JSON, bytes that
        are not UTF-8, entries without an id) is moved aside, what can still be read of it is
        written back, and a warning names what was lost."""
        path = self.path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return _Document([], [], [])
        doc = _parse(data)
        if doc.whole:
            return doc
        aside = move_aside(path)
        kept = len(doc.entries) + len(doc.pending) + len(doc.copies)
        what = "; ".join(dict.fromkeys(doc.lost))
        message = (
            f"novita-notebook: the ledger {path} was unreadable in part ({what}); "
            f"moved it to {aside.name} and kept the {kept} records that could be read"
        )
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)
        doc.whole = True
        self._write(doc)
        return doc

    def _write(self, doc: _Document) -> None:
        """Atomic replace: readers see the old file or the new one, never half of one."""
        data: dict[str, Any] = {"version": LEDGER_VERSION, "instances": doc.entries}
        if doc.pending:
            data["pending"] = doc.pending
        if doc.copies:
            data["guard_rules"] = doc.copies
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))
