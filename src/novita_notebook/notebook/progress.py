"""The wait progress display: phase, elapsed time and the statuses seen so far; usable as
``Novita.wait(progress=display.update)`` from any thread.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import html
from ..models import Instance
from . import display as _display
from .display import Displayable

_PHASE_STEPS = ("provisioning", "starting", "running")


class WaitProgress(Displayable):
    """Phase, elapsed time and the statuses seen; pass ``progress=display.update`` to wait()."""

    def __init__(self, name: str = "", until: str = "running") -> None:
        self.name = name
        self.until = until
        self.statuses: list[str] = []
        self.phase = "provisioning"
        self.elapsed = 0.0
        self.done = False
        self._handle: Any = None
        self._published = ""  # the text last shown through the display handle
        self._lock = threading.Lock()
        widgets = _display.ipywidgets_module()
        if widgets is not None:
            self.bar = widgets.IntProgress(value=0, min=0, max=len(_PHASE_STEPS), description="")
            self.label = widgets.HTML(value=self._label_html())
            self.widget = widgets.HBox([self.bar, self.label])

    @property
    def last_status(self) -> str | None:
        return self.statuses[-1] if self.statuses else None

    def update(self, instance: Instance, elapsed: float, phase: str) -> None:
        """The wait() progress callback: may run on any thread, so only traits are touched."""
        with self._lock:
            status = getattr(instance, "status", None) or ""
            changed = bool(status) and status != self.last_status
            if changed:
                self.statuses.append(status)
            if getattr(instance, "name", None):
                self.name = instance.name
            self.phase = phase or self.phase
            self.elapsed = float(elapsed)
            self._refresh(changed)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._refresh(True)

    def _refresh(self, changed: bool) -> None:
        if self.widget is not None:
            step = _PHASE_STEPS.index(self.phase) + 1 if self.phase in _PHASE_STEPS else 0
            self.bar.value = step
            self.bar.bar_style = {"failed": "danger", "running": "success"}.get(self.phase, "")
            self.label.value = self._label_html()
        # Frontends without a widget manager (nbconvert, terminals) see the HTML/text
        # fallback, so it is re-published too, but only when the status changes.
        if changed and self._handle is not None:
            shown = repr(self)
            if shown != self._published:
                self._published = shown
                self._handle.update(self)

    def display(self) -> WaitProgress:
        """Show it now (with a display id, so HTML-only frontends get updates too)."""
        from IPython.display import display

        self._handle = display(self, display_id=True)
        self._published = repr(self)
        return self

    def _trail(self) -> str:
        return " → ".join(self.statuses) if self.statuses else "waiting for the first status"

    def _label_html(self) -> str:
        colour = html.PHASE_COLOURS.get(self.phase, "#ffffff")
        return (
            f"<b>{html.text(self.name)}</b> "
            f"<span style='background:{colour};padding:1px 6px'>{html.text(self.phase)}</span> "
            f"{html.text(self._trail())} ({self.elapsed:.1f} s)"
        )

    def _repr_html_(self) -> str:
        return f"<div>{self._label_html()}</div>"

    def __repr__(self) -> str:
        return f"{self.name}  {self._trail()}   ({self.elapsed:.1f} s, {self.phase})"
