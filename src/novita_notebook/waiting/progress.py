"""Where a wait's progress goes: a callback, text lines, a live notebook display, or nowhere.
The live display lives in notebook/progress.py and is imported only inside a running kernel.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

from ..models import Instance
from ..validation import SILENT_PROGRESS, check_progress
from ..vocabulary import status_detail, status_word

ProgressCallback = Callable[[Instance, float, str], Any]


class ProgressSink(Protocol):
    """What a wait reports to: every poll (``update``) and the end (``finish``)."""

    def update(self, instance: Instance, elapsed: float, note: str | None = None) -> None: ...

    def finish(self, instance: Instance, elapsed: float, message: str) -> None: ...


class SilentProgress:
    """Reports nothing (scripts, and ``progress=False``)."""

    def update(self, instance: Instance, elapsed: float, note: str | None = None) -> None:
        return None

    def finish(self, instance: Instance, elapsed: float, message: str) -> None:
        return None


class TextProgress:
    """One printed line per status change (in words, or a new statusError warning), and one
    at the end."""

    def __init__(self) -> None:
        self._last: tuple[Any, ...] | None = None

    def update(self, instance: Instance, elapsed: float, note: str | None = None) -> None:
        seen = (instance.status, instance.warning)
        if seen == self._last:
            return
        self._last = seen
        word = status_word(instance.status, failed=instance.phase == "failed")
        detail = status_detail(instance.status)
        extra = f"  ({note})" if note else ""
        what = f"{word} ({detail})" if detail else word
        print(f"{instance.name or instance.id}  {what}  {elapsed:.1f} s{extra}")

    def finish(self, instance: Instance, elapsed: float, message: str) -> None:
        print(f"{instance.name or instance.id}  {message}  {elapsed:.1f} s")


class CallbackProgress:
    """Calls ``callback(instance, elapsed, phase)`` on every poll; the final state always
    reaches it (e.g. "removed" when the instance vanished from the API)."""

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self._last: str | None = None

    def update(self, instance: Instance, elapsed: float, note: str | None = None) -> None:
        self._last = instance.status
        self.callback(instance, elapsed, instance.phase)

    def finish(self, instance: Instance, elapsed: float, message: str) -> None:
        if instance.status != self._last:
            self.update(instance, elapsed)


def progress_sink(progress: Any, until: str = "running") -> ProgressSink:
    """The sink for a checked ``progress`` argument."""
    progress = check_progress(progress)
    if callable(progress):
        return CallbackProgress(progress)
    if progress is False or progress in SILENT_PROGRESS:
        return SilentProgress()
    if progress == "text":
        return TextProgress()
    live = progress_renderer(until, required=progress == "display")
    if live is not None:
        return live
    return TextProgress() if progress == "display" else SilentProgress()


def progress_renderer(until: str, *, required: bool = False) -> ProgressSink | None:
    """The notebook's live display when running inside a kernel (``required``: whenever
    IPython is importable), else None. IPython is never imported from here: only the notebook
    package does, and only once something else has loaded IPython."""
    if "IPython" not in sys.modules and not (required and _importable("IPython")):
        return None
    from ..notebook.progress import LiveProgress, in_notebook_kernel

    if required or in_notebook_kernel():
        return LiveProgress(until)
    return None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
