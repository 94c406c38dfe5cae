"""A run's output on this side: bytes decoded as they come (a character split across two reads
stays whole), kept in memory up to a cap, and shown through a sink. The default sink writes
to this process's stdout and stderr as a local cell would (``\\r`` progress bars untouched),
coalesced to one write per read, and stops at a cap with a pointer to the whole log, which
stays on the instance.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Callable
from typing import TextIO

#: (stream, text) -> None; stream is "stdout" or "stderr".
OutputSink = Callable[[str, str], None]

DEFAULT_MAX_OUTPUT = 1_000_000  # characters kept in memory and shown, per run
STREAMS = ("stdout", "stderr")


def capped_note(run_id: str, remote_dir: str, limit: int) -> str:
    return (
        f"\n[novita] output past {limit:,} characters is not shown or kept here; the whole log "
        f"stays on the instance in ~/{remote_dir}/stdout and stderr: run.log('stdout') or "
        f"novita.attach({run_id!r}, wait=False).log('stdout') fetches it\n"
    )


class OutputBuffer:
    """Decoded output of one run: ``stdout``, ``stderr`` and ``output`` (both, in the order
    they arrived), each kept up to ``limit`` characters; ``bytes_seen`` per stream."""

    def __init__(self, limit: int = DEFAULT_MAX_OUTPUT) -> None:
        self.limit = limit
        self.bytes_seen = {stream: 0 for stream in STREAMS}
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in STREAMS
        }
        self._parts: dict[str, list[str]] = {"stdout": [], "stderr": [], "output": []}
        self._sizes = {"stdout": 0, "stderr": 0, "output": 0}
        self.capped = False

    def add(self, stream: str, data: bytes, final: bool = False) -> str:
        """Take new bytes of a stream; returns the text they complete."""
        self.bytes_seen[stream] += len(data)
        text = self._decoders[stream].decode(data, final)
        for key in (stream, "output"):
            room = self.limit - self._sizes[key]
            if room <= 0:
                self.capped = self.capped or bool(text)
                continue
            kept = text[:room]
            self.capped = self.capped or len(kept) < len(text)
            self._parts[key].append(kept)
            self._sizes[key] += len(kept)
        return text

    def text(self, key: str) -> str:
        parts = self._parts[key]
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return parts[0] if parts else ""


class PrintSink:
    """Writes a run's output where a local cell's would go, up to ``limit`` characters, then
    one note saying where the rest is."""

    def __init__(
        self,
        note: str,
        limit: int = DEFAULT_MAX_OUTPUT,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.limit = limit
        self.shown = 0
        self._note = note
        self._out = stdout
        self._err = stderr
        self.noted = False

    def __call__(self, stream: str, text: str) -> None:
        target = (self._out or sys.stdout) if stream == "stdout" else (self._err or sys.stderr)
        room = self.limit - self.shown
        if room > 0:
            piece = text[:room]
            self.shown += len(piece)
            target.write(piece)
            target.flush()
            if len(piece) == len(text):
                return
        if not self.noted:
            self.noted = True
            note_to = self._err or sys.stderr
            note_to.write(self._note)
            note_to.flush()
