"""Wait progress in notebooks: ``WaitProgress`` (a bar, usable as ``wait(progress=p.update)``)
and ``LiveProgress``, the live line ``wait()`` draws by itself inside a kernel.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from .. import html
from ..models import Instance
from . import display as _display
from .display import Displayable

_PHASE_STEPS = ("provisioning", "starting", "running")
# The phases a wait walks through, by its target: the bar is full at the last one.
_STEPS_BY_TARGET = {
    "running": _PHASE_STEPS,
    "reachable": _PHASE_STEPS,
    "exited": ("stopping", "stopped"),
    "removed": ("removing", "removed"),
}


class WaitProgress(Displayable):
    """Phase, elapsed time and the statuses seen; pass ``progress=display.update`` to wait()."""

    def __init__(self, name: str = "", until: str = "running") -> None:
        self.name = name
        self.until = until
        self.steps = _STEPS_BY_TARGET.get(until, _PHASE_STEPS)
        self.statuses: list[str] = []
        self.phase = "provisioning"
        self.elapsed = 0.0
        #: the expected remaining time, e.g. "ready in ~40 s (creating ~3 s, pulling ~37 s)"
        #: or "no history yet: ~1 min by the documented times"; "" when none applies
        self.eta = ""
        self.done = False
        self._handle: Any = None
        self._published = ""  # the text last shown through the display handle
        self._show_on_update = False  # display() asked; drawn with the first status
        self._lock = threading.Lock()
        widgets = _display.ipywidgets_module()
        if widgets is not None:
            self.bar = widgets.IntProgress(value=0, min=0, max=len(self.steps), description="")
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
            self.eta = _eta_of(instance)
            if self._show_on_update:
                self._show_on_update = False
                self._show()
            self._refresh(changed)

    def finish(self) -> None:
        with self._lock:
            self._show_on_update = False  # never drawn: the wait ended before any status
            self.done = True
            self.eta = ""
            self._refresh(True)

    @property
    def reached(self) -> bool:
        """True once the wait's target phase (the last step) was seen."""
        return self.phase == self.steps[-1]

    def _refresh(self, changed: bool) -> None:
        if self.widget is not None:
            step = self.steps.index(self.phase) + 1 if self.phase in self.steps else 0
            self.bar.value = step
            # A colour for every state: grey would read as "nothing is happening".
            if self.phase == "failed":
                self.bar.bar_style = "danger"
            else:
                self.bar.bar_style = "success" if self.reached else "info"
            self.label.value = self._label_html()
        # Frontends without a widget manager (nbconvert, terminals) see the HTML/text
        # fallback, so it is re-published too, but only when the status changes.
        if changed and self._handle is not None:
            shown = repr(self)
            if shown != self._published:
                self._published = shown
                self._handle.update(self)

    def display(self) -> WaitProgress:
        """Show it with the first status (with a display id, so HTML-only frontends get
        updates too): a wait refused for a bad argument then draws nothing before its error."""
        with self._lock:
            if self._handle is None:
                self._show_on_update = True
        return self

    def _show(self) -> None:
        from IPython.display import display

        self._handle = display(self, display_id=True)
        self._published = repr(self)

    def _trail(self) -> str:
        return " → ".join(self.statuses) if self.statuses else "waiting for the first status"

    def _label_html(self) -> str:
        colour = html.PHASE_COLOURS.get(self.phase, "#ffffff")
        eta = f" &mdash; {html.text(self.eta)}" if self.eta else ""
        return (
            f"<b>{html.text(self.name)}</b> "
            f"<span style='background:{colour};padding:1px 6px'>{html.text(self.phase)}</span> "
            f"{html.text(self._trail())} ({self.elapsed:.1f} s){eta}"
        )

    def _repr_html_(self) -> str:
        return f"<div>{self._label_html()}</div>"

    def __repr__(self) -> str:
        eta = f"  {self.eta}" if self.eta else ""
        return f"{self.name}  {self._trail()}   ({self.elapsed:.1f} s, {self.phase}){eta}"


def _eta_of(instance: Any) -> str:
    """The instance's ETA as text (from the wait or watcher following it, else its history;
    see ``waiting.learned.instance_eta``); "" off the way to running or on any trouble."""
    from ..waiting.learned import eta_text, instance_eta

    try:
        eta = instance_eta(instance)
    except Exception:  # noqa: BLE001 - an estimate must never break the bar
        return ""
    return "" if eta is None else eta_text(eta)


# ---------------------------------------------------------------------------------------------
# The live line wait() draws by itself inside a kernel
# ---------------------------------------------------------------------------------------------


def in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel. IPython is looked up only if something imported it."""
    if "IPython" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - a half-installed IPython
        return False
    shell = get_ipython()
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or hasattr(shell, "kernel")


class _Line:
    """One rendering of the live line: HTML for notebooks, readable text everywhere else."""

    def __init__(self, markup: str, plain: str) -> None:
        self.markup = markup
        self.plain = plain

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return self.plain


class LiveProgress:
    """The statuses a wait went through, its elapsed time and last note, redrawn in place."""

    def __init__(self, until: str = "running") -> None:
        self.until = until
        self.trail: list[str] = []
        self._handle: Any = None

    def update(self, instance: Instance, elapsed: float, note: str | None = None) -> None:
        if not self.trail or self.trail[-1] != instance.status:
            self.trail.append(instance.status)
        self._show(instance, elapsed, note)

    def finish(self, instance: Instance, elapsed: float, message: str) -> None:
        # The final status (e.g. "removed" for an instance gone from the API) is shown too.
        if not self.trail or self.trail[-1] != instance.status:
            self.trail.append(instance.status)
        self._show(instance, elapsed, message)

    def render(self, instance: Instance, elapsed: float, note: str | None) -> _Line:
        name = instance.name or instance.id
        steps = [html.text(s) for s in self.trail[:-1]]
        steps.append(html.badge(instance.status or "unknown", instance.phase))
        tail = f" &mdash; {html.text(note)}" if note else ""
        markup = (
            f"<div><b>{html.text(name)}</b>&nbsp; "
            f"{' &rarr; '.join(steps)} &nbsp;({elapsed:.0f} s){tail}</div>"
        )
        plain = f"{name}  {' → '.join(self.trail)}  ({elapsed:.0f} s)"
        return _Line(markup, plain + (f"  {note}" if note else ""))

    def _show(self, instance: Instance, elapsed: float, note: str | None) -> None:
        from IPython.display import display

        line = self.render(instance, elapsed, note)
        if self._handle is None:
            self._handle = display(line, display_id=True)
        else:
            self._handle.update(line)
