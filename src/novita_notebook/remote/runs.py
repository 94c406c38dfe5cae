"""A durable run on an instance (``Run``): followed from its log files by byte offset (pushed
as they grow, or read over SFTP where the image cannot push; follow.py), so a dropped
connection loses nothing and a new kernel can replay it from the start (``attach``). It ends
in a state: succeeded, failed, interrupted, timed_out, lost (the instance stopped, or the
run's processes vanished) or not_started; a bad end raises RemoteRunError with the remote
traceback's last lines.

Ctrl-C while following sends SIGINT to the run's processes, shows how they end (up to
``INTERRUPT_GRACE`` seconds), then raises KeyboardInterrupt; a second Ctrl-C kills them.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import RemoteError, RemoteRunError, TimeoutError, ValidationError
from . import scripts
from .files import Files, Progress, Transfer
from .follow import Ending, LogStream, RunFiles, Step
from .output import DEFAULT_MAX_OUTPUT, STREAMS, OutputBuffer, OutputSink, PrintSink, capped_note
from .ssh import NOT_RUNNING, SSHPool
from .store import ACTIVE_STATES, RunRecord, RunStore
from .unpulled import note_written
from .values import RemotePython, loads

MIN_POLL = 0.01  # reading over SFTP: the first pause, and the pause while output comes
MAX_POLL = 0.25
COALESCE_BYTES = 1 << 20  # pushed pieces joined into one display write, up to this much
LIVENESS_EVERY = 2.0  # seconds of silence between checks that the run's processes live
SAVE_EVERY = 2.0  # seconds between ledger updates of the bytes seen
INTERRUPT_GRACE = 10.0
ESCALATE_AFTER = 3.0  # seconds after SIGINT before SIGTERM (a shell may ignore SIGINT)
TAIL_LINES = 15


class Run:
    """A run on an instance. ``state``, ``exit_code``, ``output`` (both streams so far, in
    order), ``stdout``, ``stderr``, ``values`` (what ``get`` brought back) and ``wait()``.
    Made by ``Novita.run`` and ``Novita.attach``."""

    def __init__(
        self,
        record: RunRecord,
        pool: SSHPool,
        store: RunStore,
        *,
        on_output: OutputSink | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
        remote_python: RemotePython | None = None,
    ) -> None:
        self._record = record
        self._pool = pool
        self._store = store
        self._buffer = OutputBuffer(max_output)
        note = capped_note(record.id, record.remote_dir, max_output)
        self._sink: OutputSink = on_output or PrintSink(note, max_output)
        self._remote_python = remote_python
        self._files = RunFiles(pool, record.instance_id, record.remote_dir)
        self._can_push = True  # the instance can push its logs (it has tail)
        self._saved_at = 0.0
        self._alive_checked = time.monotonic()
        self._caught_up = False  # this object has read the logs of an ended run to the end
        self._showing = False  # output goes to the sink only while wait() follows
        self._pending: list[tuple[str, str]] = []
        self.values: dict[str, Any] = {}
        self.error: RemoteRunError | None = None

    # -- what it is --------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._record.id

    @property
    def instance_id(self) -> str:
        return self._record.instance_id

    @property
    def record(self) -> RunRecord:
        return self._record

    @property
    def state(self) -> str:
        """starting, running, succeeded, failed, interrupted, timed_out, lost, not_started.
        Looked up on the instance when the run may still be going."""
        if self._record.state in ACTIVE_STATES:
            self.refresh()
        return self._record.state

    @property
    def exit_code(self) -> int | None:
        return self._record.exit_code

    @property
    def output(self) -> str:
        return self._buffer.text("output")

    @property
    def stdout(self) -> str:
        return self._buffer.text("stdout")

    @property
    def stderr(self) -> str:
        return self._buffer.text("stderr")

    @property
    def done(self) -> bool:
        return self._record.state not in ACTIVE_STATES

    def __repr__(self) -> str:
        r = self._record
        code = f" exit_code={r.exit_code}" if r.exit_code is not None else ""
        return f"<Run {r.id} on {r.instance_name or r.instance_id} {r.state}{code}>"

    # -- following ---------------------------------------------------------------------------
    def refresh(self) -> Run:
        """Read what is new once (output, exit), without waiting."""
        if not self.done:
            self._follow_once()
        return self

    def lost(self, reason: str) -> Run:
        """Mark a run that cannot be going any more (its instance stopped or is gone)."""
        if not self.done:
            self._finish("lost", None, None, reason)
        return self

    def settle(self) -> Run:
        """Learn whether the run ended without reading its output (for listings): its exit
        status and markers if it ended, lost if its processes or its instance are gone."""
        if self.done:
            return self

        try:
            exit_attrs, code, sizes = self._pool.call(self.instance_id, self._files.ended)
        except RemoteError as error:
            if error.reason != NOT_RUNNING:
                raise
            self._finish("lost", None, None, error.message)
            return self
        if exit_attrs is None:
            self._check_alive(poll=False)
            return self
        self._buffer.bytes_seen.update(sizes)
        self._ended(Step({}, code, exit_attrs.mtime), fetch_values=False)
        return self

    def wait(
        self, timeout: float | None = None, *, check: bool = True, interrupt: bool = True
    ) -> Run:
        """Follow the run to its end, showing output as it comes. ``timeout`` (seconds)
        bounds the wait here, not the run. A bad end raises RemoteRunError (``check=False``
        returns the Run instead); Ctrl-C interrupts the remote code (``interrupt=False``: it
        only stops following, the run goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._showing = True
        try:
            self._flush_pending()
            if self.done and not self._caught_up:
                self._catch_up()
            while not self.done:
                if not (self._can_push and self._follow_pushed(deadline)):
                    self._follow_polled(deadline)
        except KeyboardInterrupt:
            if interrupt:
                self._interrupted()
            raise
        finally:
            self._showing = False
        if check and self.error is not None:
            raise self.error
        return self

    def _waited_too_long(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"run {self.id} is still running (it goes on there)",
                hint=f"run.wait() again, or novita.attach({self.id!r}) later.",
            )

    def _follow_pushed(self, deadline: float | None) -> bool:
        """Follow the logs as the instance pushes them, to the run's end. False when the
        image cannot push (then reading over SFTP takes over)."""
        stream = LogStream(self.id, self._buffer.bytes_seen)
        future = self._pool.submit(self._pool.using(self.instance_id, stream))
        try:
            while not future.done() or not stream.queue.empty():
                try:
                    pieces = [stream.queue.get(timeout=0.1)]
                except queue.Empty:
                    self._waited_too_long(deadline)
                    self._save_progress()
                    continue
                size = len(pieces[0][1])
                while size < COALESCE_BYTES and not stream.queue.empty():
                    pieces.append(stream.queue.get())
                    size += len(pieces[-1][1])
                self._absorb(pieces)
            status = future.result()
        except RemoteError as error:
            if error.reason != NOT_RUNNING:
                raise
            self._finish("lost", None, None, error.message)
            return True
        finally:
            future.cancel()
        if status == scripts.FOLLOW_UNABLE:
            self._can_push = False
            return False
        self._follow_once(check_alive=status != scripts.FOLLOW_ENDED)
        return True

    def _absorb(self, pieces: list[tuple[str, bytes]]) -> None:
        """Pushed pieces to the buffer and the display, joined per stream (one write each)."""
        if self._record.state == "starting":  # stored with the next progress save
            self._record = replace(self._record, state="running")
        for stream in STREAMS:
            data = b"".join(d for s, d in pieces if s == stream)
            if data:
                self._show(stream, self._buffer.add(stream, data))
        self._save_progress()

    def _follow_polled(self, deadline: float | None) -> None:
        """Follow by reading the logs over SFTP, pausing longer while the run is quiet."""
        pause = MIN_POLL
        while not self.done:
            got = self._follow_once()
            if self.done:
                return
            self._waited_too_long(deadline)
            pause = MIN_POLL if got else min(MAX_POLL, pause * 1.5)
            time.sleep(pause)

    def _catch_up(self) -> None:
        """A run that had ended before this object looked (attach): its logs to the end,
        then its end as the instance says (or as remembered, when the instance cannot)."""
        self._caught_up = True
        state, code = self._record.state, self._record.exit_code
        while True:
            try:
                step = self._read_step()
            except RemoteError:
                break  # the instance is gone: the remembered end is all there is
            for stream in STREAMS:
                self._show(stream, self._buffer.add(stream, step.data[stream]))
            if step.exit_code is not None:
                self._ended(step)
                return
            if not any(step.data.values()):
                break
        self.error = (
            self._error(state, code, None, "as remembered") if state != "succeeded" else None
        )

    def _interrupted(self) -> None:
        """First Ctrl-C: SIGINT to the run (SIGTERM if it lingers), then follow its end
        briefly; another Ctrl-C: SIGKILL."""
        try:
            self.interrupt()
            began = time.monotonic()
            escalated = False
            while not self.done and time.monotonic() - began < INTERRUPT_GRACE:
                self._follow_once()
                if not escalated and time.monotonic() - began > ESCALATE_AFTER:
                    escalated = True
                    self._signal("TERM", "interrupted")
                time.sleep(0.025)
        except KeyboardInterrupt:
            self.kill()
        except RemoteError:
            pass  # the interrupt was asked for; the error would hide the KeyboardInterrupt

    def interrupt(self) -> None:
        """Send SIGINT to the run's processes (a Python run raises KeyboardInterrupt there)."""
        self._signal("INT", "interrupted")

    def kill(self) -> None:
        """End the run's processes at once (SIGKILL)."""
        self._signal("KILL", "interrupted")

    def _signal(self, name: str, marker: str) -> None:
        if not self.done:
            self._pool.run(
                self.instance_id, scripts.signal_command(self.id, name, marker), retry=True
            )

    @property
    def written(self) -> tuple[str, ...]:
        """The folders (relative to the instance's home) the code wrote files in, known once
        the run has ended."""
        return self._record.written

    def pull_outputs(
        self,
        local: str | os.PathLike[str] | None = None,
        *,
        progress: Callable[[Progress], Any] | None = None,
    ) -> list[Transfer]:
        """Bring back every place the run wrote, in one call: each to ``local/<its path under
        the home>`` (default ``local``: ``novita-outputs/<instance name>`` here), nothing
        ignored; they no longer count as unpulled before a stop or delete. One Transfer per
        place."""
        if not self.done:
            raise ValidationError(
                f"run {self.id} is {self.state}; its outputs are known when it ends "
                "(wait for it first)",
                field="run",
            )
        files = Files(self._store.api_url, self._pool)
        name = self._record.instance_name or self.instance_id
        base = Path(local) if local is not None else Path("novita-outputs") / name
        return [
            files.pull_outputs(
                self.instance_id, name, place, base / place.strip("/"), progress=progress
            )
            for place in self.written
        ]

    def log(self, stream: str = "stdout") -> str:
        """The whole of one stream's log, fetched from the instance (even past the cap)."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}")

        async def fetch(conn: Any) -> bytes:
            return await self._files.whole(conn, stream)

        return self._pool.call(self.instance_id, fetch).decode("utf-8", errors="replace")

    # -- one poll ----------------------------------------------------------------------------
    def _follow_once(self, check_alive: bool = False) -> bool:
        """One read over SFTP: new output to the display, the end noticed. True if output
        came. ``check_alive``: look at once whether the run's processes still live."""
        try:
            step = self._read_step()
        except RemoteError as error:
            if error.reason != NOT_RUNNING:
                raise
            # A stop, a delete or a reclaim ends every process of the instance.
            self._finish("lost", None, None, error.message)
            return False
        got = False
        for stream in STREAMS:
            data = step.data.get(stream, b"")
            if data:
                got = True
                self._show(stream, self._buffer.add(stream, data))
        if got and self._record.state == "starting":  # stored with the next progress save
            self._record = replace(self._record, state="running")
        if step.exit_code is not None:
            self._ended(step)
        elif check_alive or (not got and time.monotonic() - self._alive_checked > LIVENESS_EVERY):
            self._check_alive()
        self._save_progress()
        return got

    def _read_step(self) -> Step:
        offsets = dict(self._buffer.bytes_seen)

        async def poll(conn: Any) -> Step:
            return await self._files.poll(conn, offsets)

        return self._pool.call(self.instance_id, poll)

    def _show(self, stream: str, text: str) -> None:
        """To the sink while wait() follows; else kept for the next wait() (what refresh()
        and ``state`` read is not printed by surprise)."""
        if not text:
            return
        if self._showing:
            self._sink(stream, text)
        elif sum(len(t) for _, t in self._pending) < self._buffer.limit:
            self._pending.append((stream, text))

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for stream, text in pending:
            self._sink(stream, text)

    # -- the end -----------------------------------------------------------------------------
    def _ended(self, step: Step, fetch_values: bool = True) -> None:
        self._caught_up = True
        want = bool(self._record.get) and fetch_values

        async def end(conn: Any) -> Ending:
            return await self._files.end(conn, want)

        ending = self._pool.call(self.instance_id, end)
        markers, error_info, blob = ending.markers, ending.error, ending.values
        if self._record.active:  # seen ending for the first time: a stop or a delete names
            for place in ending.written:  # what it wrote, with the pull call
                note_written(self._store.api_url, self.instance_id, place, f"run {self.id}")
            self._record = replace(self._record, written=tuple(ending.written))
        code = step.exit_code
        if "timed_out" in markers:
            state = "timed_out"
        elif "interrupted" in markers:
            state = "interrupted"
        else:
            state = "succeeded" if code == 0 else "failed"
        if state == "succeeded" and self._record.get and fetch_values:
            if blob is None:
                state, error_info = (
                    "failed",
                    {"type": "NameError", "message": "no values came back"},
                )
            else:
                self.values = loads(blob, self._remote_python)
        # Seen ending while followed: now. Seen later: when the exit file was written.
        finished = None
        if step.finished_at is not None:
            finished = max(datetime.fromtimestamp(step.finished_at, UTC), self._record.started)
        self._finish(state, code, error_info, None, finished)

    def _check_alive(self, poll: bool = True) -> None:
        self._alive_checked = time.monotonic()
        answer = self._pool.run(self.instance_id, scripts.alive_command(self.id), retry=True)
        if b"alive" in answer.stdout:
            if self._record.state == "starting":
                self._record = replace(self._record, state="running")
                self._store.save(self._record)
            return
        if not poll:
            if self._pool.call(self.instance_id, self._files.ended)[0] is None:
                launched = self._record.state == "running" or self._launched()
                reason = "its processes ended without an exit status"
                self._finish("lost" if launched else "not_started", None, None, reason)
            return
        step = self._read_step()  # it may have just ended
        if step.exit_code is not None:
            for stream in STREAMS:
                self._show(stream, self._buffer.add(stream, step.data[stream]))
            self._ended(step)
        elif self._record.state == "running" or self._launched():
            self._finish("lost", None, None, "its processes ended without an exit status")
        else:
            self._finish("not_started", None, None, "it was never launched")

    def _launched(self) -> bool:
        """Whether the launch happened (a kernel may have died between the record and it)."""
        return self._pool.call(self.instance_id, self._files.launched)

    def _finish(
        self,
        state: str,
        code: int | None,
        error_info: dict[str, Any] | None,
        reason: str | None,
        finished: datetime | None = None,
    ) -> None:
        for stream in STREAMS:
            self._show(stream, self._buffer.add(stream, b"", final=True))
        self._record = replace(
            self._record,
            state=state,
            exit_code=code,
            finished=finished or datetime.now(UTC),
            stdout_bytes=self._buffer.bytes_seen["stdout"],
            stderr_bytes=self._buffer.bytes_seen["stderr"],
        )
        self._store.save(self._record)
        if state != "succeeded":
            self.error = self._error(state, code, error_info, reason)

    def _error(
        self, state: str, code: int | None, info: dict[str, Any] | None, reason: str | None
    ) -> RemoteRunError:
        r = self._record
        where = f"run {r.id} on {r.instance_name or r.instance_id}"
        info = info or {}
        kind = info.get("type")
        if info.get("traceback"):
            tail = "\n".join(info["traceback"][-TAIL_LINES:])
        else:
            tail = "\n".join(self.stderr.rstrip().splitlines()[-TAIL_LINES:])
        what = {
            "failed": f"failed with exit code {code}",
            "interrupted": "was interrupted",
            "timed_out": f"ran out of its {r.timeout:g} s timeout" if r.timeout else "timed out",
            "lost": f"was lost: {reason}",
            "not_started": "never started",
        }.get(state, state)
        message = f"{where} {what}"
        if kind:
            message += f": {kind}: {info.get('message', '')}"
        if tail:
            message += "\n" + tail
        return RemoteRunError(
            message,
            instance_id=r.instance_id,
            run_id=r.id,
            state=state,
            exit_code=code,
            error_type=kind,
            traceback_tail=tail,
        )

    def _save_progress(self) -> None:
        now = time.monotonic()
        if self.done or now - self._saved_at < SAVE_EVERY:
            return
        self._saved_at = now
        self._record = replace(
            self._record,
            seen=datetime.now(UTC) if self._record.state == "running" else self._record.seen,
            stdout_bytes=self._buffer.bytes_seen["stdout"],
            stderr_bytes=self._buffer.bytes_seen["stderr"],
        )
        self._store.save(self._record)
