"""The live instance panel: rows fed by a background Watcher (only changed rows redrawn),
spend per hour and so far, actions on the selected instance and its connection card.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from .. import html
from ..errors import NovitaError, ValidationError
from ..models import BILLED_STATUSES, GONE_STATUSES, Instance
from . import display as _display
from .display import Displayable, error_html, fmt_money


def spend_of(instances: list[Instance], now: datetime | None = None) -> tuple[float, float]:
    """(USD per hour now, USD spent so far) over live instances: billed statuses count their
    price per hour, time so far runs from the last start (or creation) to now."""
    now = now or datetime.now(UTC)
    per_hour = 0.0
    so_far = 0.0
    for inst in instances:
        price = inst.price_per_hour or 0.0
        if inst.status not in BILLED_STATUSES:
            continue
        per_hour += price
        since = inst.started_at or inst.created_at
        if since is not None:
            so_far += price * max(0.0, (now - since).total_seconds()) / 3600.0
    return per_hour, so_far


class InstancePanel(Displayable):
    """A live table of instances fed by a background Watcher; one HTML widget per row and only
    changed rows are redrawn. Start / Stop / Delete act on the selected instance."""

    def __init__(
        self,
        client: Any,
        instances: list[str] | None = None,
        interval: float | None = None,
        start: bool = True,
    ) -> None:
        self.client = client
        self.ids = list(instances) if instances else None
        self.interval = interval
        self.states: dict[str, Instance] = {}
        self.row_html: dict[str, str] = {}
        self.row_widgets: dict[str, Any] = {}
        self.details: dict[str, Instance] = {}
        self.redraws = 0  # row redraws, for tests and the curious
        self.watcher: Any = None
        self.pending_delete: str | None = None
        self._lock = threading.RLock()
        self._build_widgets()
        if start:
            self.start()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background watcher that feeds the rows."""
        if self.watcher is not None:
            return
        kwargs: dict[str, Any] = {"callbacks": [self.on_change]}
        if self.ids:
            kwargs["instances"] = self.ids
        if self.interval:
            kwargs["interval"] = self.interval
        self.watcher = self.client.watch(**kwargs)

    def stop(self) -> None:
        """Stop the background watcher; the panel keeps its last state."""
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()

    # -- state ---------------------------------------------------------------------------------
    def on_change(self, event: Any) -> None:
        """Watcher callback (background thread): update state, redraw only the changed row."""
        instance = getattr(event, "instance", None)
        if instance is None:
            return
        self.apply(instance)

    def apply(self, instance: Instance) -> None:
        with self._lock:
            self.states[instance.id] = instance
            markup = self._row(instance)
            if self.row_html.get(instance.id) == markup:
                return
            self.row_html[instance.id] = markup
            self.redraws += 1
            if self.widget is not None:
                self._draw_row(instance.id, markup)
                self._draw_summary()

    def refresh(self) -> None:
        """Fetch every shown instance now (outside the watcher's schedule)."""
        for instance_id in list(self.ids or self.states):
            try:
                self.apply(self.client.instance(instance_id))
            except NovitaError:
                continue

    @property
    def live(self) -> list[Instance]:
        with self._lock:
            return [i for i in self.states.values() if i.status not in GONE_STATUSES]

    def spend(self) -> tuple[float, float]:
        return spend_of(self.live)

    # -- rendering -----------------------------------------------------------------------------
    _COLUMNS = html.INSTANCE_COLUMNS

    @staticmethod
    def _cells(instance: Instance) -> list[str]:
        return html.instance_cells(instance)

    def _row(self, instance: Instance) -> str:
        colour = html.PHASE_COLOURS.get(instance.phase, "#ffffff")
        cells = "".join(
            f"<td style='padding:2px 8px;width:{w}'>{c}</td>"
            for c, w in zip(
                self._cells(instance), ("16%", "14%", "14%", "20%", "8%", "28%"), strict=True
            )
        )
        return f"<table style='width:100%;table-layout:fixed;background:{colour}'><tr>{cells}</tr></table>"

    def _summary_text(self) -> str:
        per_hour, so_far = self.spend()
        return (
            f"{len(self.live)} live instance(s) · {fmt_money(per_hour)}/h now · "
            f"≈{fmt_money(so_far)} so far"
        )

    def _repr_html_(self) -> str:
        with self._lock:
            rows = [[*self._cells(i)] for i in sorted(self.states.values(), key=lambda i: i.name)]
        table = html.table(self._COLUMNS, rows, raw_columns=self._COLUMNS)
        return f"<div>{table}<p>{html.text(self._summary_text())}</p></div>"

    def __repr__(self) -> str:
        with self._lock:
            lines = [
                f"{i.name:<20} {i.status:<10} {i.region or '—':<10} {i.id}"
                for i in sorted(self.states.values(), key=lambda i: i.name)
            ]
        watching = "watching" if self.watcher is not None else "stopped"
        return "\n".join([f"<InstancePanel {watching}: {self._summary_text()}>", *lines])

    # -- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        widgets = _display.ipywidgets_module()
        if widgets is None:
            return
        header = "".join(f"<th style='text-align:left'>{c}</th>" for c in self._COLUMNS)
        self.header = widgets.HTML(f"<table style='width:100%'><tr>{header}</tr></table>")
        self.rows_box = widgets.VBox([])
        self.summary = widgets.HTML(self._summary_text())
        self.selector = widgets.Dropdown(options=[], description="instance")
        self.start_button = widgets.Button(description="Start", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.delete_button = widgets.Button(
            description="Delete", icon="trash", button_style="danger"
        )
        self.confirm_button = widgets.Button(description="Confirm delete", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox([self.confirm_button, self.cancel_button])
        self.confirm_box.layout.display = "none"
        self.message = widgets.HTML("")
        self.card = widgets.HTML("")
        self.start_button.on_click(lambda _: self._act("start"))
        self.stop_button.on_click(lambda _: self._act("stop"))
        self.delete_button.on_click(lambda _: self._ask_delete())
        self.confirm_button.on_click(lambda _: self._confirm_delete())
        self.cancel_button.on_click(lambda _: self._cancel_delete())
        self.selector.observe(lambda _: self._draw_card(), names="value")
        actions = widgets.HBox(
            [self.selector, self.start_button, self.stop_button, self.delete_button]
        )
        self.widget = widgets.VBox(
            [
                self.header,
                self.rows_box,
                self.summary,
                actions,
                self.confirm_box,
                self.message,
                self.card,
            ]
        )

    def _draw_row(self, instance_id: str, markup: str) -> None:
        widgets = _display.ipywidgets_module()
        row = self.row_widgets.get(instance_id)
        if row is not None:
            row.value = markup  # only this row's trait changes
            if instance_id == self.selector.value:
                self._draw_card()
            return
        row = widgets.HTML(markup)
        self.row_widgets[instance_id] = row
        self.rows_box.children = (*self.rows_box.children, row)
        options = [(f"{i.name} ({i.id})", i.id) for i in self.states.values()]
        selected = self.selector.value
        self.selector.options = options
        if selected in dict(options).values():
            self.selector.value = selected
        self._draw_card()

    def _draw_summary(self) -> None:
        self.summary.value = html.text(self._summary_text())

    def _draw_card(self) -> None:
        instance = self.states.get(self.selector.value) if self.selector.value else None
        detailed = self.details_of(instance) if instance is not None else None
        self.card.value = html.instance_card(detailed) if detailed is not None else ""

    def details_of(self, instance: Instance) -> Instance:
        """The full instance (list items lack SSH/Jupyter details), re-fetched on status change."""
        known = self.details.get(instance.id)
        if known is not None and known.status == instance.status:
            return known
        if instance.status in GONE_STATUSES:
            return instance
        try:
            known = self.client.instance(instance.id)
        except NovitaError:
            return instance
        self.details[instance.id] = known
        return known

    def selected(self) -> Instance | None:
        if self.widget is None or not self.selector.value:
            return None
        return self.states.get(self.selector.value)

    def select(self, id_or_name: str) -> None:
        """Select an instance by id or name (what a click on the dropdown does)."""
        for instance in self.states.values():
            if id_or_name in (instance.id, instance.name):
                self.selector.value = instance.id
                return
        raise ValidationError(f"no instance {id_or_name!r} in this panel", field="instance")

    def _act(self, verb: str) -> None:
        instance = self.selected()
        if instance is None:
            self.message.value = "Select an instance first."
            return
        try:
            getattr(self.client, verb)(instance.id)
        except NovitaError as error:
            self.message.value = error_html(error)
            return
        self.message.value = html.text(f"{verb.capitalize()} requested for {instance.name}.")

    def _ask_delete(self) -> None:
        instance = self.selected()
        if instance is None:
            self.message.value = "Select an instance first."
            return
        self.pending_delete = instance.id
        self.confirm_box.layout.display = ""
        self.message.value = html.text(
            f"Delete {instance.name} ({instance.id})? Its disk is lost. Confirm or cancel."
        )

    def _confirm_delete(self) -> None:
        target, self.pending_delete = self.pending_delete, None
        self.confirm_box.layout.display = "none"
        if target is None:
            return
        try:
            self.client.delete(target)
        except NovitaError as error:
            self.message.value = error_html(error)
            return
        name = self.states[target].name if target in self.states else target
        self.message.value = html.text(f"Delete requested for {name}.")

    def _cancel_delete(self) -> None:
        self.pending_delete = None
        self.confirm_box.layout.display = "none"
        self.message.value = "Delete cancelled."
