"""What every notebook widget shares: the lazy ipywidgets import, and a display that shows
the widget tree where a widget frontend exists and HTML/text everywhere else.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import html


def ipywidgets_module() -> Any:
    """ipywidgets, or None when it is not installed (then everything renders as HTML)."""
    try:
        import ipywidgets
    except ImportError:  # pragma: no cover - ipywidgets is a dependency, but stay usable
        return None
    return ipywidgets


class Displayable:
    """Shows the ipywidgets tree when a widget frontend is there, HTML otherwise."""

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
    """The instance DataFrame (``%novita instances``), drawn as a compact table that fits
    1,000 px; every operation on it gives a plain DataFrame with the usual display."""

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        return html.instances_overview(self.to_dict("records"), columns=len(self.columns))
