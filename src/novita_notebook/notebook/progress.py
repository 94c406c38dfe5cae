"""Wait progress in notebooks: ``WaitProgress`` (a bar that moves with the phase and the ETA,
usable as ``wait(progress=p.update)``) and ``LiveProgress``, the line ``wait()`` draws itself.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from .. import html
from ..models import Instance
from ..vocabulary import status_detail, status_word
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
_SCALE = 1000  # bar units: fine enough that the bar creeps between polls
_CEILING = 0.95  # an ETA never fills the bar: only the target does
_CREEP = 0.5  # seconds between the bar's own moves while a wait polls sparsely
_ABANDONED = 600.0  # no update for this long: the bar stops moving by itself


def words_trail(statuses: list[str]) -> list[str]:
    """The statuses a wait saw as the words people use, each once in a row
    (``toCreate, creating, pulling, running`` → ``creating, running``)."""
    out: list[str] = []
    for status in statuses:
        word = status_word(status)
        if not out or out[-1] != word:
            out.append(word)
    return out


class WaitProgress(Displayable):
    """Phase, elapsed time, the words seen and the expected time left; pass
    ``progress=display.update`` to wait(). The bar moves with the ETA between polls."""

    def __init__(self, name: str = "", until: str = "running") -> None:
        self.name = name
        self.until = until
        self.steps = _STEPS_BY_TARGET.get(until, _PHASE_STEPS)
        self.statuses: list[str] = []  # the API's statuses as seen (the words are derived)
        self.phase = "provisioning"
        self.elapsed = 0.0
        #: the expected remaining time, e.g. "ready in ~40 s (creating ~3 s, pulling ~37 s)"
        #: or "no history yet: ~1 min by the documented times"; "" when none applies
        self.eta = ""
        self.remaining: float | None = None  # seconds the ETA expects, at ``_updated``
        self.done = False
        self.fraction = 0.0  # of the bar, never going back
        self._updated = time.monotonic()
        self._show_on_update = False  # display() asked; drawn with the first status
        self._lock = threading.Lock()
        self._creeping: threading.Thread | None = None
        self._stop_creep = threading.Event()
        widgets = _display.ipywidgets_module()
        if widgets is not None:
            self.bar = widgets.IntProgress(value=0, min=0, max=_SCALE, description="")
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
            self.eta, self.remaining = _eta_of(instance)
            self._updated = time.monotonic()
            show = self._show_on_update
            self._show_on_update = False
            self._advance()
        if show:
            _display.show(self)
        self._start_creeping()
        self._refresh(changed)

    def finish(self) -> None:
        with self._lock:
            self._show_on_update = False  # never drawn: the wait ended before any status
            self.done = True
            self.eta, self.remaining = "", None
            self._advance()
        self._stop_creep.set()
        self._refresh(True)

    @property
    def reached(self) -> bool:
        """True once the wait's target phase (the last step) was seen."""
        return self.phase == self.steps[-1]

    def _advance(self, now: float | None = None) -> None:
        """Move the bar (lock held): full at the target; else the share of the expected time
        already spent (elapsed / (elapsed + ETA), at most 95 %), or, without an ETA, the
        share of the phases passed; it never moves back."""
        if self.reached:
            self.fraction = 1.0
            return
        if self.remaining is not None:
            spent = self.elapsed + ((now or time.monotonic()) - self._updated)
            left = max(0.0, self.remaining - ((now or time.monotonic()) - self._updated))
            share = spent / (spent + left) if spent + left > 0 else _CEILING
        else:
            index = self.steps.index(self.phase) if self.phase in self.steps else 0
            share = (index + 0.5) / len(self.steps)
        self.fraction = max(self.fraction, min(_CEILING, share))

    def _start_creeping(self) -> None:
        """Between sparse polls the bar keeps moving along the ETA."""
        if self.widget is None or self._creeping is not None:
            return

        def creep() -> None:
            while not self._stop_creep.wait(_CREEP):
                with self._lock:
                    idle = time.monotonic() - self._updated
                    # done, or nothing left to move, or a wait that stopped calling without
                    # finish(): the thread ends
                    if self.done or self.fraction >= _CEILING or idle > _ABANDONED:
                        self._creeping = None
                        return
                    self._advance()
                self._refresh(False)

        self._creeping = threading.Thread(target=creep, daemon=True, name="novita-progress")
        self._creeping.start()

    def _refresh(self, changed: bool) -> None:
        if self.widget is not None:
            self.bar.value = round(self.fraction * _SCALE)
            # A colour for every state: grey would read as "nothing is happening".
            if self.phase == "failed":
                self.bar.bar_style = "danger"
            else:
                self.bar.bar_style = "success" if self.reached else "info"
            self.label.value = self._label_html()
        # Frontends without a widget manager (nbconvert, terminals) see the snapshot, redrawn
        # at each new status (and at most twice a second in between).
        self.refresh_snapshot(force=changed)

    def display(self) -> WaitProgress:
        """Show it with the first status: a wait refused for a bad argument then draws
        nothing before its error."""
        with self._lock:
            self._show_on_update = True
        return self

    def _trail(self) -> str:
        if not self.statuses:
            return "waiting for the first status"
        trail = " → ".join(words_trail(self.statuses))
        detail = status_detail(self.last_status)
        return f"{trail} ({detail})" if detail and not self.reached else trail

    def _label_html(self) -> str:
        """``name [● running] creating → running, 12 s — ready in ~40 s``: the badge says where
        it is now, the muted part how it got there."""
        if not self.statuses:
            how = html.text(self._trail())
            state = ""
        else:
            word = status_word(self.last_status, failed=self.phase == "failed")
            state = html.badge(word, self.phase, f"API status: {self.last_status}")
            words = words_trail(self.statuses)
            detail = status_detail(self.last_status) if not self.reached else ""
            steps = " → ".join(words) if len(words) > 1 else ""
            how = html.text(", ".join(part for part in (steps, detail) if part))
        eta = f" &mdash; {html.text(self.eta)}" if self.eta else ""
        seconds = f"{self.elapsed:.0f} s"
        muted = f"<span style='color:{html.MUTED}'>{how + ', ' if how else ''}{seconds}</span>"
        return (
            f"<span style='{html.FONT}'><b>{html.text(self.name)}</b> {state} {muted}{eta}</span>"
        )

    def _repr_html_(self) -> str:
        ink = html.PHASE_INK["failed" if self.phase == "failed" else "running"]
        bar = html.progress_bar(self.fraction, ink)
        return (
            f"<div class='novita-progress' style='text-align:left'>{bar} {self._label_html()}</div>"
        )

    def __repr__(self) -> str:
        eta = f"  {self.eta}" if self.eta else ""
        word = status_word(self.last_status, failed=self.phase == "failed")
        return f"{self.name}  {self._trail()}   ({self.elapsed:.0f} s, {word}){eta}"


def _eta_of(instance: Any) -> tuple[str, float | None]:
    """The instance's ETA as (text, seconds) from the wait or watcher following it, else its
    history (see ``waiting.learned.instance_eta``); ("", None) off the way to running or on
    any trouble."""
    from ..waiting.learned import eta_text, instance_eta

    try:
        eta = instance_eta(instance)
    except Exception:  # noqa: BLE001 - an estimate must never break the bar
        return "", None
    if eta is None or not eta[1]:
        return "", None
    return eta_text(eta), max(0.0, float(eta[0]))


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
    """The words a wait went through, its elapsed time and last note, redrawn in place."""

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
        words = words_trail(self.trail)
        steps = [html.text(word) for word in words[:-1]]
        steps.append(html.status_badge(instance.status, instance.phase))
        tail = f" &mdash; {html.text(note)}" if note else ""
        markup = (
            f"<div style='text-align:left'><b>{html.text(name)}</b>&nbsp; "
            f"{' &rarr; '.join(steps)} &nbsp;({elapsed:.0f} s){tail}</div>"
        )
        plain = f"{name}  {' → '.join(words)}  ({elapsed:.0f} s)"
        return _Line(markup, plain + (f"  {note}" if note else ""))

    def _show(self, instance: Instance, elapsed: float, note: str | None) -> None:
        from IPython.display import display

        line = self.render(instance, elapsed, note)
        if self._handle is None:
            self._handle = display(line, display_id=True)
        else:
            self._handle.update(line)
