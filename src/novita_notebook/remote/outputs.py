"""What one execution in a remote kernel produced: the kernel's IOPub messages folded into
notebook outputs (nbformat 4 dicts, ready for a notebook to display), with the text streams,
the result, rich displays and images at hand.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Execution", "OutputHook", "strip_ansi"]

#: Called with each output dict as it arrives (a notebook face draws it in the cell).
OutputHook = Callable[[dict[str, Any]], None]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


@dataclass
class Execution:
    """One cell run in a remote kernel. ``outputs`` are nbformat 4 output dicts in order;
    ``status`` is "ok", "error" or "aborted" (None while it runs); ``notes`` say what may be
    missing (outputs printed while the connection was down are not replayed)."""

    code: str
    kernel_id: str = ""
    execution_count: int | None = None
    status: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _pending_clear: bool = field(default=False, repr=False)

    # -- reading -------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def stdout(self) -> str:
        return self._stream("stdout")

    @property
    def stderr(self) -> str:
        return self._stream("stderr")

    def _stream(self, name: str) -> str:
        return "".join(
            o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == name
        )

    @property
    def result(self) -> dict[str, Any] | None:
        """The cell's value as a mime bundle (``{"text/plain": ...}``), or None."""
        for output in self.outputs:
            if output["output_type"] == "execute_result":
                return output["data"]
        return None

    @property
    def value(self) -> str | None:
        """The plain-text form of the cell's value (what a notebook prints after ``Out``)."""
        result = self.result
        return None if result is None else result.get("text/plain")

    @property
    def displays(self) -> list[dict[str, Any]]:
        """Rich outputs (display_data and the result), each a mime bundle."""
        kinds = ("display_data", "execute_result")
        return [o["data"] for o in self.outputs if o["output_type"] in kinds]

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """``(mime type, bytes)`` of every image shown (a matplotlib figure is image/png)."""
        found = []
        for bundle in self.displays:
            for mime in IMAGE_TYPES:
                if isinstance(bundle.get(mime), str):
                    found.append((mime, base64.b64decode(bundle[mime])))
        return found

    @property
    def error(self) -> dict[str, Any] | None:
        for output in self.outputs:
            if output["output_type"] == "error":
                return output
        return None

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else self.finished - self.started

    def __repr__(self) -> str:
        state = self.status or "running"
        seconds = f" {self.duration:.2f}s" if self.duration is not None else ""
        kinds = ", ".join(sorted({o["output_type"] for o in self.outputs})) or "no output"
        count = f"[{self.execution_count}] " if self.execution_count is not None else ""
        return f"<Execution {count}{state}{seconds}: {kinds}>"

    # -- folding IOPub messages in ------------------------------------------------------------
    def add(self, msg_type: str, content: dict[str, Any], hook: OutputHook | None) -> None:
        """Fold one IOPub message of this execution in (others are ignored)."""
        output: dict[str, Any] | None = None
        if msg_type == "stream":
            output = {"output_type": "stream", "name": content.get("name", "stdout"),
                      "text": content.get("text", "")}  # fmt: skip
        elif msg_type in ("display_data", "update_display_data"):
            output = {"output_type": "display_data", "data": content.get("data", {}),
                      "metadata": content.get("metadata", {})}  # fmt: skip
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id:
                output["transient"] = {"display_id": display_id}
            if msg_type == "update_display_data":
                self._update(display_id, output)
                output = dict(output, update=True)
                if hook is not None:
                    hook(output)
                return
        elif msg_type == "execute_result":
            self.execution_count = content.get("execution_count", self.execution_count)
            output = {"output_type": "execute_result", "execution_count": self.execution_count,
                      "data": content.get("data", {}), "metadata": content.get("metadata", {})}  # fmt: skip
        elif msg_type == "error":
            output = {"output_type": "error", "ename": content.get("ename", ""),
                      "evalue": content.get("evalue", ""),
                      "traceback": list(content.get("traceback", []))}  # fmt: skip
        elif msg_type == "execute_input":
            self.execution_count = content.get("execution_count", self.execution_count)
        elif msg_type == "clear_output":
            if content.get("wait"):
                self._pending_clear = True
            else:
                self.outputs.clear()
            if hook is not None:
                hook({"output_type": "clear_output", "wait": bool(content.get("wait"))})
        if output is not None:
            self._append(output)
            if hook is not None:
                hook(output)

    def _append(self, output: dict[str, Any]) -> None:
        if self._pending_clear:
            self.outputs.clear()
            self._pending_clear = False
        last = self.outputs[-1] if self.outputs else None
        if (
            output["output_type"] == "stream"
            and last is not None
            and last["output_type"] == "stream"
            and last["name"] == output["name"]
        ):
            last["text"] += output["text"]
            return
        self.outputs.append(dict(output))

    def _update(self, display_id: str | None, output: dict[str, Any]) -> None:
        for existing in self.outputs:
            if display_id and (existing.get("transient") or {}).get("display_id") == display_id:
                existing["data"], existing["metadata"] = output["data"], output["metadata"]

    def finish(self, status: str, execution_count: int | None = None) -> None:
        self.status = status
        if execution_count is not None:
            self.execution_count = execution_count
        self.finished = time.time()
