"""push and pull: files and folders between this machine and an instance over SFTP. Ignored
paths are left out, unchanged files skipped (same size and mtime; a hash of both sides when
only the mtime differs), several files move at once, permissions and mtimes are kept, and an
interrupted transfer resumes: a dropped connection is reopened and the same call goes on; a
call that was stopped (Ctrl-C) resumes from its partial files the next time.

Progress is reported on the caller's thread (``progress(Progress)`` a few times a second),
so a notebook can draw it and Ctrl-C reaches the caller. A relative remote path starts at the
instance's home (``~/`` is accepted too).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import posixpath
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RemoteError, ValidationError
from . import unpulled
from .commands import command_line
from .ignore import IgnoreRules
from .ssh import SSHPool, asyncssh_module, background_loop
from .transfer import download, remote_path, upload
from .trees import Entry, Tree, local_file, local_tree, partial_of, remote_entry, remote_tree

__all__ = ["Files", "Progress", "Transfer", "remote_spelling"]

PROGRESS_EVERY = 0.2
CONCURRENT_FILES = 4


@dataclass(frozen=True)
class Progress:
    """Where a transfer is: bytes and files done of the total, the file moving now."""

    direction: str
    instance: str
    done_bytes: int
    total_bytes: int
    files_done: int
    files_total: int
    current: str | None
    elapsed: float

    @property
    def fraction(self) -> float:
        return 1.0 if not self.total_bytes else min(1.0, self.done_bytes / self.total_bytes)


@dataclass
class Transfer:
    """What a push or pull did. ``files`` were copied, ``unchanged`` skipped; ``bytes_sent``
    went over the wire (a resumed file sends only its rest); ``resumed`` maps a file to the
    offset it resumed from."""

    direction: str
    instance_id: str
    name: str
    local: str
    remote: str
    files: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    ignored: int = 0
    links_skipped: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_total: int = 0
    resumed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    attempts: int = 0

    @property
    def rate(self) -> float:
        """Megabytes (10^6) a second over the wire."""
        return self.bytes_sent / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def not_copied(self) -> list[str]:
        """What else happened, in words: ``["2 unchanged", "1 resumed", "3 ignored"]``."""
        counts = ((len(self.unchanged), "unchanged"), (len(self.resumed), "resumed"),
                  (self.ignored, "ignored"), (len(self.links_skipped), "links skipped"))  # fmt: skip
        return [f"{count} {what}" for count, what in counts if count]

    def __repr__(self) -> str:
        way = "to" if self.direction == "push" else "from"
        where = f"{self.name}:{self.remote}"
        parts = [f"{len(self.files)} files ({self.bytes_sent / 1e6:.1f} MB, {self.rate:.1f} MB/s)"]
        return f"<Transfer {self.direction} {way} {where}: {', '.join(parts + self.not_copied())}>"


class _Counter:
    """Shared between the SSH loop (writes) and the caller's thread (reads)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done = self.sent = self.total = self.files_done = self.files_total = 0
        self.current: str | None = None

    def moved(self, count: int) -> None:
        self.done += count
        self.sent += count

    def resumed(self, count: int) -> None:
        self.done += count


def remote_spelling(path: str) -> str:
    """The SFTP path of a user's remote path: ``~``, ``~/x`` and ``x`` start at the home."""
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise ValidationError("a remote path must be non-empty text", field="remote")
    if path == "~" or path == "~/":
        return "."
    if path.startswith("~/"):
        return path[2:]
    if path.startswith("~"):
        raise ValidationError("~user paths are not supported; use ~/ or /home/...", field="remote")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def _remote_hashes(conn: Any, paths: list[str]) -> list[str | None]:
    """sha256 of each path on the instance (None where it cannot say), one command for all."""
    if not paths:
        return []
    data = b"\0".join(p.encode() for p in paths) + b"\0"
    done = await conn.run(command_line(["xargs", "-0", "sha256sum", "--"]), input=data,
                          encoding=None, timeout=600)  # fmt: skip
    lines = (done.stdout or b"").decode(errors="replace").splitlines()
    if len(lines) != len(paths):
        return [None] * len(paths)
    return [line.split(" ", 1)[0].lstrip("\\") or None for line in lines]


class Files:
    """push/pull for the instances of one API URL."""

    def __init__(self, api_url: str, pool: SSHPool) -> None:
        self.api_url = api_url
        self.pool = pool

    # -- the sync face -------------------------------------------------------------------------
    def push(self, instance_id: str, name: str, local: str | os.PathLike[str],
             remote: str | None = None, *, progress: Callable[[Progress], Any] | None = None,
             **options: Any) -> Transfer:  # fmt: skip
        """Copy a local file or folder to the instance (see the module's docstring)."""
        source = self._local_source(local)
        target = remote_spelling(remote if remote is not None else source.name)
        job = _Job("push", instance_id, name, str(source), target, IgnoreRules(
            options.pop("ignore", None), default_ignore=options.pop("default_ignore", True)),
            bool(options.pop("checksum", False)))  # fmt: skip
        _no_more(options)
        transfer = self._run(job, self._push, progress)
        unpulled.note_written(self.api_url, instance_id, target, "push")
        return transfer

    def pull(self, instance_id: str, name: str, remote: str,
             local: str | os.PathLike[str] | None = None, *,
             progress: Callable[[Progress], Any] | None = None, **options: Any) -> Transfer:  # fmt: skip
        """Copy a file or folder of the instance here (default: its name in the current
        folder)."""
        source = remote_spelling(remote)
        base = posixpath.basename(posixpath.normpath(source)) if source != "." else "home"
        target = Path(local if local is not None else base).expanduser()
        job = _Job("pull", instance_id, name, str(target.absolute()), source, IgnoreRules(
            options.pop("ignore", None), default_ignore=options.pop("default_ignore", True)),
            bool(options.pop("checksum", False)))  # fmt: skip
        _no_more(options)
        transfer = self._run(job, self._pull, progress)
        unpulled.note_pulled(self.api_url, instance_id, source)
        return transfer

    def pull_outputs(self, instance_id: str, name: str, remote_dir: str,
                     local: str | os.PathLike[str] | None = None, *,
                     progress: Callable[[Progress], Any] | None = None) -> Transfer:  # fmt: skip
        """A run's outputs in one call: the folder ``remote_dir`` to ``local`` (default
        ``novita-outputs/<instance name>/<folder name>`` here), nothing ignored, and the
        folder no longer counted as unpulled."""
        source = remote_spelling(remote_dir)
        if local is None:
            folder = posixpath.basename(posixpath.normpath(source)) or "outputs"
            local = Path("novita-outputs") / (name or instance_id) / folder
        return self.pull(instance_id, name, source, local, progress=progress,
                         default_ignore=False)  # fmt: skip

    def push_many(self, targets: list[tuple[str, str]], local: str | os.PathLike[str],
                  remote: str | None = None, **options: Any) -> list[Transfer | BaseException]:  # fmt: skip
        """The same push to several instances at once; each one's Transfer or error."""
        source = self._local_source(local)
        target = remote_spelling(remote if remote is not None else source.name)
        rules = IgnoreRules(options.pop("ignore", None),
                            default_ignore=options.pop("default_ignore", True))  # fmt: skip
        checksum = bool(options.pop("checksum", False))
        _no_more(options)
        jobs = [_Job("push", i, n, str(source), target, rules, checksum) for i, n in targets]

        async def all_of() -> list[Any]:
            return await asyncio.gather(
                *(self.pool.using(job.instance_id, self._attempt(job, self._push), retry=True)
                  for job in jobs), return_exceptions=True)  # fmt: skip

        results = self.pool.run_coroutine(all_of())
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, Transfer):
                unpulled.note_written(self.api_url, job.instance_id, target, "push")
        return results

    # -- running one job -----------------------------------------------------------------------
    @staticmethod
    def _local_source(local: Any) -> Path:
        if not isinstance(local, str | os.PathLike) or not str(local).strip():
            raise ValidationError("local must be a path to a file or folder", field="local")
        source = Path(local).expanduser()
        if not source.exists():
            raise ValidationError(f"local: {source} does not exist", field="local")
        return source.absolute()

    def _attempt(self, job: _Job, plan: Callable[..., Any]) -> Callable[[Any], Any]:
        async def attempt(conn: Any) -> Transfer:
            job.sent_before += job.counter.sent  # what earlier attempts sent stays counted
            job.counter = _Counter()
            job.transfer.attempts += 1
            sftp = await self.pool.sftp(conn, job.instance_id)
            await plan(conn, sftp, job)
            job.transfer.seconds = time.monotonic() - job.started
            job.transfer.bytes_sent = job.sent_before + job.counter.sent
            return job.transfer

        return attempt

    def _run(self, job: _Job, plan: Callable[..., Any],
             progress: Callable[[Progress], Any] | None) -> Transfer:  # fmt: skip
        """Run on the SSH loop (reopening a lost connection and going on), reporting progress
        here; Ctrl-C or an exception in ``progress`` stops it, partial files kept."""
        future = background_loop().submit(
            self.pool.using(job.instance_id, self._attempt(job, plan), retry=True)
        )
        try:
            while True:
                try:
                    transfer = future.result(PROGRESS_EVERY)
                except concurrent.futures.TimeoutError:
                    if progress is not None:
                        progress(job.progress())
                    continue
                if progress is not None:
                    progress(job.progress())
                return transfer
        except BaseException:
            future.cancel()
            raise

    # -- push ----------------------------------------------------------------------------------
    async def _push(self, conn: Any, sftp: Any, job: _Job) -> None:
        source = Path(job.local)
        if source.is_file():
            await self._push_file(conn, sftp, job, source)
            return
        here = await asyncio.to_thread(local_tree, source, job.rules)
        there = await _tree_or_none(sftp, job)
        job.note_trees(here)
        await self._make_dirs(sftp, job.remote, here.dirs, there.dirs)
        send, unsure = _compare(here, there, job)
        if unsure:
            theirs = await _remote_hashes(conn, [remote_path(job.remote, e.path) for e in unsure])
            for entry, digest in zip(unsure, theirs, strict=True):
                ours = await asyncio.to_thread(_sha256, source / entry.path)
                if digest == ours:
                    await _fix_remote_attrs(sftp, remote_path(job.remote, entry.path), entry)
                    job.transfer.unchanged.append(entry.path)
                else:
                    send.append(entry)
        await job.copy_all(send, lambda e: upload(
            sftp, source / e.path, remote_path(job.remote, e.path), e,
            there.partials.get(e.path), job.counter))  # fmt: skip

    async def _push_file(self, conn: Any, sftp: Any, job: _Job, source: Path) -> None:
        target = job.remote
        if target.endswith("/") or await sftp.isdir(target):
            target = posixpath.join(target, source.name)
            job.remote = target
        parent = posixpath.dirname(target)
        if parent:
            await sftp.makedirs(parent, exist_ok=True)
        entry = local_file(source, posixpath.basename(target))
        job.note_files([entry])
        existing = await _stat_or_none(sftp, target)
        partial = await _stat_or_none(sftp, partial_of(target))
        if existing is not None and _same(entry, remote_entry(target, existing), job.checksum):
            job.transfer.unchanged.append(entry.path)
            return
        await job.copy_all([entry], lambda e: upload(
            sftp, source, target, e, partial.size if partial else None, job.counter))  # fmt: skip

    async def _make_dirs(self, sftp: Any, root: str, ours: dict[str, int],
                         theirs: dict[str, int]) -> None:  # fmt: skip
        """Make the folders missing on the instance (parents first) with our permissions."""
        asyncssh = asyncssh_module()
        if "" not in theirs:
            await sftp.makedirs(root, exist_ok=True)
        by_depth: dict[int, list[str]] = {}
        for rel in ours:
            if rel not in theirs or theirs[rel] != ours[rel]:
                by_depth.setdefault(rel.count("/") if rel else -1, []).append(rel)
        for depth in sorted(by_depth):

            async def make(rel: str) -> None:
                path = remote_path(root, rel)
                attrs = asyncssh.SFTPAttrs(permissions=ours[rel])
                if rel in theirs or not rel:
                    await sftp.setstat(path, attrs)
                else:
                    await sftp.mkdir(path, attrs)

            await asyncio.gather(*(make(rel) for rel in by_depth[depth]))

    # -- pull ----------------------------------------------------------------------------------
    async def _pull(self, conn: Any, sftp: Any, job: _Job) -> None:
        attrs = await _stat_or_none(sftp, job.remote)
        if attrs is None:
            raise RemoteError(f"there is no {job.remote} on {job.name}",
                              instance_id=job.instance_id, reason="NO_SUCH_PATH")  # fmt: skip
        target = Path(job.local)
        if not stat.S_ISDIR(attrs.permissions or 0):
            if target.is_dir():
                target = target / posixpath.basename(job.remote)
                job.local = str(target)
            entry = remote_entry(target.name, attrs)
            job.note_files([entry])
            partial = Path(partial_of(str(target)))
            if target.exists() and _same(local_file(target, entry.path), entry, job.checksum):
                job.transfer.unchanged.append(entry.path)
                return
            size = partial.stat().st_size if partial.exists() else None
            target.parent.mkdir(parents=True, exist_ok=True)
            await job.copy_all([entry], lambda e: download(
                sftp, job.remote, e, target, size, job.counter))  # fmt: skip
            return
        there = await remote_tree(sftp, job.remote, job.rules)
        here = await asyncio.to_thread(local_tree, target, job.rules) if target.is_dir() else Tree()
        job.note_trees(there)
        for rel, mode in sorted(there.dirs.items()):
            path = target / rel if rel else target
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, mode | stat.S_IWUSR | stat.S_IXUSR)  # we must be able to write in it
        send, unsure = _compare(there, here, job)
        if unsure:
            theirs = await _remote_hashes(conn, [remote_path(job.remote, e.path) for e in unsure])
            for entry, digest in zip(unsure, theirs, strict=True):
                if digest == await asyncio.to_thread(_sha256, target / entry.path):
                    os.utime(target / entry.path, (entry.mtime, entry.mtime))
                    job.transfer.unchanged.append(entry.path)
                else:
                    send.append(entry)
        await job.copy_all(send, lambda e: download(
            sftp, remote_path(job.remote, e.path), e, target / e.path,
            here.partials.get(e.path), job.counter))  # fmt: skip


class _Job:
    """One push or pull: what goes where, its counters and its result."""

    def __init__(self, direction: str, instance_id: str, name: str, local: str, remote: str,
                 rules: IgnoreRules, checksum: bool) -> None:  # fmt: skip
        self.direction, self.instance_id, self.name = direction, instance_id, name
        self.local, self.remote, self.rules, self.checksum = local, remote, rules, checksum
        self.counter = _Counter()
        self.started = time.monotonic()
        self.sent_before = 0
        self.transfer = Transfer(direction, instance_id, name, local, remote)

    def note_trees(self, source: Tree) -> None:
        self.transfer.ignored = source.ignored
        self.transfer.links_skipped = list(source.links_skipped)
        self.note_files(list(source.files.values()))

    def note_files(self, entries: list[Entry]) -> None:
        # A retried attempt starts its lists again.
        self.transfer.files, self.transfer.unchanged, self.transfer.resumed = [], [], {}
        self.transfer.local, self.transfer.remote = self.local, self.remote
        self.transfer.bytes_total = self.counter.total = sum(e.size for e in entries)
        self.counter.files_total = len(entries)

    async def copy_all(self, entries: list[Entry], copy: Callable[[Entry], Any]) -> None:
        skipped = self.counter.total - sum(e.size for e in entries)
        self.counter.done += skipped  # unchanged files count as done
        self.counter.files_done += self.counter.files_total - len(entries)
        gate = asyncio.Semaphore(CONCURRENT_FILES)

        async def one(entry: Entry) -> None:
            async with gate:
                self.counter.current = entry.path
                offset = await copy(entry)
                if offset:
                    self.transfer.resumed[entry.path] = offset
                self.transfer.files.append(entry.path)
                self.counter.files_done += 1

        # Large files first: the small ones fill the gaps at the end.
        await asyncio.gather(*(one(e) for e in sorted(entries, key=lambda e: -e.size)))

    def progress(self) -> Progress:
        c = self.counter
        return Progress(self.direction, self.name, c.done, c.total, c.files_done,
                        c.files_total, c.current, time.monotonic() - self.started)  # fmt: skip


def _same(ours: Entry, theirs: Entry, checksum: bool) -> bool:
    return not checksum and ours.size == theirs.size and ours.mtime == theirs.mtime


def _compare(source: Tree, target: Tree, job: _Job) -> tuple[list[Entry], list[Entry]]:
    """(files to copy, files whose size matches but whose mtime does not: hash them); the
    unchanged ones are noted in the job's transfer."""
    send, unsure = [], []
    for rel, entry in source.files.items():
        there = target.files.get(rel)
        if there is None or there.size != entry.size:
            send.append(entry)
        elif job.checksum or there.mtime != entry.mtime:
            unsure.append(entry)
        else:
            job.transfer.unchanged.append(rel)
    return send, unsure


async def _stat_or_none(sftp: Any, path: str) -> Any:
    try:
        return await sftp.stat(path)
    except asyncssh_module().SFTPNoSuchFile:
        return None


async def _tree_or_none(sftp: Any, job: _Job) -> Tree:
    """The instance's side of a folder push (empty when it is not there yet)."""
    attrs = await _stat_or_none(sftp, job.remote)
    if attrs is None:
        return Tree()
    if not stat.S_ISDIR(attrs.permissions or 0):
        raise RemoteError(f"{job.remote} on {job.name} is a file, not a folder",
                          instance_id=job.instance_id, reason="NOT_A_FOLDER")  # fmt: skip
    return await remote_tree(sftp, job.remote, job.rules)


async def _fix_remote_attrs(sftp: Any, path: str, entry: Entry) -> None:
    attrs = asyncssh_module().SFTPAttrs(permissions=entry.mode, atime=entry.mtime,
                                        mtime=entry.mtime)  # fmt: skip
    await sftp.setstat(path, attrs)


def _no_more(options: dict[str, Any]) -> None:
    if options:
        name = sorted(options)[0]
        raise ValidationError(
            f"{name}: unknown option (push and pull take ignore, default_ignore, checksum, "
            "progress)",
            field=name,
        )
