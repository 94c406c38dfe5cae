"""How a Watcher shows itself in a notebook: a summary line and a table of its instances,
built only from html.py's and views.py's pieces (no IPython here: notebooks call ``_repr_html_`` themselves).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .. import html, views
from ..models import STATUS_ORDER, Instance, StatusChange
from .learned import eta_text

if TYPE_CHECKING:  # pragma: no cover
    from .watcher import Watcher


def watcher_html(
    watcher: Watcher,
    instances: list[Instance],
    changed: dict[str, datetime],
    events: list[StatusChange],
) -> str:
    """The summary (state, counts, pace, errors) above one row per watched instance."""
    etas = {}
    for instance in instances:
        eta = watcher.eta(instance.id)
        etas[instance.id] = eta_text(eta) if eta is not None else None
    return _summary(watcher, events) + _table(instances, changed, etas)


def _summary(watcher: Watcher, events: list[StatusChange]) -> str:
    by_phase: dict[str, int] = {}
    for event in events:
        by_phase[event.phase] = by_phase.get(event.phase, 0) + 1
    phase_counts = ", ".join(f"{k} {v}" for k, v in sorted(by_phase.items()))
    # A running watcher wears the running colour; a stopped one the stopped grey.
    state = html.badge(watcher.state, "running" if watcher.running else "stopped")
    parts = [
        f"<b>Watcher</b> {state}",
        f"{len(watcher.latest)} instances",
        f"{watcher.event_count} events" + (f" ({html.text(phase_counts)})" if phase_counts else ""),
        f"{watcher.ticks} ticks / {watcher.calls} list calls",
        f"every {watcher.interval:g} s",
    ]
    error = watcher.last_error
    if error is not None:
        label = "failing" if watcher.consecutive_errors else "last error"
        message = getattr(error, "message", str(error))
        parts.append(f"{label}: {html.text(type(error).__name__)} ({html.text(message)})")
    if watcher.errors:
        parts.append(f"{len(watcher.errors)} callback errors")
    return "<div>" + " &middot; ".join(parts) + "</div>"


def _table(
    instances: list[Instance], changed: dict[str, datetime], etas: dict[str, str | None]
) -> str:
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    instances = sorted(instances, key=lambda i: (order.get(i.status, len(order)), i.name))
    columns = (*views.INSTANCE_COLUMNS, "phase", "changed", "eta")
    rows = [
        (
            *views.instance_cells(i),
            html.text(i.phase),
            html.text(html.clock_time(changed[i.id]) if i.id in changed else None),
            html.text(etas.get(i.id)),
        )
        for i in instances
    ]
    return html.table(columns, rows, raw_columns=columns, nowrap_columns=("changed",))
