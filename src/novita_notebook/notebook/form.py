"""The create form: every field validated inline, the create sent from the button, the
fallback report and connection card shown after, an optional wait in the background.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import html, views
from ..errors import NovitaError, ValidationError
from ..models import Instance
from ..vocabulary import billing_word, status_word
from . import display as _display
from . import spec as specs
from .display import Displayable, error_html, problem_html
from .progress import WaitProgress

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
#: The offer order: (label, value of ``Novita.create(prefer=...)``).
PREFER_OPTIONS = (("cheapest anywhere", "price"), ("my region order", "region"))
DEFAULT_MOUNT = "/network"


class CreateForm(Displayable):
    """A create form with inline validation; shows the fallback report after creating.
    ``wait`` runs the wait in a background thread with a WaitProgress (``join()`` to block)."""

    def __init__(self, client: Any, **prefill: Any) -> None:
        self.client = client
        #: the exact offer picked in the browser ({"id", "name", "words"}): created as that
        #: product id while the GPU field still names it
        self.product: dict[str, str] | None = prefill.pop("product", None)
        self.prefill = {k: v for k, v in prefill.items() if v is not None}
        self.instance: Instance | None = None
        self.error: Exception | None = None
        self.progress: WaitProgress | None = None
        self._worker: threading.Thread | None = None
        self._creating = False
        self._build_widgets()

    def values(self) -> dict[str, Any]:
        """The raw field values, as typed."""
        if self.widget is None:
            return dict(self.prefill)
        out: dict[str, Any] = {key: self.fields[key].value for key, _, _ in _FORM_FIELDS}
        out["billing"] = self.billing.value
        out["wait"] = self.wait_box.value
        out["prefer"] = self.prefer.value
        mount = self.mount.value.strip()
        out["volumes"] = [
            v if mount in ("", DEFAULT_MOUNT) else f"{v}:{mount}" for v in self.volumes.value
        ] or None
        return out

    def volume_problem(self) -> str | None:
        """Why the chosen volumes cannot be mounted together, before any call; else None."""
        if self.widget is None or not self.volumes.value:
            return None
        if len({self.volume_regions[v] for v in self.volumes.value}) > 1:
            return "an instance mounts volumes of one region only"
        mount = self.mount.value.strip()
        if mount and not mount.startswith("/"):
            return f"mount point {mount!r} must be an absolute path, e.g. /data"
        return None

    def validate(self) -> dict[str, Any] | None:
        """Check every field; show each problem next to its field. None when invalid."""
        values = self.values()
        problems: dict[str, str] = {}
        for key in (*(k for k, _, _ in _FORM_FIELDS), "billing", "volumes"):
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
        volume_problem = self.volume_problem()
        if volume_problem is not None:
            problems["volumes"] = volume_problem
        if self.widget is not None:
            for key, message in self.messages.items():
                message.value = problem_html(problems[key]) if key in problems else ""
        self.problems = problems
        if self.widget is not None:
            # no Create while a field is wrong; it comes back once the fields are fixed
            self.create_button.disabled = bool(problems) or self._creating
        if problems:
            return None
        return specs.normalise_create_kwargs(values)

    def submit(self) -> Instance | None:
        """What the Create button does."""
        if self._creating:
            return None  # a click that was on its way while the button was disabled
        kwargs = self.validate()
        if kwargs is None:
            self._status("Fix the fields marked above.")
            return None
        wait = kwargs.pop("wait", False)
        if self.product is not None and kwargs.get("gpu") == self.product["name"]:
            kwargs["gpu"] = self.product["id"]  # exactly the row picked, not a cheaper twin
        self.error = None
        self._status(html.text(f"Creating {kwargs['name']}…"), raw=True)
        self._set_creating(True)
        try:
            self.instance = self.client.create(**kwargs, wait=False)
        except NovitaError as error:
            self._set_creating(False)
            self.error = error
            self._status(error_html(error), raw=True)
            field = getattr(error, "field", None)
            if field in self.messages:  # e.g. an unknown volume: shown next to its field too
                self.messages[field].value = error_html(error)
            return None
        self._set_creating(False)
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
            self._status(error_html(error), raw=True)
        finally:
            self.progress.finish()

    def _offer_html(self) -> str:
        """The exact offer the create will use, while the GPU field names it."""
        if self.product is None or (
            self.widget is not None and self.fields["gpu"].value != self.product["name"]
        ):
            return ""
        words = f"Creates exactly {self.product['words']} (product {self.product['id']})."
        return html.muted(html.text(words))

    def _draw_offer(self) -> None:
        self.offer.value = self._offer_html()

    def _set_creating(self, creating: bool) -> None:
        """One create at a time: the button is disabled while the create call runs."""
        self._creating = creating
        if self.widget is not None:
            self.create_button.disabled = creating or bool(self.problems)
            self.create_button.description = "Creating…" if creating else "Create"

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
        if report_html:
            report_html = f"<div style='margin-bottom:8px'>{report_html}</div>"
        self.result.value = report_html + views.instance_card(self.instance)
        word = status_word(self.instance.status, failed=self.instance.phase == "failed")
        self._status(html.text(f"{self.instance.name} is {word}."), raw=True)

    def _status(self, text: str, raw: bool = False) -> None:
        if self.widget is not None:
            self.status.value = text if raw else html.text(text)

    def _build_widgets(self) -> None:
        widgets = _display.ipywidgets_module()
        self.fields: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.problems: dict[str, str] = {}
        if widgets is None:
            return
        rows = []
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
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
            rows.append(widgets.HBox([field, message], layout=wrap))
        self.offer = widgets.HTML(self._offer_html())
        self.fields["gpu"].observe(lambda _change: self._draw_offer(), names="value")
        rows.append(self.offer)
        billing = specs.parse_billing(self.prefill.get("billing")) or "onDemand"
        self.billing = widgets.Dropdown(
            options=[(billing_word(method), method) for method in specs.BILLING_METHODS],
            value=billing,
            description="billing",
        )
        self.messages["billing"] = widgets.HTML("")
        rows.append(widgets.HBox([self.billing, self.messages["billing"]]))
        rows.extend(self._volume_rows(widgets))
        self.prefer = widgets.ToggleButtons(
            options=list(PREFER_OPTIONS),
            value="region" if self.prefill.get("prefer") == "region" else "price",
            description="prefer",
            tooltips=["the cheapest offer in stock, any region", "regions in the order given"],
            style={"button_width": "auto"},
            layout=widgets.Layout(width="auto"),  # 300 px wraps the label above the buttons
        )
        rows.append(self.prefer)
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
        self.widget = _display.framed(
            widgets,
            [
                *rows,
                widgets.HBox([self.wait_box, self.create_button]),
                self.status,
                self.progress_box,
                self.result,
            ],
            title="Create an instance",
        )

    def _volume_rows(self, widgets: Any) -> list[Any]:
        """The network volumes (one multi-select, one mount point); hidden when there are
        none. Choosing volumes pins the region to theirs."""
        self.volume_regions: dict[str, str] = {}
        options = self._volume_options()
        chosen = [
            v
            for v in specs.parse_volumes(self.prefill.get("volumes")) or []
            if v in self.volume_regions
        ]
        self.volumes = widgets.SelectMultiple(
            options=options, value=chosen, description="volumes", rows=min(4, max(2, len(options)))
        )
        self.mount = widgets.Text(value=DEFAULT_MOUNT, description="mount at")
        self.messages["volumes"] = widgets.HTML("")
        self._typed_region: tuple[str, str] | None = None
        self.volumes.observe(lambda _change: self._pin_region(), names="value")
        self.mount.observe(lambda _change: self.validate() if self.problems else None, "value")
        box = widgets.HBox(
            [self.volumes, self.mount, self.messages["volumes"]],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        if not options:
            box.layout.display = "none"
        if chosen:
            self._pin_region()
        return [box]

    def _volume_options(self) -> list[tuple[str, str]]:
        """``("my-data (EU-DE-01, 100 GB)", "my-data")`` per volume; the id when names repeat."""
        try:
            frame = self.client.storages()
        except NovitaError:
            return []
        names = list(frame["name"]) if "name" in frame else []
        options = []
        for _, row in frame.iterrows():
            value = str(row["id"] if names.count(row["name"]) > 1 else row["name"])
            self.volume_regions[value] = str(row["region"])
            options.append((f"{row['name']} ({row['region']}, {row['size_gb']} GB)", value))
        return options

    def _pin_region(self) -> None:
        """A create with volumes runs in their region: show it and lock the region fields;
        give back what was typed when no volume is chosen."""
        region, fallback = self.fields["region"], self.fields["regions"]
        regions = sorted({self.volume_regions[v] for v in self.volumes.value})
        if len(regions) == 1:
            if self._typed_region is None:
                self._typed_region = (region.value, fallback.value)
            region.value, fallback.value = regions[0], ""
        elif not regions and self._typed_region is not None:
            region.value, fallback.value = self._typed_region
            self._typed_region = None
        region.disabled = fallback.disabled = bool(regions)
        if self.problems or len(regions) > 1:
            self.validate()

    def shown_values(self) -> dict[str, Any]:
        """Field values safe to display: environment values may hold tokens, so only their
        keys are shown."""
        values = dict(self.values())
        if values.get("envs"):
            try:
                keys = specs.parse_envs(values["envs"])
                values["envs"] = ", ".join(f"{key}=***" for key in keys)
            except ValidationError:
                values["envs"] = "(invalid)"
        return values

    def _repr_html_(self) -> str:
        values = self.shown_values()
        rows = [(label, values.get(key)) for key, label, _ in _FORM_FIELDS if values.get(key)]
        if values.get("volumes"):
            rows.append(("volumes", ", ".join(specs.parse_volumes(values["volumes"]) or [])))
        if values.get("prefer"):
            words = {value: label for label, value in PREFER_OPTIONS}
            rows.append(("prefer", words.get(values["prefer"], values["prefer"])))
        body = html.table(("field", "value"), rows)
        result = views.instance_card(self.instance) if self.instance is not None else ""
        return f"<div><b>Create instance</b>{body}{result}</div>"

    def __repr__(self) -> str:
        values = {k: v for k, v in self.shown_values().items() if v not in (None, "", False)}
        return f"<CreateForm {values}>"
