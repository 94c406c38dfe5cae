"""The product browser: filter by GPU, region, max price and stock; compact (the cheapest offer
of each GPU) or every offer; RAM, disk and each region's own stock in words; a create form
for exactly the row picked.
"""

from __future__ import annotations

from typing import Any

from .. import html
from ..errors import NovitaError, ValidationError
from ..money import ESTIMATE_MARK
from ..vocabulary import billing_word
from . import display as _display
from .display import Displayable, error_html
from .form import CreateForm

_SORT_PREFERENCE = ("price_per_hour", "price", "spot_per_hour", "gpu", "region", "vram_gb")

#: Shown by default (what tells two offers of one GPU apart); the rest are one click away.
DEFAULT_COLUMNS = (
    "product",
    "region",
    "price_per_hour",
    "spot_per_hour",
    "vram_gb",
    "mem_per_gpu",
    "disk_per_gpu",
    "stock",
)
#: Column headings people read (raw names otherwise).
LABELS = {
    "price_per_hour": "$/h",
    "spot_per_hour": "spot $/h",
    "monthly_per_hour": "monthly $/h",
    "vram_gb": "VRAM GB",
    "cpu_per_gpu": "CPUs/GPU",
    "mem_per_gpu": "RAM GB/GPU",
    "disk_per_gpu": "disk GB/GPU",
    "min_rootfs": "min rootfs GB",
    "max_rootfs": "max rootfs GB",
    "billing_methods": "billing",
    "stock": "stock here",
    "stock_somewhere": "stock anywhere",
}
_MONEY = ("price_per_hour", "spot_per_hour", "monthly_per_hour", "price")
_NOWRAP = ("product", "gpu", "region", "product_id", "cluster_id", "stock")
_NARROW = {"description_width": "56px"}  # short labels keep the filters on one line
#: Stock levels, as each region's own listing gives them: icon, look and words.
STOCK_WORDS = {
    "none": ("\u25cb", "failed", "none: sold out here"),
    "low": ("\u25d1", "starting", "low: a few left"),
    "normal": ("\u25d5", "running", "normal"),
    "high": ("\u25cf", "running", "high"),
}
STOCK_LEGEND = (
    "stock here: what the region's own listing says now (high, normal, low, none); "
    "\u201cunknown\u201d when the region did not answer."
)


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' NA (whose comparisons are NA, so ``bool()`` of them raises)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def _cell(column: str, value: Any) -> str:
    """One product cell as HTML: money formatted, stock in words with an icon."""
    if column in ("stock", "stock_somewhere"):
        if _missing(value):
            return f"<span style='color:{html.MUTED}'>unknown</span>"
        icon, phase, words = STOCK_WORDS.get(str(value), ("?", "unknown", str(value)))
        ink = html.PHASE_INK[phase]
        return f"<span style='color:{ink}' aria-hidden='true'>{icon}</span> {html.text(words)}"
    if column == "billing_methods" and isinstance(value, str) and value:
        return html.text(", ".join(billing_word(m.strip()) for m in value.split(",")))
    if _missing(value):
        return "&mdash;"
    if column in _MONEY:
        return html.money(float(value), per_hour=True)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.text(value)


def product_table(frame: Any, columns: Any = DEFAULT_COLUMNS) -> str:
    """Products as a compact HTML table: chosen columns, money as ``$0.30/h`` (``≈`` before
    a price whose unit is a guess, as the frame's ``attrs["estimated"]`` says), numbers
    right-aligned, names, regions and stock on one line."""
    shown = [c for c in columns if c in frame.columns] or [str(c) for c in frame.columns]
    labels = [LABELS.get(c, c) for c in shown]
    guessed = set(frame.attrs.get("estimated") or ())

    def cell(column: str, value: Any) -> str:
        markup = _cell(column, value)
        return ESTIMATE_MARK + markup if column in guessed and not _missing(value) else markup

    rows = [[cell(c, row[c]) for c in shown] for _, row in frame.iterrows()]
    numeric = [LABELS.get(c, c) for c in shown if c in _MONEY or str(frame[c].dtype) in _NUMBERS]
    whole = [LABELS.get(c, c) for c in shown if c in _NOWRAP]
    return html.table(labels, rows, raw_columns=labels, numeric=numeric, nowrap_columns=whole)


_NUMBERS = ("Int64", "int64", "float64", "Float64")


def cheapest_per_gpu(frame: Any) -> Any:
    """One row per GPU model: its cheapest offer in stock (its cheapest at all when none
    is), in the frame's order."""
    if "gpu" not in frame.columns or len(frame) == 0:
        return frame
    available = frame["available"].fillna(False) if "available" in frame.columns else None
    keep = []
    for _, group in frame.groupby("gpu", sort=False):
        stocked = group[available.loc[group.index]] if available is not None else group
        keep.append((stocked if len(stocked) else group).index[0])
    return frame.loc[sorted(keep, key=list(frame.index).index)]


def describe_row(row: Any) -> str:
    """``RTX 4090 24GB · AS-SGP-02 · $0.39/h · 96 GB RAM · 200 GB disk`` (per GPU)."""
    parts = [str(row[c]) for c in ("product", "region") if c in row and not _missing(row[c])]
    price = row.get("price_per_hour")
    if not _missing(price):
        parts.append(html.format_money(float(price), per_hour=True))
    for column, unit in (("mem_per_gpu", "GB RAM"), ("disk_per_gpu", "GB disk")):
        if column in row and not _missing(row[column]):
            parts.append(f"{row[column]} {unit}")
    return " · ".join(parts) or str(row.name)


class ProductBrowser(Displayable):
    """Filter products by GPU, region, max price and stock; sort; compact or every offer;
    open a form that creates exactly the row picked."""

    def __init__(self, client: Any, gpu: str | None = None, region: str | None = None) -> None:
        self.client = client
        self.frame: Any = None  # every offer matching the filters
        self.form: CreateForm | None = None
        self.error: Exception | None = None
        self.no_match: str = ""  # the filters match nothing: why, in words
        self.show_all = False
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

    @property
    def shown(self) -> Any:
        """The rows on screen: every offer, or the cheapest of each GPU (the default)."""
        if self.frame is None or self.all_offers():
            return self.frame
        return cheapest_per_gpu(self.frame)

    def all_offers(self) -> bool:
        return bool(self.all_button.value) if self.widget is not None else self.show_all

    def refresh(self) -> Any:
        """Query products with the current filters (each region's own stock) and redraw."""
        filters = self.filters()
        kwargs = {k: v for k, v in filters.items() if v not in (None, False)}
        self.error, self.no_match, frame = None, "", None
        try:
            frame = self.client.products(**kwargs, detail=True)
        except ValidationError as error:
            if error.field in ("gpu", "region"):  # a filter that matches nothing: no crash
                self.no_match = error.message
            else:
                self.error = error
        except NovitaError as error:
            self.error = error
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

    def _table_html(self) -> str:
        if self.error is not None:
            return error_html(self.error)
        shown = self.shown
        if shown is None or len(shown) == 0:
            why = self.no_match or "no offer passes these filters"
            return html.muted(
                html.text(f"No product matches: {why}. Loosen a filter (GPU, region, max $/h).")
            )
        table = product_table(shown, self.shown_columns())
        legend = html.muted(html.text(STOCK_LEGEND)) if "stock" in self.shown_columns() else ""
        # Only the table scrolls if someone picks many columns; filters stay put.
        return f"<div style='overflow-x:auto;max-width:100%'>{table}</div>{legend}"

    def count_text(self) -> str:
        """``cheapest of each of 11 GPUs (49 offers)``, or ``49 offers``."""
        if self.frame is None or len(self.frame) == 0:
            return "0 offers"
        offers = len(self.frame)
        plural = "" if offers == 1 else "s"
        if self.all_offers():
            return f"{offers} offer{plural}"
        gpus = len(self.shown)
        return f"the cheapest offer of each of {gpus} GPU{'' if gpus == 1 else 's'} ({offers} offer{plural})"

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
        shown = self.shown
        options = []
        if shown is not None:
            options = [(describe_row(row), index) for index, row in shown.iterrows()]
        chosen = self.choice.value
        self.choice.options = options
        values = [value for _, value in options]
        # Keep the row if it is still there; else preselect the first (cheapest) one.
        self.choice.value = chosen if chosen in values else (values[0] if values else None)
        self.choice.disabled = self.create_button.disabled = not values
        self.count.value = html.text(self.count_text())
        self.all_button.description = "cheapest per GPU" if self.all_offers() else "show all"
        self.chart.value = self.chart_html()
        self.refresh_snapshot()

    def open_form(self, index: int | None = None) -> CreateForm:
        """The Create button: a CreateForm for exactly the chosen row (its product id, and its
        region as the only one)."""
        if index is None and self.widget is not None:
            index = self.choice.value
        if self.frame is None or index is None or index not in self.frame.index:
            raise ValidationError("choose a product row first", field="product")
        row = self.frame.loc[index]
        region = row.get("region")
        product = None
        if "product_id" in row and not _missing(row["product_id"]):
            product = {"id": str(row["product_id"]), "name": str(row["product"]),
                       "words": describe_row(row)}  # fmt: skip
        self.form = CreateForm(
            self.client,
            gpu=row.get("product"),
            region=region,
            regions=region,  # this region only: the row picked, not a cheaper one elsewhere
            billing=self.filters().get("billing"),
            product=product,
        )
        if self.widget is not None:
            self.form_box.children = (self.form.widget,)
        return self.form

    def _build_widgets(self) -> None:
        widgets = _display.ipywidgets_module()
        if widgets is None:
            return
        try:
            regions = self.client.regions(detail=False)
            codes = _region_codes(regions)
        except (NovitaError, TypeError):
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
        self.all_button = widgets.ToggleButton(
            value=self.show_all,
            description="show all",
            tooltip="every offer, or only the cheapest of each GPU",
            layout=widgets.Layout(width="auto"),
        )
        self.table = widgets.HTML("")
        self.count = widgets.HTML("")
        self.chart = widgets.HTML("")
        self.choice = widgets.Dropdown(
            options=[], description="offer", style=narrow, layout=widgets.Layout(width="560px")
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
        self.all_button.observe(lambda _change: self._draw(), names="value")
        self.choice.observe(lambda _change: self._redraw_chart(), names="value")
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        self.widget = _display.framed(
            widgets,
            [
                widgets.HBox(
                    [self.gpu, self.region, self.max_price, self.available, self.sort], layout=wrap
                ),
                widgets.HBox(
                    [self.count, self.all_button, self.columns_button, self.columns], layout=wrap
                ),
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
        self.refresh_snapshot()

    def _redraw_chart(self) -> None:
        self.chart.value = self.chart_html()

    def _safe_open_form(self) -> None:
        try:
            self.open_form()
        except ValidationError as error:
            self.count.value = error_html(error)

    def _repr_html_(self) -> str:
        subtitle = html.text(self.count_text())
        return html.frame("GPU products", self._table_html(), subtitle=subtitle, kind="browser")

    def __repr__(self) -> str:
        return f"<ProductBrowser {self.count_text()} filters={self.filters()}>"


def _region_codes(regions: Any) -> list[str]:
    """Region codes from whatever regions() returned (a DataFrame or a list of Clusters)."""
    if hasattr(regions, "columns"):
        for column in ("name", "region", "code"):
            if column in regions.columns:
                return [str(v) for v in regions[column].tolist()]
        return []
    return [getattr(r, "name", str(r)) for r in regions]
