"""Copying one file either way over SFTP, resumable: bytes go to a partial file next to the
target (``.NAME.novita-part``), in chunks whose blocks asyncssh sends in parallel; the partial
gets the source's permissions and mtime and is then renamed over the target, so a target is
never half written. An interrupted copy resumes from its partial: from the start of the
chunk that was in flight (blocks of one chunk may land out of order), after checking that the
bytes before it still match the source (else it starts over).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
from pathlib import Path
from typing import Any, Protocol

from .ssh import asyncssh_module
from .trees import Entry, partial_of

__all__ = ["upload", "download", "resume_point", "CHUNK"]

CHUNK = 8 * 1024 * 1024  # one write or read call; asyncssh splits it into parallel requests
VERIFY = 64 * 1024  # bytes compared before a resume point


class Counter(Protocol):
    """Where a copy reports its bytes: ``moved`` went over the wire, ``resumed`` were
    already there from an interrupted copy."""

    def moved(self, count: int) -> None: ...

    def resumed(self, count: int) -> None: ...


def resume_point(partial_size: int | None, source_size: int, exact: bool) -> int:
    """Where to resume: ``exact`` when the partial was written in order (a local file), else
    the start of the chunk that may have been in flight."""
    if not partial_size or partial_size > source_size:
        return 0
    if exact:
        return partial_size
    return max(0, (-(-partial_size // CHUNK) - 1) * CHUNK)


def _read_local(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(size)


async def _same_prefix(remote_file: Any, local: Path, offset: int) -> bool:
    """Whether the VERIFY bytes before ``offset`` are the same on both sides."""
    if offset == 0:
        return True
    start = max(0, offset - VERIFY)
    theirs = await remote_file.read(offset - start, start)
    return theirs == _read_local(local, start, offset - start)


async def upload(
    sftp: Any, source: Path, target: str, entry: Entry, partial: int | None, counter: Counter
) -> int:
    """Copy ``source`` to the instance's ``target``; returns the offset it resumed from."""
    asyncssh = asyncssh_module()
    part = partial_of(target)
    offset = resume_point(partial, entry.size, exact=False)
    mode = "r+b" if offset else "wb"
    async with sftp.open(part, mode) as file:
        if offset and not await _same_prefix(file, source, offset):
            offset = 0
            await file.truncate(0)
        if offset:
            await file.truncate(offset)
            counter.resumed(offset)
        with open(source, "rb") as local:
            local.seek(offset)
            position = offset
            while position < entry.size:
                data = local.read(CHUNK)
                if not data:
                    break
                await file.write(data, position)
                position += len(data)
                counter.moved(len(data))
    attrs = asyncssh.SFTPAttrs(permissions=entry.mode, atime=entry.mtime, mtime=entry.mtime)
    await sftp.setstat(part, attrs)
    await _rename(sftp, part, target)
    return offset


async def _rename(sftp: Any, source: str, target: str) -> None:
    asyncssh = asyncssh_module()
    try:
        await sftp.posix_rename(source, target)
    except asyncssh.SFTPOpUnsupported:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(target)
        await sftp.rename(source, target)


async def download(
    sftp: Any, source: str, entry: Entry, target: Path, partial: int | None, counter: Counter
) -> int:
    """Copy the instance's ``source`` to ``target`` here; returns the offset resumed from."""
    part = Path(partial_of(str(target)))
    offset = resume_point(partial, entry.size, exact=True)
    async with sftp.open(source, "rb") as remote:
        if offset and not await _same_prefix(remote, part, offset):
            offset = 0
        with open(part, "r+b" if offset else "wb") as local:
            local.truncate(offset)
            local.seek(offset)
            if offset:
                counter.resumed(offset)
            position = offset
            while position < entry.size:
                data = await remote.read(min(CHUNK, entry.size - position), position)
                if not data:
                    break
                await asyncio.to_thread(local.write, data)
                position += len(data)
                counter.moved(len(data))
    os.chmod(part, entry.mode)
    os.utime(part, (entry.mtime, entry.mtime))
    os.replace(part, target)
    return offset


def remote_path(root: str, rel: str) -> str:
    """The instance's path of ``rel`` under ``root`` (SFTP: relative means the home)."""
    if not rel:
        return root
    return rel if root in ("", ".") else posixpath.join(root, rel)
