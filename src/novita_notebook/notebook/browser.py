"""The product browser: filter by GPU, region, max price and stock, sort, and open a create
form pre-filled from the chosen row.
"""

from __future__ import annotations

from typing import Any

from .. import html
from ..errors import NovitaError, ValidationError
from . import display as _display
from .display import Displayable, error_html
from .form import CreateForm

_SORT_PREFERENCE = ("price_per_hour", "price", "spot_per_hour", "gpu", "region", "vram_gb")
_LABEL_COLUMNS = (("product", "name", "product_name"), ("region",))


class ProductBrowser(Displayable):
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
            return error_html(self.error)
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
        widgets = _display.ipywidgets_module()
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
            self.count.value = error_html(error)

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
