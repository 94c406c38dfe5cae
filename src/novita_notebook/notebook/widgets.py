"""Notebook widgets: product browser, live instance panel, create form and wait progress.
ipywidgets is imported lazily; without it (or a widget frontend) each object shows as HTML.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from .. import html
from ..errors import NovitaError, ValidationError
from ..models import BILLED_STATUSES, GONE_STATUSES, Instance
from . import spec as specs

_PHASE_STEPS = ("provisioning", "starting", "running")


def ipywidgets_module() -> Any:
    """ipywidgets, or None when it is not installed (then everything renders as HTML)."""
    try:
        import ipywidgets
    except ImportError:  # pragma: no cover - ipywidgets is a dependency, but stay usable
        return None
    return ipywidgets


class _Displayable:
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


def _fmt_money(amount: float | None) -> str:
    return "—" if amount is None else f"${amount:,.2f}"


def _format_error(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    hint = getattr(error, "hint", None)
    return f"{type(error).__name__}: {message}" + (f" — {hint}" if hint else "")


def _error_html(error: Exception) -> str:
    return f"<span style='color:#b02a37'>{html.text(_format_error(error))}</span>"


# ---------------------------------------------------------------------------------------------
# Wait progress
# ---------------------------------------------------------------------------------------------


class WaitProgress(_Displayable):
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
        widgets = ipywidgets_module()
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


# ---------------------------------------------------------------------------------------------
# Instance card (one instance, with buttons)
# ---------------------------------------------------------------------------------------------


class InstanceCard(_Displayable):
    """The connection card of one instance with Refresh / Start / Stop / Delete buttons (delete
    asks for confirmation). ``%load_ext`` makes bound Instances display this way."""

    def __init__(self, instance: Instance, client: Any = None) -> None:
        self.instance = instance
        self.client = client if client is not None else getattr(instance, "_client", None)
        self.confirming = False
        widgets = ipywidgets_module()
        if widgets is None:
            return
        self.card = widgets.HTML(html.instance_card(instance))
        self.message = widgets.HTML("")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.start_button = widgets.Button(description="Start", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.delete_button = widgets.Button(
            description="Delete", icon="trash", button_style="danger"
        )
        self.confirm_button = widgets.Button(description="Confirm delete", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox([self.confirm_button, self.cancel_button])
        self.confirm_box.layout.display = "none"
        self.refresh_button.on_click(lambda _: self.refresh())
        self.start_button.on_click(lambda _: self._act("start"))
        self.stop_button.on_click(lambda _: self._act("stop"))
        self.delete_button.on_click(lambda _: self._ask_delete())
        self.confirm_button.on_click(lambda _: self._act("delete"))
        self.cancel_button.on_click(lambda _: self._cancel_delete())
        buttons = [self.refresh_button, self.start_button, self.stop_button, self.delete_button]
        if self.client is None:  # an unbound Instance can only be shown
            buttons = []
        self.widget = widgets.VBox(
            [self.card, widgets.HBox(buttons), self.confirm_box, self.message]
        )

    def refresh(self) -> Instance:
        """Fetch the instance again and redraw the card."""
        if self.client is None:
            return self.instance
        try:
            fresh = self.client.instance(self.instance.id)
        except NovitaError as error:
            self._say(_error_html(error))
            return self.instance
        fresh.fallback_report = getattr(self.instance, "fallback_report", None)
        self.instance = fresh
        if self.widget is not None:
            self.card.value = html.instance_card(fresh)
        return fresh

    def _say(self, markup: str) -> None:
        if self.widget is not None:
            self.message.value = markup

    def _ask_delete(self) -> None:
        self.confirming = True
        self.confirm_box.layout.display = ""
        self._say(html.text(f"Delete {self.instance.name}? Its disk is lost. Confirm or cancel."))

    def _cancel_delete(self) -> None:
        self.confirming = False
        self.confirm_box.layout.display = "none"
        self._say("Delete cancelled.")

    def _act(self, verb: str) -> None:
        if verb == "delete":
            if not self.confirming:
                return
            self.confirming = False
            self.confirm_box.layout.display = "none"
        try:
            getattr(self.client, verb)(self.instance.id)
        except NovitaError as error:
            self._say(_error_html(error))
            return
        self.refresh()
        self._say(html.text(f"{verb.capitalize()} requested for {self.instance.name}."))

    def _repr_html_(self) -> str:
        return html.instance_card(self.instance)

    def __repr__(self) -> str:
        return repr(self.instance)


def instance_mimebundle(instance: Instance) -> dict[str, Any] | None:
    """IPython mimebundle printer for Instances (registered by %load_ext): the card with
    buttons when ipywidgets is there; None (the Instance's own HTML card) otherwise."""
    if ipywidgets_module() is None or getattr(instance, "_client", None) is None:
        return None
    return InstanceCard(instance)._repr_mimebundle_()


# ---------------------------------------------------------------------------------------------
# Instance panel
# ---------------------------------------------------------------------------------------------


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


class InstancePanel(_Displayable):
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
            f"{len(self.live)} live instance(s) · {_fmt_money(per_hour)}/h now · "
            f"≈{_fmt_money(so_far)} so far"
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
        widgets = ipywidgets_module()
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
        widgets = ipywidgets_module()
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
            self.message.value = _error_html(error)
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
            self.message.value = _error_html(error)
            return
        name = self.states[target].name if target in self.states else target
        self.message.value = html.text(f"Delete requested for {name}.")

    def _cancel_delete(self) -> None:
        self.pending_delete = None
        self.confirm_box.layout.display = "none"
        self.message.value = "Delete cancelled."


# ---------------------------------------------------------------------------------------------
# Create form
# ---------------------------------------------------------------------------------------------

_FORM_FIELDS = (
    ("name", "name", "my-gpu-box"),
    ("gpu", "GPU", "RTX 4090"),
    ("region", "region", "any region"),
    ("regions", "fallback", "AS-SGP-02, CN-HK-01"),
    ("template", "template", "template id or name"),
    ("image", "image", "registry/image:tag"),
    ("max_price", "max $/h", "0.50"),
    ("envs", "envs", "A=1, B=2"),
    ("ports", "ports", "8888/http, 22/tcp"),
)


class CreateForm(_Displayable):
    """A create form with inline validation; shows the fallback report after creating.
    ``wait`` runs the wait in a background thread with a WaitProgress (``join()`` to block)."""

    def __init__(self, client: Any, **prefill: Any) -> None:
        self.client = client
        self.prefill = {k: v for k, v in prefill.items() if v is not None}
        self.instance: Instance | None = None
        self.error: Exception | None = None
        self.progress: WaitProgress | None = None
        self._worker: threading.Thread | None = None
        self._build_widgets()

    def values(self) -> dict[str, Any]:
        """The raw field values, as typed."""
        if self.widget is None:
            return dict(self.prefill)
        out: dict[str, Any] = {key: self.fields[key].value for key, _, _ in _FORM_FIELDS}
        out["billing"] = self.billing.value
        out["wait"] = self.wait_box.value
        return out

    def validate(self) -> dict[str, Any] | None:
        """Check every field; show each problem next to its field. None when invalid."""
        values = self.values()
        problems: dict[str, str] = {}
        for key in (*(k for k, _, _ in _FORM_FIELDS), "billing"):
            try:
                specs.normalise_create_kwargs({"name": "x", "gpu": "x", key: values.get(key)})
            except ValidationError as error:
                problems[error.field or key] = error.message
        if not str(values.get("name") or "").strip():
            problems["name"] = "a name is required"
        if (
            not str(values.get("gpu") or "").strip()
            and not str(values.get("template") or "").strip()
        ):
            problems["gpu"] = "a GPU (or a template) is required"
        if self.widget is not None:
            for key, message in self.messages.items():
                message.value = (
                    f"<span style='color:#b02a37'>{html.text(problems[key])}</span>"
                    if key in problems
                    else ""
                )
        self.problems = problems
        if problems:
            return None
        return specs.normalise_create_kwargs(values)

    def submit(self) -> Instance | None:
        """What the Create button does."""
        kwargs = self.validate()
        if kwargs is None:
            self._status("Fix the fields marked above.")
            return None
        wait = kwargs.pop("wait", False)
        self.error = None
        self._status(html.text(f"Creating {kwargs['name']}…"), raw=True)
        try:
            self.instance = self.client.create(**kwargs, wait=False)
        except NovitaError as error:
            self.error = error
            self._status(_error_html(error), raw=True)
            return None
        self._show_result()
        if wait:
            self.progress = WaitProgress(self.instance.name)
            if self.widget is not None:
                self.progress_box.children = (self.progress.widget,)
            self._worker = threading.Thread(
                target=self._wait, daemon=True, name="novita-create-wait"
            )
            self._worker.start()
        return self.instance

    def _wait(self) -> None:
        assert self.instance is not None and self.progress is not None
        try:
            final = self.client.wait(self.instance, until="running", progress=self.progress.update)
            final.fallback_report = self.instance.fallback_report
            self.instance = final
            self._show_result()
        except NovitaError as error:
            self.error = error
            self._status(_error_html(error), raw=True)
        finally:
            self.progress.finish()

    def join(self, timeout: float | None = None) -> Instance | None:
        """Block until a background wait (if any) is over; returns the instance."""
        if self._worker is not None:
            self._worker.join(timeout)
        return self.instance

    def _show_result(self) -> None:
        if self.widget is None or self.instance is None:
            return
        report = getattr(self.instance, "fallback_report", None)
        report_html = report._repr_html_() if hasattr(report, "_repr_html_") else ""
        self.result.value = report_html + html.instance_card(self.instance)
        self._status(html.text(f"{self.instance.name} is {self.instance.status}."), raw=True)

    def _status(self, text: str, raw: bool = False) -> None:
        if self.widget is not None:
            self.status.value = text if raw else html.text(text)

    def _build_widgets(self) -> None:
        widgets = ipywidgets_module()
        self.fields: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.problems: dict[str, str] = {}
        if widgets is None:
            return
        rows = []
        for key, label, placeholder in _FORM_FIELDS:
            field = widgets.Text(
                value=str(self.prefill.get(key, "") or ""),
                description=label,
                placeholder=placeholder,
            )
            message = widgets.HTML("")
            field.observe(lambda _change: self.validate() if self.problems else None, names="value")
            self.fields[key] = field
            self.messages[key] = message
            rows.append(widgets.HBox([field, message]))
        billing = specs.parse_billing(self.prefill.get("billing")) or "onDemand"
        self.billing = widgets.Dropdown(
            options=list(specs.BILLING_METHODS), value=billing, description="billing"
        )
        self.messages["billing"] = widgets.HTML("")
        rows.append(widgets.HBox([self.billing, self.messages["billing"]]))
        self.wait_box = widgets.Checkbox(
            value=bool(self.prefill.get("wait", True)), description="wait until running"
        )
        self.create_button = widgets.Button(
            description="Create", button_style="primary", icon="rocket"
        )
        self.create_button.on_click(lambda _: self.submit())
        self.status = widgets.HTML("")
        self.progress_box = widgets.VBox([])
        self.result = widgets.HTML("")
        self.widget = widgets.VBox(
            [
                *rows,
                widgets.HBox([self.wait_box, self.create_button]),
                self.status,
                self.progress_box,
                self.result,
            ]
        )

    def _repr_html_(self) -> str:
        values = self.values()
        rows = [(label, values.get(key)) for key, label, _ in _FORM_FIELDS if values.get(key)]
        body = html.table(("field", "value"), rows)
        result = html.instance_card(self.instance) if self.instance is not None else ""
        return f"<div><b>Create instance</b>{body}{result}</div>"

    def __repr__(self) -> str:
        values = {k: v for k, v in self.values().items() if v not in (None, "", False)}
        return f"<CreateForm {values}>"


# ---------------------------------------------------------------------------------------------
# Product browser
# ---------------------------------------------------------------------------------------------

_SORT_PREFERENCE = ("price_per_hour", "price", "spot_per_hour", "gpu", "region", "vram_gb")
_LABEL_COLUMNS = (("product", "name", "product_name"), ("region",))


class ProductBrowser(_Displayable):
    """Filter products by GPU, region, max price and stock; sort; open a pre-filled form."""

    def __init__(self, client: Any, gpu: str | None = None, region: str | None = None) -> None:
        self.client = client
        self.frame: Any = None
        self.form: CreateForm | None = None
        self.error: Exception | None = None
        self._filters = {"gpu": gpu, "region": region, "max_price": None, "available": False}
        self._sort: str | None = None
        self._build_widgets()
        self.refresh()

    def filters(self) -> dict[str, Any]:
        if self.widget is None:
            return dict(self._filters)
        region = self.region.value
        return {
            "gpu": self.gpu.value.strip() or None,
            "region": None if region in (None, "", "any") else region,
            "max_price": self.max_price.value or None,
            "available": bool(self.available.value),
        }

    def refresh(self) -> Any:
        """Query products with the current filters and redraw the table."""
        filters = self.filters()
        kwargs = {k: v for k, v in filters.items() if v not in (None, False)}
        try:
            frame = self.client.products(**kwargs)
            self.error = None
        except NovitaError as error:
            self.error = error
            frame = None
        if frame is not None:
            sort = self._sort_key(frame)
            if sort is not None:
                frame = frame.sort_values(sort, kind="stable", na_position="last").reset_index(
                    drop=True
                )
        self.frame = frame
        if self.widget is not None:
            self._draw()
        return frame

    def _sort_key(self, frame: Any) -> str | None:
        wanted = self.sort.value if self.widget is not None else self._sort
        if wanted and wanted in frame.columns:
            return wanted
        for column in _SORT_PREFERENCE:
            if column in frame.columns:
                return column
        return None

    def _label(self, row: Any) -> str:
        parts = []
        for candidates in _LABEL_COLUMNS:
            for column in candidates:
                if column in row and row[column] is not None:
                    parts.append(str(row[column]))
                    break
        return " · ".join(parts) or str(row.name)

    def _table_html(self) -> str:
        if self.error is not None:
            return _error_html(self.error)
        if self.frame is None or len(self.frame) == 0:
            return "<i>No product matches these filters.</i>"
        columns = [str(c) for c in self.frame.columns]
        rows = [[row[c] for c in self.frame.columns] for _, row in self.frame.iterrows()]
        return html.table(columns, rows)

    def _draw(self) -> None:
        self.table.value = self._table_html()
        options = []
        if self.frame is not None:
            options = [(self._label(row), index) for index, row in self.frame.iterrows()]
        self.choice.options = options
        self.count.value = f"{len(options)} product(s)"

    def open_form(self, index: int | None = None) -> CreateForm:
        """The Create button: a CreateForm pre-filled from the chosen row."""
        if index is None and self.widget is not None:
            index = self.choice.value
        if self.frame is None or index is None or index not in self.frame.index:
            raise ValidationError("choose a product row first", field="product")
        row = self.frame.loc[index]
        gpu = next((row[c] for c in ("product", "name", "product_name", "gpu") if c in row), None)
        region = row.get("region")
        self.form = CreateForm(
            self.client, gpu=gpu, region=region, billing=self.filters().get("billing")
        )
        if self.widget is not None:
            self.form_box.children = (self.form.widget,)
        return self.form

    def _build_widgets(self) -> None:
        widgets = ipywidgets_module()
        if widgets is None:
            return
        try:
            regions = self.client.regions()
            codes = _region_codes(regions)
        except NovitaError:
            codes = []
        self.gpu = widgets.Text(
            value=self._filters["gpu"] or "", description="GPU", placeholder="4090, A100…"
        )
        region = self._filters["region"]
        self.region = widgets.Dropdown(
            options=["any", *codes, *([region] if region and region not in codes else [])],
            value=region or "any",
            description="region",
        )
        self.max_price = widgets.BoundedFloatText(
            value=0.0, min=0.0, max=1000.0, step=0.05, description="max $/h"
        )
        self.available = widgets.Checkbox(value=False, description="available only")
        self.sort = widgets.Dropdown(
            options=list(_SORT_PREFERENCE), value="price_per_hour", description="sort by"
        )
        self.table = widgets.HTML("")
        self.count = widgets.HTML("")
        self.choice = widgets.Dropdown(options=[], description="product")
        self.create_button = widgets.Button(description="Create…", icon="plus")
        self.create_button.on_click(lambda _: self._safe_open_form())
        self.form_box = widgets.VBox([])
        for control in (self.gpu, self.region, self.max_price, self.available, self.sort):
            control.observe(lambda _change: self.refresh(), names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.gpu, self.region]),
                widgets.HBox([self.max_price, self.available, self.sort]),
                self.count,
                self.table,
                widgets.HBox([self.choice, self.create_button]),
                self.form_box,
            ]
        )

    def _safe_open_form(self) -> None:
        try:
            self.open_form()
        except ValidationError as error:
            self.count.value = _error_html(error)

    def _repr_html_(self) -> str:
        return f"<div><b>GPU products</b>{self._table_html()}</div>"

    def __repr__(self) -> str:
        count = 0 if self.frame is None else len(self.frame)
        return f"<ProductBrowser {count} product(s) filters={self.filters()}>"


def _region_codes(regions: Any) -> list[str]:
    """Region codes from whatever regions() returned (a DataFrame or a list of Clusters)."""
    if hasattr(regions, "columns"):
        for column in ("name", "region", "code"):
            if column in regions.columns:
                return [str(v) for v in regions[column].tolist()]
        return []
    return [getattr(r, "name", str(r)) for r in regions]
