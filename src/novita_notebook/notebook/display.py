"""What every notebook widget shares: the lazy ipywidgets import, and a display that shows
the widget tree where a widget frontend exists and HTML/text everywhere else.
"""

from __future__ import annotations

from typing import Any

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


def fmt_money(amount: float | None) -> str:
    return "—" if amount is None else f"${amount:,.2f}"


def format_error(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    hint = getattr(error, "hint", None)
    return f"{type(error).__name__}: {message}" + (f" — {hint}" if hint else "")


def error_html(error: Exception) -> str:
    return f"<span style='color:#b02a37'>{html.text(format_error(error))}</span>"
