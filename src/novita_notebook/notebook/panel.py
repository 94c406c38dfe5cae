"""The live instance panel: rows fed by a background Watcher (only changed rows redrawn), whether
it is live, paused or disconnected, spend, guard warnings until resolved, and actions on the
selected instance whose buttons follow its state.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import html, views
from ..errors import NovitaError, ValidationError
from ..models import GONE_STATUSES, Instance
from ..vocabulary import status_word
from . import display as _display
from .card import allowed, done_line
from .display import Displayable, error_html
from .panel_state import (
    Connection,
    GuardNotices,
    LedgerStarts,
    Spend,
    spend_detail,
    spend_of,
    summary_text,
)

__all__ = ["InstancePanel", "Spend", "spend_detail", "spend_of", "summary_text"]

if TYPE_CHECKING:  # pragma: no cover
    from ..protocols import NovitaClient

#: Summary redraws per second at most when the watcher interval is shorter.
_MIN_TICK = 0.5
_HISTORY = 120  # spend samples kept for the sparkline
_FIRST_READ = 5.0  # seconds a new panel waits for its first look before it is shown
#: The rule name ``unguard`` takes for the rule a warning comes from.
_UNGUARD_RULE = {"idle_stop": "idle", "budget_per_hour": "budget", "budget_total": "budget"}
#: What an empty panel says.
EMPTY = (
    "No instances yet. Create one with %novita create NAME --gpu 4090 (or novita.create(...)); "
    "it shows up here by itself."
)


class InstancePanel(Displayable):
    """A live table of instances fed by a background Watcher; one HTML widget per row and only
    changed rows are redrawn. Start / Stop / Delete act on the selected instance."""

    def __init__(
        self,
        client: NovitaClient,
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
        self.history: deque[float] = deque(maxlen=_HISTORY)  # $/h per tick, for the sparkline
        self.connection = Connection()
        self.guard_notices = GuardNotices()
        self._starts = LedgerStarts(lambda: self.client.ledger)
        self._eta_rows: set[str] = set()  # ids whose row shows an ETA (redrawn each tick)
        self._lock = threading.RLock()
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None
        self._build_widgets()
        if start:
            self.start()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or resume) the background watcher that feeds the rows; the first look is
        awaited briefly, so the panel shows rows rather than an empty table."""
        if self.watcher is not None:
            return
        kwargs: dict[str, Any] = {"callbacks": [self.on_change]}
        if self.ids:
            kwargs["instances"] = self.ids
        if self.interval:
            kwargs["interval"] = self.interval
        self.connection.paused = False
        self.watcher = watcher = self.client.watch(**kwargs)
        watcher.tick_hooks.append(self._on_tick)
        guards = getattr(self.client, "guards", None)
        if guards is not None:  # the watcher enforces the guard; its events come here
            guards.listeners.append(self.on_guard_event)
        deadline = time.monotonic() + _FIRST_READ
        while watcher.ticks == 0 and not watcher.consecutive_errors:
            if time.monotonic() > deadline or not watcher.running:
                break
            time.sleep(0.01)
        self._ticking.clear()
        self._ticker = threading.Thread(target=self._tick_loop, daemon=True, name="novita-panel")
        self._ticker.start()
        self._draw_status()

    def stop(self) -> None:
        """Stop the background watcher: the panel keeps its last state and says it is paused
        (``start()`` resumes)."""
        watcher, self.watcher = self.watcher, None
        self.connection.paused = True
        self._ticking.set()
        listeners = getattr(getattr(self.client, "guards", None), "listeners", [])
        if self.on_guard_event in listeners:
            listeners.remove(self.on_guard_event)
        if watcher is not None:
            watcher.stop()
        ticker, self._ticker = self._ticker, None
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=5)
        self._draw_status()
        self.refresh_snapshot(force=True)

    def _tick_loop(self) -> None:
        """Redraw the summary each tick: spend so far grows while nothing else changes."""
        period = max(_MIN_TICK, float(self.interval or 1.0))
        while not self._ticking.wait(period):
            self.tick()

    def tick(self) -> None:
        """One summary refresh (what the background ticker does each period): spend, the
        connection state, warnings that no longer hold; rows on their way to running redraw
        too, as their ETA counts down."""
        with self._lock:
            self.history.append(self.spend_detail().per_hour)
            starting = [i for i in self.states.values() if i.id in self._eta_rows]
        self._settle_warnings()
        for instance in starting:
            self.apply(instance)
        self._draw_status()
        self.refresh_snapshot()

    def _on_tick(self, listing: list[dict[str, Any]]) -> None:
        """Watcher tick hook: a good read. Every watched instance is applied (a row redraws
        only if it changed), so a panel never misses one the events did not carry."""
        self.connection.read()
        watcher = self.watcher
        latest = dict(watcher.latest) if watcher is not None else {}
        for instance in latest.values():
            self.apply(instance)
        if not latest:
            self._draw_empty()

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
            if instance.status in GONE_STATUSES:
                self.guard_notices.forget(instance.id)
            markup = self._row(instance)
            if self.row_html.get(instance.id) == markup:
                return
            self.row_html[instance.id] = markup
            self.redraws += 1
            if self.widget is not None:
                self._draw_row(instance.id, markup)
        self._draw_status()
        self._draw_notices()

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

    @property
    def warning(self) -> dict[str, Any] | None:
        """The newest open guard warning (what Extend and Cancel answer)."""
        return self.guard_notices.current()

    @property
    def reclaims(self) -> dict[str, str]:
        return self.guard_notices.reclaims

    def spend(self) -> tuple[float, float]:
        return spend_of(self.live, starts=self.starts())

    def spend_detail(self) -> Spend:
        return spend_detail(self.live, starts=self.starts())

    def starts(self) -> dict[str, datetime]:
        """Creation times the ledger recorded for the panel's instances."""
        with self._lock:
            ids = list(self.states)
        return self._starts.of(ids)

    # -- rendering -----------------------------------------------------------------------------
    def _row(self, instance: Instance) -> str:
        """One row as its own table, in the header's fixed column layout (so they line up)."""
        return views.instance_table(
            [instance],
            header=False,
            notes={instance.id: self._guard_note(instance)},
            etas={instance.id: self.eta_of(instance)},
        )

    def eta_of(self, instance: Instance) -> str:
        """``ready in ~40 s`` (or ``no history yet: ~1 min …``) for an instance on its way to
        running, from the learned phase times (per phase in the tooltip); "" otherwise."""
        try:
            from ..waiting.learned import eta_text, instance_eta

            eta = instance_eta(instance)
        except Exception:  # noqa: BLE001 - an estimate must never break the panel
            eta = None
        with self._lock:
            (self._eta_rows.add if eta is not None else self._eta_rows.discard)(instance.id)
        words = eta_text(eta) if eta is not None else ""
        return views.eta_note(words.split(" (")[0], words)

    def _rules_of(self, instance_id: str) -> Any:
        guards = getattr(self.client, "guards", None)
        try:
            record = guards.store.get(instance_id) if guards is not None else None
        except Exception:  # noqa: BLE001 - an unreadable store must not break the panel
            return None
        return getattr(record, "rules", None)

    def _guard_note(self, instance: Instance) -> str:
        """``guarded · until 18:00 UTC`` from the guard's store (a file read, no HTTP), plus
        an announced spot reclaim."""
        if instance.status in GONE_STATUSES:
            return ""
        rules = self._rules_of(instance.id)
        describe = rules.describe() if rules is not None else ""
        deadline = (rules.stop_after or rules.delete_after) if rules is not None else None
        return views.guard_note(describe, deadline, self.reclaims.get(instance.id))

    # -- guard and spot events -----------------------------------------------------------------
    def on_guard_event(self, event_type: str, payload: dict[str, Any]) -> None:
        """Guard listener (watcher thread): keep the notice, offer extend/cancel on a
        warning, and redraw the row whose guard state changed."""
        instance_id = str(payload.get("instanceId") or "")
        self.guard_notices.add(event_type, dict(payload))
        with self._lock:
            instance = self.states.get(instance_id)
        if instance is not None:
            self.apply(instance)
        self._draw_notices()

    def _settle_warnings(self) -> None:
        with self._lock:
            states = dict(self.states)
        if self.guard_notices.settle(states, self._rules_of):
            for instance in states.values():
                self.apply(instance)
            self._draw_notices()

    def notices_html(self) -> str:
        from ..guard.events import event_text

        return self.guard_notices.html(event_text)

    def extend_warned(self, duration: str = "1h") -> None:
        """The Extend button: push back the deadline the current warning announces."""
        payload = self.warning
        if payload is None or payload.get("rule") not in ("stop_after", "delete_after"):
            self._say("No deadline warning to extend.")
            return
        rule = None if payload["rule"] == "stop_after" else "delete_after"
        self._guard_call("extend", payload, f"Extended by {duration}", duration, rule)

    def cancel_warned(self) -> None:
        """The Cancel button: remove the rule the current warning comes from."""
        payload = self.warning
        if payload is None:
            self._say("No guard warning to cancel.")
            return
        rule = str(payload.get("rule") or "")
        self._guard_call("unguard", payload, "Guard rule cancelled", _UNGUARD_RULE.get(rule, rule))

    def _guard_call(self, verb: str, payload: dict[str, Any], done: str, *args: Any) -> None:
        instance_id = str(payload.get("instanceId"))
        try:
            getattr(self.client, verb)(instance_id, *args)
        except NovitaError as error:
            self._say(error_html(error), raw=True)
            return
        self.guard_notices.resolve(instance_id, str(payload.get("rule") or ""))
        with self._lock:
            instance = self.states.get(instance_id)
        self._say(f"{done} for {payload.get('name') or instance_id}.")
        if instance is not None:
            self.apply(instance)
        self._draw_notices()

    def _say(self, words: str, raw: bool = False) -> None:
        if self.widget is not None:
            self.message.value = words if raw else html.text(words)

    def _summary_text(self) -> str:
        current = self.connection.state(self.watcher)[0] in ("live", "waiting")
        return summary_text(self.spend_detail(), len(self.live), current)

    def _status_html(self) -> str:
        """The connection state with its last good read, then spend and its sparkline."""
        values = list(self.history)
        line = ""
        if len(values) > 1:
            line = html.sparkline(
                values,
                label="spend per hour, latest minutes",
                low=html.format_money(min(values)),
                high=html.format_money(max(values), per_hour=True),
            )
        return (
            f"<div class='novita-summary' style='{html.FONT};padding:4px 8px;text-align:left'>"
            f"{self.connection.badge(self.watcher)}<br>"
            f"{html.text(self._summary_text())} {line}</div>"
        )

    def _empty_html(self) -> str:
        words = "None of the instances asked for is listed." if self.ids else EMPTY
        return html.muted(html.text(words))

    def _repr_html_(self) -> str:
        with self._lock:
            rows = sorted(self.states.values(), key=lambda i: i.name)
        notes = {i.id: self._guard_note(i) for i in rows}
        etas = {i.id: self.eta_of(i) for i in rows}
        table = views.instance_table(rows, notes=notes, etas=etas) if rows else self._empty_html()
        body = table + self._status_html() + self.notices_html()
        return html.frame("Instances", body, kind="panel")

    def __repr__(self) -> str:
        with self._lock:
            lines = [
                f"{i.name:<20} {status_word(i.status, failed=i.phase == 'failed'):<10} "
                f"{i.region or '—':<10} {i.id}"
                for i in sorted(self.states.values(), key=lambda i: i.name)
            ]
        state, words = self.connection.state(self.watcher)
        head = f"<InstancePanel {state}: {self._summary_text()}>"
        return "\n".join([head, f"  {words}", *(lines or [f"  {EMPTY}"])])

    # -- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        widgets = _display.ipywidgets_module()
        if widgets is None:
            return

        def flush() -> Any:  # no margins: header and rows start at the same x
            return widgets.Layout(width="auto", margin="0")

        self.header = widgets.HTML(views.instance_table([]), layout=flush())
        self.rows_box = widgets.VBox([], layout=flush())
        self.empty = widgets.HTML(self._empty_html(), layout=flush())
        self.summary = widgets.HTML(self._status_html(), layout=flush())
        self.selector = widgets.Dropdown(options=[], description="instance", disabled=True)
        self.start_button = widgets.Button(description="Start", icon="play", disabled=True)
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.delete_button = widgets.Button(description="Delete", icon="trash", disabled=True)
        self.confirm_button = widgets.Button(description="Confirm delete", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox([self.confirm_button, self.cancel_button])
        self.confirm_box.layout.display = "none"
        self.message = widgets.HTML("")
        self.card = widgets.HTML("")
        self.notices_box = widgets.HTML("", layout=flush())
        wide = widgets.Layout(width="auto")  # the whole label, never "Cancel guard r…"
        self.extend_button = widgets.Button(description="Extend 1h", icon="clock-o", layout=wide)
        self.unguard_button = widgets.Button(
            description="Cancel guard rule", icon="times", layout=widgets.Layout(width="auto")
        )
        self.extend_button.on_click(lambda _: self.extend_warned())
        self.unguard_button.on_click(lambda _: self.cancel_warned())
        self.guard_box = widgets.HBox([self.extend_button, self.unguard_button])
        self.guard_box.layout.display = "none"
        self.start_button.on_click(lambda _: self._act("start"))
        self.stop_button.on_click(lambda _: self._act("stop"))
        self.delete_button.on_click(lambda _: self._ask_delete())
        self.confirm_button.on_click(lambda _: self._confirm_delete())
        self.cancel_button.on_click(lambda _: self._cancel_delete())
        self.selector.observe(lambda _: self._on_select(), names="value")
        actions = widgets.HBox(
            [self.selector, self.start_button, self.stop_button, self.delete_button]
        )
        self.widget = _display.framed(
            widgets,
            [
                self.header,
                self.rows_box,
                self.empty,
                self.summary,
                self.notices_box,
                self.guard_box,
                actions,
                self.confirm_box,
                self.message,
                self.card,
            ],
            title="Instances",
        )

    def _draw_row(self, instance_id: str, markup: str) -> None:
        widgets = _display.ipywidgets_module()
        row = self.row_widgets.get(instance_id)
        if row is not None:
            row.value = markup  # only this row's trait changes
            if instance_id == self.selector.value:
                self._on_select()
            return
        row = widgets.HTML(markup, layout=widgets.Layout(width="auto", margin="0"))
        self.row_widgets[instance_id] = row
        self.rows_box.children = (*self.rows_box.children, row)
        self.empty.layout.display = "none"
        options = [(f"{i.name} ({i.id})", i.id) for i in self.states.values()]
        selected = self.selector.value
        self.selector.options = options
        self.selector.disabled = False
        ids = [value for _, value in options]
        # Keep the choice; else preselect the first row so the buttons work straight away.
        self.selector.value = selected if selected in ids else (ids[0] if ids else None)
        self._on_select()

    def _draw_empty(self) -> None:
        if self.widget is not None and not self.row_widgets:
            self.empty.value = self._empty_html()
            self.empty.layout.display = ""

    def _draw_notices(self) -> None:
        if self.widget is None:
            return
        markup = self.notices_html()
        if self.notices_box.value != markup:
            self.notices_box.value = markup
        warning = self.warning
        self.guard_box.layout.display = "" if warning is not None else "none"
        deadline = warning is not None and warning.get("rule") in ("stop_after", "delete_after")
        self.extend_button.layout.display = "" if deadline else "none"

    def _draw_status(self) -> None:
        if self.widget is None:
            return
        markup = self._status_html()
        if self.summary.value != markup:  # unchanged text sends nothing to the browser
            self.summary.value = markup

    def _on_select(self) -> None:
        """Redraw the selected instance's card and set the buttons by its state."""
        instance = self.selected()
        self.start_button.disabled = not allowed("start", instance)
        self.stop_button.disabled = not allowed("stop", instance)
        self.delete_button.disabled = not allowed("delete", instance)
        # An active red Delete only where there is something to delete.
        self.delete_button.button_style = "" if self.delete_button.disabled else "danger"
        if self.delete_button.disabled and self.pending_delete is not None:
            self._cancel_delete(quietly=True)
        detailed = self.details_of(instance) if instance is not None else None
        since = self.starts().get(detailed.id) if detailed is not None else None
        self.card.value = views.instance_card(detailed, since=since) if detailed is not None else ""

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
        """Select an instance by id or name (what a click on the dropdown does). Under the
        lock: a row being drawn has its state before its dropdown option."""
        with self._lock:
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
            done = getattr(self.client, verb)(instance.id)
        except NovitaError as error:
            self.message.value = error_html(error)
            return
        shown = done if isinstance(done, Instance) else instance
        self.message.value = html.text(done_line(verb, shown))
        if isinstance(done, Instance):
            self.apply(done)

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
            done = self.client.delete(target)
        except NovitaError as error:
            self.message.value = error_html(error)
            return
        name = self.states[target].name if target in self.states else target
        self.guard_notices.forget(target)
        self._draw_notices()
        self.message.value = html.text(f"Delete: {name} is being deleted.")
        if isinstance(done, Instance):
            self.apply(done)

    def _cancel_delete(self, quietly: bool = False) -> None:
        self.pending_delete = None
        self.confirm_box.layout.display = "none"
        if not quietly:
            self.message.value = "Delete cancelled."
