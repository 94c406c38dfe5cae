"""How every notebook view shows itself: the live widget where a widget frontend draws it, with
an HTML snapshot of the same view that exports, nbviewer and GitHub show; HTML/text elsewhere.

A widget shown in a kernel makes two outputs. The widget's own carries its ``text/html``
snapshot next to the widget view (what GitHub, and nbconvert without saved widget state,
show). Before it comes an export snapshot, for nbconvert with saved widget state, which draws
the widget view only by loading ipywidgets' renderer from a CDN: offline it is blank. The
export snapshot hides itself with CSS wherever a live widget is drawn next to it (JupyterLab,
Notebook 7, nbviewer) and is emptied as soon as a frontend reports a view of the widget, so
a saved notebook keeps one picture. Headless it stays, refreshed while the view changes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd

from .. import html, views

#: An export snapshot hides itself where a live widget is drawn in the output after it.
SNAPSHOT_STYLE = (
    "<style>.jp-OutputArea-child:has(.novita-snapshot)"
    ":has(+ .jp-OutputArea-child .lm-Widget.jupyter-widgets){display:none}</style>"
)
#: Snapshots are redrawn at most this often (seconds) unless a change insists.
REFRESH_EVERY = 0.5

#: id(object) -> the execution count in which a command already showed (or hid) it: the
#: displayhook of that same cell then shows nothing more.
_SHOWN: dict[int, int] = {}


def ipywidgets_module() -> Any:
    """ipywidgets, or None when it is not installed (then everything renders as HTML)."""
    try:
        import ipywidgets
    except ImportError:  # pragma: no cover - ipywidgets is a dependency, but stay usable
        return None
    return ipywidgets


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    return get_ipython()


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a frontend may draw widgets)."""
    shell = _shell()
    return shell is not None and hasattr(shell, "kernel")


def _count() -> int | None:
    shell = _shell()
    return getattr(shell, "execution_count", None) if shell is not None else None


def display_now(obj: Any) -> Any:
    """Show ``obj`` now, even when the cell assigns it (``panel = %novita watch``); the same
    cell's displayhook then shows nothing more. Returns ``obj``."""
    from IPython.display import display

    display(obj)
    return quiet(obj)


def quiet(obj: Any) -> Any:
    """Returned by a command that already said what happened in one line: the cell's
    displayhook shows nothing for it (the object itself is still the cell's value)."""
    count = _count()
    if count is not None:
        for stale in [key for key, seen in _SHOWN.items() if seen != count]:
            del _SHOWN[stale]  # marks of earlier cells
        _SHOWN[id(obj)] = count
    return obj


def already_shown(obj: Any) -> bool:
    """True once, when ``obj`` was shown (or quieted) by a command of this same cell."""
    count = _count()
    if count is not None and _SHOWN.get(id(obj)) == count:
        del _SHOWN[id(obj)]
        return True
    return False


class Displayable:
    """A view with one HTML rendering (``_repr_html_``, the snapshot), a text one
    (``__repr__``) and, when ipywidgets is there, a live ``widget``. Displaying it shows the
    widget with its snapshot (see the module docstring); ``refresh_snapshot()`` redraws the
    snapshot where no frontend draws the widget."""

    widget: Any = None

    def _repr_html_(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self), "text/html": self._repr_html_()}
        if self.widget is not None:
            widget_bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
            if widget_bundle:
                bundle.update({k: v for k, v in widget_bundle.items() if k != "text/plain"})
        return bundle

    def _ipython_display_(self) -> None:
        if not already_shown(self):
            show(self)

    def refresh_snapshot(self, force: bool = False) -> None:
        """Redraw the snapshots of this view (at most every REFRESH_EVERY seconds unless
        ``force``), unless a frontend draws the live widget."""
        state = _state(self)
        with state.lock:
            if state.live or not state.handles:
                return
            now = time.monotonic()
            if not force and now - state.refreshed < REFRESH_EVERY:
                return
            state.refreshed = now
            markup, plain = self._repr_html_(), repr(self)
            if (markup, plain) == state.published:
                return
            state.published = (markup, plain)
            # a terminal prints every update anew: only what insists (a new status) goes there
            targets = [(h, k) for h, k in state.handles if force or in_kernel()]
        for handle, kind in targets:
            handle.update(_snapshot_bundle(kind, markup, plain), raw=True)


class _ShowState:
    """The snapshot outputs of one view and whether a frontend draws its widget."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.handles: list[tuple[Any, str]] = []  # (DisplayHandle, "export" | "plain")
        self.live = False
        self.tracking = False
        self.refreshed = 0.0
        self.published: tuple[str, str] = ("", "")


def _state(view: Any) -> _ShowState:
    state = view.__dict__.get("_show_state")
    if state is None:
        state = view.__dict__.setdefault("_show_state", _ShowState())
    return state


def _snapshot_bundle(kind: str, markup: str, plain: str) -> dict[str, str]:
    if kind == "export":
        # no text/plain: text exports already get the widget output's own
        return {
            "text/plain": "",
            "text/html": f"{SNAPSHOT_STYLE}<div class='novita-snapshot'>{markup}</div>",
        }
    return {"text/plain": plain, "text/html": markup}


def show(view: Displayable) -> None:
    """Display ``view``: in a kernel with widgets, the export snapshot and then the widget
    output (view, snapshot, text); elsewhere its HTML and text, kept up to date."""
    from IPython.display import display

    state = _state(view)
    markup, plain = view._repr_html_(), repr(view)
    if _shell() is None:  # plain Python: the text is all there is (IPython would print it)
        print(plain)
        return
    widget = view.widget if in_kernel() else None
    with state.lock:
        state.published = (markup, plain)
        if widget is None:
            handle = display(_snapshot_bundle("plain", markup, plain), raw=True, display_id=True)
            state.handles.append((handle, "plain"))
            return
        if not state.live:
            handle = display(_snapshot_bundle("export", markup, plain), raw=True, display_id=True)
            state.handles.append((handle, "export"))
        _track_views(view, widget, state)
    bundle = dict(widget._repr_mimebundle_() or {})
    bundle.update({"text/plain": plain, "text/html": markup})
    display(bundle, raw=True)


def _track_views(view: Any, widget: Any, state: _ShowState) -> None:
    """Count the frontend's views of ``widget`` (ipywidgets' ``_view_count``); at the first
    one the export snapshots are emptied: a live frontend draws the widget itself."""
    if state.tracking:
        return
    state.tracking = True
    if getattr(widget, "_view_count", None) is None:
        widget._view_count = 0

    def seen(change: dict[str, Any]) -> None:
        if not change.get("new"):
            return
        with state.lock:
            state.live = True
            exports = [handle for handle, kind in state.handles if kind == "export"]
            state.handles = [(h, k) for h, k in state.handles if k != "export"]
        for handle in exports:
            handle.update({"text/plain": "", "text/html": ""}, raw=True)

    widget.observe(seen, names="_view_count")


def format_error(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    hint = getattr(error, "hint", None)
    return f"{type(error).__name__}: {message}" + (f" — {hint}" if hint else "")


ERROR_STYLE = "color:var(--jp-error-color1, #d32f2f)"


def error_html(error: Exception) -> str:
    """An error as one line in the theme's error colour, with a warning sign (not colour alone)."""
    return problem_html(format_error(error))


def problem_html(message: str) -> str:
    return f"<span style='{ERROR_STYLE}'>\u26a0 {html.text(message)}</span>"


def framed(widgets: Any, children: list[Any], title: str | None = None) -> Any:
    """The shared look of the panel, browser and form: a titled VBox with the theme's border."""
    heading = [widgets.HTML(f"<b style='{html.FONT}'>{html.text(title)}</b>")] if title else []
    box = widgets.VBox(
        [*heading, *children],
        layout=widgets.Layout(
            border="1px solid var(--jp-border-color2, #e0e0e0)", padding="4px 8px", margin="2px 0"
        ),
    )
    box.add_class("novita-widget")
    return box


class InstancesFrame(pd.DataFrame):
    """An instance DataFrame (``%novita instances``, ``%novita mine``), drawn as a compact
    table that fits 1,000 px; every operation on it gives a plain DataFrame."""

    _metadata = ["caption"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        if len(self) == 0:
            return html.muted(
                "No instances. <code>%novita create NAME --gpu 4090</code> makes one; it is "
                "listed here next time."
            )
        caption = getattr(self, "caption", "") or ""
        return views.instances_overview(
            self.to_dict("records"), columns=len(self.columns), caption=caption
        )


class RunsFrame(pd.DataFrame):
    """The ``runs()`` frame (``%novita runs``), drawn as the runs table with the call that
    follows each run; every operation on it gives a plain DataFrame."""

    _metadata = ["caption"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        return views.runs_overview(self.to_dict("records"), caption=getattr(self, "caption", ""))
