"""The local ledger of instances created through this package, surviving kernel restarts:
a small JSON file (no secrets) holding the instances and the pending creates (pending.py).
Its views, mine() and cleanup(), are LedgerService in ledger_views.py.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import money
from .errors import ValidationError
from .files import atomic_write_text, move_aside
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


#: Parsed ledger files by path: (stamp, entries, pending). Never handed out uncopied.
_SNAPSHOTS: dict[str, tuple[tuple[int, int, int], list[dict[str, Any]], list[dict[str, Any]]]] = {}


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    # An atomic replace makes a new inode, so a same-size write in the same tick still counts.
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _parse(text: str | bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """(entries, pending) of a ledger file's text, or None when it is not a ledger."""
    try:
        data = json.loads(text)
        entries = data["instances"] if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries
    ):
        return None
    pending = data.get("pending")
    kept = (
        [p for p in pending if isinstance(p, dict) and p.get("name")]
        if isinstance(pending, list)
        else []
    )
    return [{key: e.get(key) for key in ENTRY_FIELDS} for e in entries], kept


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
        self._pending: list[dict[str, Any]] = []
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
        entries, _ = self._snapshot()
        chosen = [dict(e) for e in entries if self._in_scope(e, url)]
        return sorted(chosen, key=lambda e: e.get("created_at") or "")

    def created_times(self) -> dict[str, datetime]:
        """When each instance of this api_url was created, by id, as on record. Worked out
        once per file version (every listing asks; copying and sorting the entries each time
        was a quarter of ``instances()`` on a long ledger). Do not modify the answer."""
        entries, _ = self._snapshot()
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
            entries = self._read()
            pending = self._pending
            entries, pending = change(entries, pending)
            self._write(entries, pending)

    def pending(self) -> list[dict[str, Any]]:
        """The pending creates on disk (all api_urls)."""
        _, pending = self._snapshot()
        return [dict(p) for p in pending]

    def _snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Entries and pending creates as on disk, read without the lock: writers replace the
        file atomically, so a read sees a whole file. Parsed once per file version, keyed by
        (inode, mtime_ns, size), so reading an unchanged ledger costs one stat."""
        path = self.path
        key = str(path)
        try:
            stamp = _stamp(os.stat(path))
        except FileNotFoundError:
            return [], []
        cached = _SNAPSHOTS.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        try:
            with open(path, "rb") as handle:
                stamp = _stamp(os.fstat(handle.fileno()))  # the version actually read
                data = handle.read()
        except FileNotFoundError:
            return [], []
        parsed = _parse(data)
        if parsed is None:  # broken: move it aside under the lock, as a writer would
            with self._thread_lock, self._file_lock():
                entries = self._read()
                return entries, list(self._pending)
        entries, pending = parsed
        _SNAPSHOTS[key] = (stamp, entries, pending)
        return entries, pending

    def _read(self) -> list[dict[str, Any]]:
        """The entries on disk (caller holds the lock); a broken file is moved aside. The
        pending creates read along land in ``self._pending``."""
        self._pending: list[dict[str, Any]] = []
        path = self.path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            data = json.loads(text)
            entries = data["instances"] if isinstance(data, dict) else None
            if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries
            ):
                raise ValueError("not a ledger: expected {'instances': [{'id': ...}, ...]}")
        except (ValueError, KeyError, TypeError) as error:
            aside = move_aside(path)
            message = (
                f"novita-notebook: the ledger {path} was unreadable ({error}); "
                f"moved it to {aside.name} and started a new one"
            )
            log.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            return []
        pending = data.get("pending")
        if isinstance(pending, list):
            self._pending = [p for p in pending if isinstance(p, dict) and p.get("name")]
        return [{key: e.get(key) for key in ENTRY_FIELDS} for e in entries]

    def _write(
        self, entries: list[dict[str, Any]], pending: list[dict[str, Any]] | None = None
    ) -> None:
        """Atomic replace: readers see the old file or the new one, never half of one."""
        data: dict[str, Any] = {"version": LEDGER_VERSION, "instances": entries}
        if pending:
            data["pending"] = pending
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))
