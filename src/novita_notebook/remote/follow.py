"""Reading a run's files on the instance, two ways. ``RunFiles`` reads them over SFTP by byte
offset (repeatable after any reconnect: a read at an offset is the same read). ``LogStream``
has the instance push new bytes as they are written (``tail -f`` over one exec channel, no
polling); the bytes it delivered are counted, so a new stream after a dropped connection
starts exactly where the last one stopped, and the end is always read over SFTP.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import queue
from dataclasses import dataclass
from typing import Any

from . import scripts
from .commands import command_line
from .output import STREAMS
from .ssh import SSHPool, asyncssh_module

READ_SIZE = 1 << 20  # bytes per stream per SFTP read
PUSH_SIZE = 1 << 16


@dataclass
class Step:
    """What one look at a run's files found."""

    data: dict[str, bytes]
    exit_code: int | None = None
    finished_at: float | None = None  # the exit file's mtime (whole seconds, SFTP's)


@dataclass
class Ending:
    """What an ended run left besides its logs."""

    markers: set[str]  # "timed_out", "interrupted"
    error: dict[str, Any] | None  # the Python failure (error.json)
    values: bytes | None  # the pickled values of ``get``
    written: list[str]  # where the code wrote files under the home (written_folders)


def written_folders(listing: str, limit: int = 20) -> list[str]:
    """The places a run wrote, from the files it wrote (``./out/a.pt`` lines): each file's
    folder (a file at the top of the home as itself), folders inside another one left out,
    at most ``limit``."""
    places: set[str] = set()
    for line in listing.splitlines():
        path = posixpath.normpath(line.strip())
        if not path or path == "." or path.startswith(("/", "../")):
            continue
        folder = posixpath.dirname(path)
        places.add(folder if folder not in ("", ".") else path)
    kept: list[str] = []
    for place in sorted(places):
        if not any(place.startswith(k + "/") for k in kept):
            kept.append(place)
    return kept[:limit]


class RunFiles:
    """A run's directory on the instance, over the pool's SFTP session."""

    def __init__(self, pool: SSHPool, instance_id: str, remote_dir: str) -> None:
        self.pool = pool
        self.instance_id = instance_id
        self.dir = remote_dir
        self._handles: tuple[Any, dict[str, Any]] | None = None  # (sftp session, open logs)

    async def _sftp(self, conn: Any) -> Any:
        return await self.pool.sftp(conn, self.instance_id)

    async def poll(self, conn: Any, offsets: dict[str, int]) -> Step:
        """New bytes of both logs from ``offsets`` (up to READ_SIZE each) and, once the exit
        status is written, everything left and that status."""
        sftp = await self._sftp(conn)
        handles = await self._open_logs(sftp)

        async def read(stream: str, start: int) -> bytes:
            handle = handles.get(stream)
            return await handle.read(READ_SIZE, start) if handle else b""

        exit_path = f"{self.dir}/exit"
        out, err, exit_attrs = await asyncio.gather(
            read("stdout", offsets["stdout"]),
            read("stderr", offsets["stderr"]),
            stat(sftp, exit_path),
        )
        step = Step({"stdout": out, "stderr": err})
        if exit_attrs is not None and len(out) < READ_SIZE and len(err) < READ_SIZE:
            # The exit status is written after the code ended: read the logs to their end.
            step.exit_code = to_int(await read_text(sftp, exit_path))
            for stream in STREAMS:
                while handles.get(stream):
                    more = await read(stream, offsets[stream] + len(step.data[stream]))
                    if not more:
                        break
                    step.data[stream] += more
        return step

    async def _open_logs(self, sftp: Any) -> dict[str, Any]:
        if self._handles is None or self._handles[0] is not sftp:
            self._handles = (sftp, {})
        handles = self._handles[1]
        for stream in STREAMS:
            if stream not in handles:
                try:
                    handles[stream] = await sftp.open(f"{self.dir}/{stream}", "rb")
                except Exception as error:
                    if not missing(error):
                        raise  # else: not written yet
        return handles

    async def end(self, conn: Any, want_values: bool) -> Ending:
        """What an ended run left: markers, the Python error, the values, the files written."""
        sftp = await self._sftp(conn)
        timed, interrupted, error_text, blob, written = await asyncio.gather(
            stat(sftp, f"{self.dir}/timed_out"),
            stat(sftp, f"{self.dir}/interrupted"),
            read_text(sftp, f"{self.dir}/error.json"),
            read_bytes(sftp, f"{self.dir}/get.pickle") if want_values else _nothing(),
            read_text(sftp, f"{self.dir}/written"),
        )
        markers = {n for n, a in (("timed_out", timed), ("interrupted", interrupted)) if a}
        error_info = None
        if error_text:
            try:
                error_info = json.loads(error_text)
            except ValueError:
                error_info = None
        return Ending(markers, error_info, blob, written_folders(written or ""))

    async def ended(self, conn: Any) -> tuple[Any, int | None, dict[str, int]]:
        """(the exit file's attributes or None, the exit status, the logs' sizes)."""
        sftp = await self._sftp(conn)
        names = ("exit", *STREAMS)
        attrs = await asyncio.gather(*(stat(sftp, f"{self.dir}/{n}") for n in names))
        sizes = {n: (a.size or 0) if a else 0 for n, a in zip(STREAMS, attrs[1:], strict=True)}
        code = to_int(await read_text(sftp, f"{self.dir}/exit")) if attrs[0] else None
        return attrs[0], code, sizes

    async def launched(self, conn: Any) -> bool:
        return await stat(await self._sftp(conn), f"{self.dir}/launched") is not None

    async def whole(self, conn: Any, stream: str) -> bytes:
        return await read_bytes(await self._sftp(conn), f"{self.dir}/{stream}") or b""


class LogStream:
    """An async operation for ``SSHPool.using``: pushes ``(stream, bytes)`` into ``queue``
    as the instance writes them, from ``offsets`` on; returns the follower's exit status
    (``scripts.FOLLOW_*``). Safe to repeat after a reconnect: it goes on from what it sent."""

    def __init__(self, run_id: str, offsets: dict[str, int]) -> None:
        self.run_id = run_id
        self.offsets = dict(offsets)
        self.queue: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()

    async def __call__(self, conn: Any) -> int | None:
        argv = scripts.follow_command(self.run_id, self.offsets["stdout"], self.offsets["stderr"])
        process = await conn.create_process(command_line(argv), encoding=None)
        try:
            await asyncio.gather(
                self._pump(process.stdout, "stdout"), self._pump(process.stderr, "stderr")
            )
            completed = await process.wait()
        finally:
            process.close()
        if completed.exit_status is None and conn.is_closed():
            raise asyncssh_module().ConnectionLost("the follower's connection was lost")
        return completed.exit_status

    async def _pump(self, reader: Any, stream: str) -> None:
        while True:
            data = await reader.read(PUSH_SIZE)
            if not data:
                return
            self.offsets[stream] += len(data)
            self.queue.put((stream, data))


async def stat(sftp: Any, path: str) -> Any:
    try:
        return await sftp.stat(path)
    except Exception as error:
        if missing(error):
            return None
        raise


async def read_bytes(sftp: Any, path: str) -> bytes | None:
    try:
        async with sftp.open(path, "rb") as handle:
            return await handle.read()
    except Exception as error:
        if missing(error):
            return None
        raise


async def read_text(sftp: Any, path: str) -> str | None:
    data = await read_bytes(sftp, path)
    return data.decode("utf-8", errors="replace") if data is not None else None


async def _nothing() -> None:
    return None


def missing(error: BaseException) -> bool:
    asyncssh = asyncssh_module()
    return isinstance(error, asyncssh.SFTPError) and error.code in (
        asyncssh.FX_NO_SUCH_FILE,
        asyncssh.FX_NO_SUCH_PATH,
    )


def to_int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None
