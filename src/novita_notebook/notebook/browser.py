"""The product browser: filter by GPU, region, max price and stock, sort, and open a create
form pre-filled from the chosen row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import html
from ..errors import NovitaError, ValidationError
from . import display as _display
from .display import Displayable, error_html
from .form import CreateForm

if TYPE_CHECKING:  # pragma: no cover
    from ..protocols import NovitaClient

_SORT_PREFERENCE = ("price_per_hour", "price", "spot_per_hour", "gpu", "region", "vram_gb")
_LABEL_COLUMNS = (("product", "name", "product_name"), ("region",))

#: Shown by default; the rest are one click away behind the "columns" control.
DEFAULT_COLUMNS = ("product", "region", "price_per_hour", "spot_per_hour", "vram_gb", "stock")
#: Column headings people read (raw names otherwise).
LABELS = {
    "price_per_hour": "$/h",
    "spot_per_hour": "spot $/h",
    "monthly_per_hour": "monthly $/h",
    "vram_gb": "VRAM GB",
    "cpu_per_gpu": "CPU/GPU",
    "mem_per_gpu": "RAM GB/GPU",
    "disk_per_gpu": "disk GB/GPU",
    "min_rootfs": "min rootfs GB",
    "max_rootfs": "max rootfs GB",
    "billing_methods": "billing",
}
_MONEY = ("price_per_hour", "spot_per_hour", "monthly_per_hour", "price")
_NOWRAP = "white-space:nowrap"
_NARROW = {"description_width": "56px"}  # short labels keep the filters on one line
#: Stock levels as text with an icon (colour is not the only signal).
_STOCK = {
    "none": ("\u25cb", "failed"),
    "low": ("\u25d1", "starting"),
    "normal": ("\u25d5", "running"),
    "high": ("\u25cf", "running"),
}


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (whose comparisons are NA, so ``bool()`` of them raises)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def _cell(column: str, value: Any) -> str:
    """One product cell as HTML: money formatted, stock with an icon, names kept on one line."""
    if _missing(value):
        return "&mdash;"
    if column in _MONEY:
        return html.money(float(value), per_hour=True)
    if column == "stock":
        icon, phase = _STOCK.get(str(value), ("?", "unknown"))
        ink = html.PHASE_INK[phase]
        return f"<span style='{_NOWRAP}'><span style='color:{ink}'>{icon}</span> {html.text(value)}</span>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column in ("product", "gpu", "region", "product_id", "cluster_id"):
        return f"<span style='{_NOWRAP}'>{html.text(value)}</span>"
    return html.text(value)


def _shown_cell(column: str, row: Any) -> str:
    """A row's cell; a region's stock that the listing does not know falls back to the stock
    over every region offering the product, marked so, never shown as a region's own."""
    if column == "stock" and _missing(row["stock"]) and not _missing(row.get("stock_somewhere")):
        muted = f"color:{html.MUTED}"
        return (
            f"<span title='stock over every region offering this product'>"
            f"{_cell(column, row['stock_somewhere'])}<span style='{muted}'>*</span></span>"
        )
    return _cell(column, row[column])


def product_table(frame: Any, columns: Any = DEFAULT_COLUMNS) -> str:
    """Products as a compact HTML table: chosen columns, money as ``$0.30/h``, numbers
    right-aligned, names on one line."""
    shown = [c for c in columns if c in frame.columns] or [str(c) for c in frame.columns]
    labels = [LABELS.get(c, c) for c in shown]
    rows = [[_shown_cell(c, row) for c in shown] for _, row in frame.iterrows()]
    numeric = [LABELS.get(c, c) for c in shown if c in _MONEY or str(frame[c].dtype) in _NUMBERS]
    return html.table(labels, rows, raw_columns=labels, numeric=numeric)


_NUMBERS = ("Int64", "int64", "float64", "Float64")


class ProductBrowser(Displayable):
    """Filter products by GPU, region, max price and stock; sort; open a pre-filled form."""

    def __init__(
        self, client: NovitaClient, gpu: str | None = None, region: str | None = None
    ) -> None:
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
                if column in row and not _missing(row[column]):
                    parts.append(str(row[column]))
                    break
        price = row.get("price_per_hour")
        if not _missing(price):  # one region can list a product twice
            parts.append(html.format_money(float(price), per_hour=True))
        return " · ".join(parts) or str(row.name)

    def _table_html(self) -> str:
        if self.error is not None:
            return error_html(self.error)
        if self.frame is None or len(self.frame) == 0:
            return "<i>No product matches these filters.</i>"
        table = product_table(self.frame, self.shown_columns())
        # Only the table scrolls if someone picks many columns; filters stay put.
        return f"<div style='overflow-x:auto;max-width:100%'>{table}</div>"

    def shown_columns(self) -> tuple[str, ...]:
        if self.widget is None:
            return DEFAULT_COLUMNS
        return tuple(self.columns.value)

    def chart_html(self) -> str:
        """The chosen product's on-demand price in every region it is offered (the current
        filters, region aside), cheapest first."""
        if self.frame is None or self.widget is None or self.choice.value not in self.frame.index:
            return ""
        row = self.frame.loc[self.choice.value]
        product = next((row[c] for c in ("product", "name") if c in row), None)
        if product is None or "price_per_hour" not in self.frame.columns:
            return ""
        try:
            filters = {k: v for k, v in self.filters().items() if v not in (None, False)}
            filters.pop("region", None)
            everywhere = self.client.products(**filters)
        except NovitaError:
            everywhere = self.frame
        same = everywhere[everywhere["product"] == product]
        cheapest: dict[str, float] = {}
        for _, r in same.iterrows():  # one bar per region: its cheapest offer of this product
            region, price = str(r["region"]), float(r["price_per_hour"])
            cheapest[region] = min(price, cheapest.get(region, price))
        items = list(cheapest.items())
        title = (
            f"<div style='font-weight:600;margin:4px 0'>{html.text(product)}: $/h by region</div>"
        )
        return f"<div class='novita-chart' style='{html.FONT}'>{title}{html.bar_chart(items)}</div>"

    def _draw(self) -> None:
        self.table.value = self._table_html()
        options = []
        if self.frame is not None:
            options = [(self._label(row), index) for index, row in self.frame.iterrows()]
        chosen = self.choice.value
        self.choice.options = options
        values = [value for _, value in options]
        # Keep the row if it is still there; else preselect the first (cheapest) one.
        self.choice.value = chosen if chosen in values else (values[0] if values else None)
        self.count.value = html.text(f"{len(options)} product(s)")
        self.chart.value = self.chart_html()

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
        self._build_filters(widgets, codes)
        self._build_table_controls(widgets)
        self._assemble(widgets)

    def _build_filters(self, widgets: Any, codes: list[str]) -> None:
        narrow = _NARROW
        self.gpu = widgets.Text(
            value=self._filters["gpu"] or "",
            description="GPU",
            placeholder="4090, A100…",
            style=narrow,
            layout=widgets.Layout(width="220px"),
        )
        region = self._filters["region"]
        self.region = widgets.Dropdown(
            options=["any", *codes, *([region] if region and region not in codes else [])],
            value=region or "any",
            description="region",
            style=narrow,
            layout=widgets.Layout(width="200px"),
        )
        self.max_price = widgets.BoundedFloatText(
            value=0.0,
            min=0.0,
            max=1000.0,
            step=0.05,
            description="max $/h",
            style=narrow,
            layout=widgets.Layout(width="150px"),
        )
        self.available = widgets.Checkbox(
            value=False,
            description="in stock only",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.sort = widgets.Dropdown(
            options=[(LABELS.get(c, c), c) for c in _SORT_PREFERENCE],
            value="price_per_hour",
            description="sort by",
            style=narrow,
            layout=widgets.Layout(width="180px"),
        )

    def _build_table_controls(self, widgets: Any) -> None:
        narrow = _NARROW
        self.columns = widgets.SelectMultiple(
            options=[(LABELS.get(c, c), c) for c in self._all_columns()],
            value=[c for c in DEFAULT_COLUMNS if c in self._all_columns()],
            description="columns",
            rows=6,
            style=narrow,
            layout=widgets.Layout(width="260px", display="none"),
        )
        self.columns_button = widgets.ToggleButton(
            value=False,
            description="columns",
            icon="columns",
            tooltip="choose the columns shown",
            layout=widgets.Layout(width="auto"),
        )
        self.columns_button.observe(
            lambda change: setattr(self.columns.layout, "display", "" if change["new"] else "none"),
            names="value",
        )
        self.table = widgets.HTML("")
        self.count = widgets.HTML("")
        self.chart = widgets.HTML("")
        self.choice = widgets.Dropdown(
            options=[], description="product", style=narrow, layout=widgets.Layout(width="400px")
        )
        self.create_button = widgets.Button(
            description="Create…", icon="plus", button_style="primary"
        )
        self.create_button.on_click(lambda _: self._safe_open_form())
        self.form_box = widgets.VBox([])

    def _assemble(self, widgets: Any) -> None:
        for control in (self.gpu, self.region, self.max_price, self.available, self.sort):
            control.observe(lambda _change: self.refresh(), names="value")
        self.columns.observe(lambda _change: self._redraw_table(), names="value")
        self.choice.observe(lambda _change: self._redraw_chart(), names="value")
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        self.widget = _display.framed(
            widgets,
            [
                widgets.HBox(
                    [self.gpu, self.region, self.max_price, self.available, self.sort], layout=wrap
                ),
                widgets.HBox([self.count, self.columns_button, self.columns], layout=wrap),
                self.table,
                widgets.HBox([self.choice, self.create_button], layout=wrap),
                self.chart,
                self.form_box,
            ],
            title="GPU products",
        )

    def _all_columns(self) -> list[str]:
        """Every column the catalog has (asked once: the frame is not built yet)."""
        if getattr(self, "_columns_cache", None) is None:
            try:
                self._columns_cache = [str(c) for c in self.client.products().columns]
            except NovitaError:
                self._columns_cache = list(DEFAULT_COLUMNS)
        return self._columns_cache

    def _redraw_table(self) -> None:
        self.table.value = self._table_html()

    def _redraw_chart(self) -> None:
        self.chart.value = self.chart_html()

    def _safe_open_form(self) -> None:
        try:
            self.open_form()
        except ValidationError as error:
            self.count.value = error_html(error)

    def _repr_html_(self) -> str:
        return html.frame("GPU products", self._table_html())

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
