"""Runs remembered in the ledger directory (``runs.json``, per API URL): id, instance, code
hash, times, state, exit code and the bytes of output seen, never a password or the code.
A new kernel finds its runs here; the guard asks ``busy_instances`` which instances have one.
Imports no SSH library, so the guard can ask cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .jsonfile import JsonFile, scope_of

__all__ = [
    "RUNS_FILE",
    "ACTIVE_STATES",
    "RunRecord",
    "RunStore",
    "busy_instances",
]

RUNS_FILE = "runs.json"
#: A run in one of these has not been seen to end.
ACTIVE_STATES = frozenset({"starting", "running"})
FINAL_STATES = frozenset({"succeeded", "failed", "interrupted", "timed_out", "lost", "not_started"})
#: How long an active run keeps its instance busy after a client last saw it running (when
#: the run has no timeout of its own): a kernel that died cannot say the run ended.
BUSY_AFTER_LAST_LOOK = timedelta(hours=24)
KEEP_RUNS = 1000  # per API URL; the oldest finished runs are forgotten beyond this


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunRecord:
    """One run as remembered. ``remote_dir`` is relative to the instance's home."""

    id: str
    instance_id: str
    instance_name: str
    kind: str  # "python" or "shell"
    code_hash: str
    started: datetime
    state: str = "starting"
    exit_code: int | None = None
    finished: datetime | None = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    price_per_hour: float | None = None
    timeout: float | None = None
    python: str | None = None
    get: tuple[str, ...] = field(default_factory=tuple)
    remote_dir: str = ""
    seen: datetime | None = None  # the last time a client saw it running
    written: tuple[str, ...] = ()  # folders under the home the code wrote files in

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def busy_until(self) -> datetime:
        """Until when the guard should count the instance busy, unless the run is seen to end."""
        if self.timeout is not None:
            return self.started + timedelta(seconds=self.timeout + 60)
        return (self.seen or self.started) + BUSY_AFTER_LAST_LOOK

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started", "finished", "seen"):
            data[key] = _iso(data[key])
        data["get"] = list(self.get)
        data["written"] = list(self.written)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord | None:
        started = _time(data.get("started"))
        if started is None or not data.get("id") or not data.get("instance_id"):
            return None
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values.update(
            started=started,
            finished=_time(data.get("finished")),
            seen=_time(data.get("seen")),
            get=tuple(data.get("get") or ()),
            written=tuple(str(place) for place in data.get("written") or ()),
        )
        try:
            return cls(**values)
        except TypeError:
            return None


class RunStore:
    """The runs of one API URL in ``runs.json`` (file-locked, atomically replaced)."""

    def __init__(self, api_url: str, directory: Path | None = None) -> None:
        self.api_url = api_url
        self.scope = scope_of(api_url)
        self._file = JsonFile(RUNS_FILE, directory)

    @property
    def path(self) -> Path:
        return self._file.path

    def save(self, record: RunRecord) -> None:
        def change(entries: dict[str, Any]) -> None:
            entries[record.id] = record.to_dict()
            if len(entries) > KEEP_RUNS:
                finished = sorted(
                    (k for k, v in entries.items() if v.get("state") not in ACTIVE_STATES),
                    key=lambda k: entries[k].get("started") or "",
                )
                for key in finished[: len(entries) - KEEP_RUNS]:
                    del entries[key]

        self._file.update(self.scope, change)

    def update(self, run_id: str, **changes: Any) -> RunRecord | None:
        """Change some fields of a stored run; returns the new record (None if unknown)."""

        def change(entries: dict[str, Any]) -> RunRecord | None:
            record = RunRecord.from_dict(entries.get(run_id) or {})
            if record is None:
                return None
            record = replace(record, **changes)
            entries[run_id] = record.to_dict()
            return record

        return self._file.update(self.scope, change)

    def get(self, run_id: str) -> RunRecord | None:
        return RunRecord.from_dict(self._file.read(self.scope).get(run_id) or {})

    def all(self) -> list[RunRecord]:
        """Every remembered run, oldest first."""
        records = [RunRecord.from_dict(v) for v in self._file.read(self.scope).values()]
        return sorted((r for r in records if r is not None), key=lambda r: r.started)


def busy_instances(api_url: str, now: datetime | None = None) -> dict[str, list[str]]:
    """Instance id -> ids of its runs that may still be running, for the guard's idle rule:
    an instance with one is busy, whatever its GPU says. A run counts until a client sees it
    end, or until ``RunRecord.busy_until`` (its own timeout, else 24 h after the last look)."""
    moment = now or _now()
    busy: dict[str, list[str]] = {}
    for record in RunStore(api_url).all():
        if record.active and record.busy_until > moment:
            busy.setdefault(record.instance_id, []).append(record.id)
    return busy
