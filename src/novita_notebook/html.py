"""HTML building blocks for rich display (_repr_html_), shared by every object that renders.
Plain strings only: no IPython or ipywidgets here, so the core stays importable anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from . import money as _money

if TYPE_CHECKING:  # pragma: no cover
    from .models import Instance


def _var(name: str, fallback: str) -> str:
    return f"var(--jp-{name}, {fallback})"


#: Ink colour per phase (models.PHASES): JupyterLab theme variables, so dark theme works.
PHASE_INK: dict[str, str] = {
    "provisioning": _var("warn-color1", "#f57c00"),
    "starting": _var("warn-color1", "#f57c00"),
    "running": _var("success-color1", "#388e3c"),
    "stopping": _var("ui-font-color2", "#757575"),
    "stopped": _var("ui-font-color2", "#757575"),
    "removing": _var("error-color1", "#d32f2f"),
    "removed": _var("ui-font-color3", "#9e9e9e"),
    "failed": _var("error-color1", "#d32f2f"),
    "unknown": _var("ui-font-color2", "#757575"),
}

#: Background tint per phase: the ink at low opacity, readable in light and dark themes.
PHASE_COLOURS: dict[str, str] = {
    phase: f"color-mix(in srgb, {ink} 18%, transparent)" for phase, ink in PHASE_INK.items()
}

#: A symbol per phase, so colour is never the only signal.
PHASE_ICONS: dict[str, str] = {
    "provisioning": "\u25d4",  # ◔
    "starting": "\u25d1",  # ◑
    "running": "\u25cf",  # ●
    "stopping": "\u25a1",  # □
    "stopped": "\u25a0",  # ■
    "removing": "\u2715",  # ✕
    "removed": "\u2715",
    "failed": "\u26a0",  # ⚠
    "unknown": "?",
}

#: The shared look of every table, card and panel: JupyterLab fonts, colours and borders.
FONT = (
    f"font-family:{_var('ui-font-family', 'system-ui, sans-serif')};"
    f"font-size:{_var('ui-font-size1', '13px')};color:{_var('ui-font-color1', 'inherit')}"
)
BORDER = f"1px solid {_var('border-color2', '#e0e0e0')}"
MUTED = _var("ui-font-color2", "#757575")
LINK = f"color:{_var('content-link-color', '#0d47a1')};text-decoration:underline"
CELL = f"padding:3px 8px;border-bottom:{BORDER};vertical-align:top"
NUMERIC = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"
HEAD = f"{CELL};text-align:left;font-weight:600;color:{MUTED};white-space:nowrap"
TABLE = f"border-collapse:collapse;line-height:1.4;{FONT}"
TABLE_STYLE = f"<style>.novita-table > table {{{TABLE}}}</style>"
FRAME = (
    f"border:{BORDER};border-radius:4px;padding:8px 12px;{FONT};"
    f"background:{_var('layout-color1', 'transparent')};max-width:100%;box-sizing:border-box"
)


def text(value: Any) -> str:
    """Escape anything for HTML; None becomes an em dash."""
    if value is None or value == "":
        return "&mdash;"
    return escape(str(value), quote=True)


def badge(status: str, phase: str) -> str:
    """The status as text with its phase icon and tint (colour is not the only signal)."""
    ink = PHASE_INK.get(phase, PHASE_INK["unknown"])
    icon = PHASE_ICONS.get(phase, "?")
    return (
        f"<span class='novita-status novita-{text(phase)}' title='{text(phase)}' "
        f"style='background:{PHASE_COLOURS.get(phase, PHASE_COLOURS['unknown'])};"
        f"border:1px solid {ink};padding:0 6px;border-radius:8px;white-space:nowrap'>"
        f"<span style='color:{ink}' aria-hidden='true'>{icon}</span> {text(status)}</span>"
    )


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    raw_columns: Iterable[str] = (),
    numeric: Iterable[str] = (),
    widths: Sequence[str] | None = None,
    header: bool = True,
) -> str:
    """A small HTML table in the shared style. Cells are escaped, except in ``raw_columns``
    (already HTML); ``numeric`` columns are right-aligned; ``widths`` fixes the layout so
    separately drawn tables (a header and its rows) line up."""
    raw, right = set(raw_columns), set(numeric)

    def style(column: str, base: str) -> str:
        return f"{base};{NUMERIC}" if column in right else base

    head = ""
    if header:
        cells = "".join(f"<th style='{style(c, HEAD)}'>{text(c)}</th>" for c in columns)
        head = f"<thead><tr>{cells}</tr></thead>"
    body = []
    for row in rows:
        cells = "".join(
            f"<td style='{style(column, CELL)}'>{cell if column in raw else text(cell)}</td>"
            for column, cell in zip(columns, row, strict=False)
        )
        body.append(f"<tr>{cells}</tr>")
    inner = f"{head}<tbody>{''.join(body)}</tbody></table>"
    if widths is not None:
        cols = "".join(f"<col style='width:{w}'>" for w in widths)
        fixed = f"table-layout:fixed;width:100%;{TABLE}"
        return f"<table class='novita-table' style='{fixed}'><colgroup>{cols}</colgroup>{inner}"
    # A plain <table> tag (other code and tests look for it); the class rule collapses borders.
    return f"<div class='novita-table'>{TABLE_STYLE}<table>{inner}</div>"


def copyable(value: str) -> str:
    """A monospace field with a copy button (works in Jupyter without widgets)."""
    safe = text(value)
    return (
        f"<code style='user-select:all'>{safe}</code> "
        f'<button onclick="navigator.clipboard.writeText(this.previousElementSibling.innerText)"'
        f" title='copy'>copy</button>"
    )


def format_money(amount: float | None, per_hour: bool = False) -> str:
    """Plain-text USD through ``money.format_money``: ``0.2975`` → ``$0.30``, ``$0.30/h`` with
    ``per_hour``; a positive amount under a cent is ``<$0.01`` (never a made-up ``$0.00``);
    None → ``—``."""
    if amount is not None and 0 < abs(amount) < 0.005:
        return "<$0.01/h" if per_hour else "<$0.01"
    if amount is not None and amount < 0:
        return "-" + _money.format_money(-amount, per_hour=per_hour)
    return _money.format_money(amount, per_hour=per_hour, missing="\u2014")


def approx_money(amount: float) -> str:
    """An estimate: ``≈$0.35``, or ``<$0.01`` (already a bound, so no ``≈``)."""
    shown = format_money(amount)
    return shown if shown.startswith("<") else f"\u2248{shown}"


def money(amount: float | None, per_hour: bool = False) -> str:
    """``0.35`` → ``$0.35`` (``$0.35/h`` with ``per_hour``), escaped for HTML."""
    if amount is None:
        return "&mdash;"
    return text(format_money(amount, per_hour=per_hour))


def relative_time(moment: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago``, ``2 h ago``, ``just now``; None → ``—``."""
    if moment is None:
        return "\u2014"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now" if seconds < 10 else f"{int(seconds)} s ago"


def spent_so_far(
    instance: Instance, now: datetime | None = None, since: datetime | None = None
) -> float | None:
    """USD spent since the last start (or ``since``, e.g. the ledger's creation time when the
    API gives no start), for a billed instance with a known price; else None (unknown).
    The arithmetic is ``money.cost_so_far``'s."""
    from .models import BILLED_STATUSES

    if instance.status not in BILLED_STATUSES:
        return None
    start = instance.started_at or instance.created_at or since
    return _money.cost_so_far(instance.price_per_hour, start, now or datetime.now(UTC))


def link(url: str | None) -> str:
    """A link styled with the theme's link colour (widgets otherwise show it as plain text)."""
    if not url:
        return "&mdash;"
    safe = text(url)
    return f"<a href='{safe}' target='_blank' rel='noopener' style='{LINK}'>{safe}</a>"


def key_value_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (label, already-escaped HTML value)."""
    label = (
        f"text-align:left;padding:2px 12px 2px 0;font-weight:600;color:{MUTED};white-space:nowrap"
    )
    return (
        f"<table style='{TABLE}'>"
        + "".join(
            f"<tr><th style='{label}'>{text(k)}</th>"
            f"<td style='padding:2px 0;overflow-wrap:anywhere'>{v}</td></tr>"
            for k, v in rows
        )
        + "</table>"
    )


def frame(title: str, body: str, *, subtitle: str = "") -> str:
    """The shared container of cards and panels: a title line and a body."""
    extra = f" <span style='color:{MUTED};font-weight:normal'>{subtitle}</span>" if subtitle else ""
    return (
        f"<div class='novita-frame' style='{FRAME}'>"
        f"<div style='font-weight:600;margin-bottom:4px'>{title}{extra}</div>{body}</div>"
    )


def instance_card(instance: Instance, since: datetime | None = None) -> str:
    """The connection card of an instance: where, what, price, Jupyter link, SSH command.
    Never shows the SSH password or any credential."""
    rows: list[tuple[str, str]] = [
        ("status", badge(instance.status or "unknown", instance.phase)),
        ("id", f"<code>{text(instance.id)}</code>"),
    ]
    # A gone instance the API no longer lists knows only its id: no rows of dashes.
    for label, value in (
        ("region", instance.region),
        ("product", instance.product_name),
        ("GPUs", instance.gpu_num),
        ("image", instance.image_url),
    ):
        if value not in (None, "") or instance.phase != "removed":
            rows.append((label, text(value)))
    created = instance.created_at or since
    if created is not None:
        rows.append(
            (
                "created",
                f"<span title='{text(created.isoformat())}'>{text(relative_time(created))}</span>",
            )
        )
    if instance.price_per_hour is not None:
        mark = _money.ESTIMATE_MARK if instance.price_estimated else ""  # a guessed unit
        rows.append(("price", mark + money(instance.price_per_hour, per_hour=True)))
        spent = spent_so_far(instance, since=since)
        if spent is not None:
            rows.append(("spent so far", text(approx_money(spent))))
    if instance.jupyter_url:
        rows.append(("Jupyter", link(instance.jupyter_url)))
    if instance.web_terminal_url:
        rows.append(("web terminal", link(instance.web_terminal_url)))
    for port in instance.port_mappings:
        if port.endpoint:
            value = link(port.endpoint) if port.type == "http" else text(port.endpoint)
            rows.append((f"port {port.port}/{port.type}", value))
    if instance.ssh_command:
        rows.append(("SSH", copyable(instance.ssh_command)))
    if instance.status_error is not None:
        rows.append(
            ("error", text(f"{instance.status_error.state}: {instance.status_error.message}"))
        )
    return frame(text(instance.name or instance.id), key_value_table(rows))


def instance_text(instance: Instance) -> str:
    """The connection card as plain text (terminals, logs); no password."""
    lines = [f"{instance.name}  {instance.status}  ({instance.id})"]
    for label, value in (
        ("region", instance.region),
        ("product", instance.product_name),
        (
            "price",
            format_money(instance.price_per_hour, per_hour=True)
            if instance.price_per_hour is not None
            else None,
        ),
        ("Jupyter", instance.jupyter_url),
        ("SSH", instance.ssh_command),
    ):
        if value:
            lines.append(f"  {label:<8} {value}")
    return "\n".join(lines)


#: Columns of instance_table, in order, and their share of a fixed-layout table.
INSTANCE_COLUMNS: tuple[str, ...] = ("name", "status", "region", "product", "$/h", "id")
INSTANCE_WIDTHS: tuple[str, ...] = ("18%", "15%", "13%", "22%", "10%", "22%")


def instance_cells(instance: Instance, note: str = "", eta: str = "") -> list[str]:
    """One instance as already-escaped HTML cells (INSTANCE_COLUMNS order); ``note`` (HTML,
    e.g. a guard badge) goes under the name, ``eta`` (HTML, "ready in ~40 s") under the
    status."""
    return [
        f"<b>{text(instance.name)}</b>" + (f"<br>{note}" if note else ""),
        badge(instance.status or "unknown", instance.phase) + (f"<br>{eta}" if eta else ""),
        text(instance.region),
        text(instance.product_name),
        money(instance.price_per_hour),
        f"<code style='font-size:90%'>{text(instance.id)}</code>",
    ]


def instance_table(
    instances: Iterable[Instance],
    *,
    header: bool = True,
    notes: dict[str, str] | None = None,
    etas: dict[str, str] | None = None,
) -> str:
    """A table of instances, status shown by icon, text and tint; no secrets. Fixed column
    widths, so a header drawn alone lines up with rows drawn alone. ``notes`` and ``etas``
    map an id to HTML shown under its name and under its status."""
    notes, etas = notes or {}, etas or {}
    return table(
        INSTANCE_COLUMNS,
        (instance_cells(i, notes.get(i.id, ""), etas.get(i.id, "")) for i in instances),
        raw_columns=INSTANCE_COLUMNS,
        numeric=("$/h",),
        widths=INSTANCE_WIDTHS,
        header=header,
    )


def _blank(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA (whose comparisons raise on ``bool``)."""
    if value is None or value == "":
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


#: The compact instance list (``%novita instances``): what fits 1,000 px, in reading order.
OVERVIEW_COLUMNS = ("name", "status", "region", "product", "$/h", "so far", "created", "id")


def instance_overview_cells(row: dict[str, Any], now: datetime | None = None) -> list[str]:
    """One row of the instance frame (``frames.instances_frame`` columns) as HTML cells."""
    value = {k: (None if _blank(v) else v) for k, v in row.items()}
    product = text(value.get("product"))
    gpus = value.get("gpus")
    if gpus is not None and int(gpus) > 1:
        product += f" \u00d7{int(gpus)}"
    status = badge(str(value.get("status") or "unknown"), str(value.get("phase") or "unknown"))
    if value.get("error"):
        status = f"<span title='{text(value['error'])}'>{status}</span>"
    cost = value.get("cost_so_far")
    created = value.get("created_at") or value.get("started_at")
    when = relative_time(created, now) if created is not None else "\u2014"
    nowrap = "white-space:nowrap"
    return [
        f"<b style='{nowrap}'>{text(value.get('name'))}</b>",
        status,
        f"<span style='{nowrap}'>{text(value.get('region'))}</span>",
        product,
        money(value.get("price_per_hour")),
        text(approx_money(cost)) if cost is not None else "&mdash;",
        f"<span title='{text(created)}'>{text(when)}</span>" if created is not None else when,
        f"<code style='font-size:90%'>{text(value.get('id'))}</code>",
    ]


def instances_overview(
    rows: Iterable[dict[str, Any]], *, columns: int = 0, now: datetime | None = None
) -> str:
    """The instance frame as a compact table (status badges, money, relative times, no
    secrets), ≤ 1,000 px wide; a caption says the frame has ``columns`` columns in all."""
    rows = list(rows)
    body = table(
        OVERVIEW_COLUMNS,
        (instance_overview_cells(r, now) for r in rows),
        raw_columns=OVERVIEW_COLUMNS,
        numeric=("$/h", "so far"),
    )
    caption = f"{len(rows)} instance(s)"
    if columns:
        caption += f" \u00b7 a DataFrame of {columns} columns (<code>df.columns</code>)"
    return (
        f"<div class='novita-instances' style='max-width:1000px;{FONT}'>{body}"
        f"<div style='color:{MUTED};padding:2px 8px'>{caption}</div></div>"
    )


def sparkline(
    values: Sequence[float], *, width: int = 120, height: int = 24, label: str = ""
) -> str:
    """A small inline SVG line of ``values`` (oldest first), in the theme's brand colour."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    ink = _var("brand-color1", "#1976d2")
    return (
        f"<svg class='novita-sparkline' width='{width}' height='{height}' role='img' "
        f"aria-label='{text(label)}' style='vertical-align:middle'><title>{text(label)}</title>"
        f"<polyline fill='none' stroke='{ink}' stroke-width='1.5' points='{points}'/></svg>"
    )


def bar_chart(items: Sequence[tuple[str, float]], *, unit: str = "/h", width: int = 160) -> str:
    """Horizontal bars, one per (label, value), cheapest first; numbers right-aligned."""
    if not items:
        return ""
    top = max(v for _, v in items) or 1.0
    ink = _var("brand-color1", "#1976d2")
    rows = []
    for label, value in sorted(items, key=lambda item: item[1]):
        bar = max(2, round(value / top * width))
        rows.append(
            f"<tr><td style='padding:1px 8px 1px 0;white-space:nowrap'>{text(label)}</td>"
            f"<td style='padding:1px 0;width:{width}px'><div style='background:{ink};"
            f"height:10px;width:{bar}px;border-radius:2px'></div></td>"
            f"<td style='padding:1px 0 1px 8px;{NUMERIC}'>{money(value, per_hour=unit == '/h')}</td></tr>"
        )
    return f"<table class='novita-bars' style='{TABLE}'>{''.join(rows)}</table>"


#: Guard and spot notices: icon and ink per event type (text says it too).
NOTICE_LOOK: dict[str, tuple[str, str]] = {
    "guard.warning": ("\u26a0", PHASE_INK["starting"]),  # ⚠
    "spot.reclaim_notice": ("\u26a1", PHASE_INK["starting"]),  # ⚡
    "guard.stopped": ("\u25a0", PHASE_INK["stopped"]),  # ■
    "guard.deleted": ("\u2715", PHASE_INK["removed"]),  # ✕
    "guard.migrated": ("\u21bb", PHASE_INK["running"]),  # ↻
    "guard.recreated": ("\u21bb", PHASE_INK["running"]),
}


def guard_note(describe: str, deadline: datetime | None, reclaim: str | None = None) -> str:
    """A small muted line under an instance's name: ``guarded · until 18:00Z`` (the rules in
    its tooltip), and a spot reclaim time when one was announced."""
    small = f"color:{MUTED};font-size:90%;white-space:nowrap"
    parts = []
    if describe:
        until = f" \u00b7 until {deadline:%H:%M}Z" if deadline is not None else ""
        parts.append(
            f"<span class='novita-guard' title='{text(describe)}' style='{small}'>"
            f"guarded{until}</span>"
        )
    if reclaim:
        ink = PHASE_INK["starting"]
        parts.append(
            f"<span class='novita-reclaim' style='{small};color:{ink}'>"
            f"\u26a1 reclaim {text(reclaim)}</span>"
        )
    return "<br>".join(parts)


def eta_note(words: str, detail: str = "") -> str:
    """The time a start is expected to take, small and muted under the status badge."""
    if not words:
        return ""
    title = f" title='{text(detail)}'" if detail else ""
    return (
        f"<span class='novita-eta'{title} style='color:{MUTED};font-size:90%'>"
        f"\u23f1 {text(words)}</span>"
    )


def notice(event_type: str, words: str) -> str:
    """A guard or spot event as one block: icon and first line, the calls after it in code."""
    icon, ink = NOTICE_LOOK.get(event_type, ("\u2022", MUTED))
    first, *rest = words.splitlines() or [""]
    calls = "".join(
        f"<div style='color:{MUTED};padding-left:18px'><code>{text(line.strip())}</code></div>"
        for line in rest
    )
    return (
        f"<div class='novita-notice' data-event='{text(event_type)}' "
        f"style='{FONT};line-height:1.4;padding:2px 0'>"
        f"<span style='color:{ink}' aria-hidden='true'>{icon}</span> {text(first)}{calls}</div>"
    )
