"""The bar of ``%novita push`` and ``pull``: bytes and files done of the total, the rate and
the file moving now, drawn at the first progress report (a push refused for a bad path draws
nothing); an HTML/text line where no widget frontend draws it.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import html
from . import display as _display
from .display import Displayable

_SCALE = 1000


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count:,} bytes"


class TransferProgress(Displayable):
    """Pass ``progress=bar.update`` to push/pull; ``finish(transfer)`` closes it (``None``:
    the transfer did not complete)."""

    def __init__(self, direction: str, name: str, source: str, destination: str | None) -> None:
        self.direction = direction
        self.name = name
        arrow = f"{source} → {name}:{destination or '~'}" if direction == "push" else (
            f"{name}:{source} → {destination or '.'}")  # fmt: skip
        self.route = arrow
        self.latest: Any = None
        self.state = "running"  # "done" or "stopped" at the end
        self.shown = False
        self._lock = threading.Lock()
        widgets = _display.ipywidgets_module()
        if widgets is not None:
            self.bar = widgets.IntProgress(value=0, min=0, max=_SCALE, bar_style="info")
            self.label = widgets.HTML(value=self._label_html())
            self.widget = widgets.HBox([self.bar, self.label])
            self.widget.add_class("novita-transfer")

    @property
    def fraction(self) -> float:
        if self.state == "done":
            return 1.0
        return self.latest.fraction if self.latest is not None else 0.0

    def update(self, progress: Any) -> None:
        """The library's progress callback (on the caller's thread)."""
        with self._lock:
            self.latest = progress
            first, self.shown = not self.shown, True
        if first:
            _display.show(self)
        self._refresh(False)

    def finish(self, transfer: Any) -> None:
        """The end: full and green when ``transfer`` completed, else left where it stopped."""
        with self._lock:
            self.state = "done" if transfer is not None else "stopped"
            drawn = self.shown
        if drawn:
            self._refresh(True)

    def _refresh(self, force: bool) -> None:
        if self.widget is not None:
            self.bar.value = round(self.fraction * _SCALE)
            self.bar.bar_style = {"done": "success", "stopped": "warning"}.get(self.state, "info")
            self.label.value = self._label_html()
        self.refresh_snapshot(force=force)

    def _words(self) -> str:
        p = self.latest
        if p is None:
            return "starting"
        rate = p.done_bytes / 1e6 / p.elapsed if p.elapsed > 0 else 0.0
        words = (
            f"{p.files_done}/{p.files_total} files, {_megabytes(p.done_bytes)} of "
            f"{_megabytes(p.total_bytes)}, {rate:.1f} MB/s, {p.elapsed:.0f} s"
        )
        if self.state == "running" and p.current:
            words += f" — {p.current}"
        elif self.state == "stopped":
            words += " — stopped"
        return words

    def _label_html(self) -> str:
        muted = f"<span style='color:{html.MUTED}'>{html.text(self._words())}</span>"
        return (
            f"<span style='{html.FONT}'><b>{html.text(self.direction)}</b> "
            f"{html.text(self.route)} {muted}</span>"
        )

    def _repr_html_(self) -> str:
        ink = html.PHASE_INK["failed" if self.state == "stopped" else "running"]
        bar = html.progress_bar(self.fraction, ink)
        return (
            f"<div class='novita-transfer' style='text-align:left'>{bar} {self._label_html()}</div>"
        )

    def __repr__(self) -> str:
        return f"{self.direction} {self.route}  {round(self.fraction * 100)}%  {self._words()}"
