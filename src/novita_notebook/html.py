"""HTML building blocks for every view (cards, panel, browser, reports, handout): tables that
the notebook's own table CSS cannot restyle, badges, money, times and safe links. No IPython.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit

from . import money as _money
from .vocabulary import status_detail, status_word


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

#: A symbol per phase, so colour is never the only signal (geometric shapes, which every
#: font draws; no emoji).
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

# -- the shared look --------------------------------------------------------------------------
# Every table element carries its whole style inline. JupyterLab and Notebook 7 style output
# tables by class (cells right-aligned, rows striped, cells wrapped, fixed layout, centred);
# an inline declaration wins over any of those rules, so each view looks the same everywhere.
FONT = (
    f"font-family:{_var('ui-font-family', 'system-ui, sans-serif')};"
    f"font-size:{_var('ui-font-size1', '13px')};color:{_var('ui-font-color1', 'inherit')}"
)
BORDER = f"1px solid {_var('border-color2', '#e0e0e0')}"
MUTED = _var("ui-font-color2", "#757575")
LINK = f"color:{_var('content-link-color', '#0d47a1')};text-decoration:underline"
TABLE = (
    "border-collapse:collapse;border-spacing:0;border:none;margin:0;table-layout:auto;"
    f"width:auto;line-height:1.4;{FONT}"
)
ROW = "background:transparent"
CELL = (
    f"padding:3px 8px;border:none;border-bottom:{BORDER};vertical-align:top;text-align:left;"
    "white-space:normal;max-width:none;background:transparent"
)
NUMERIC = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"
NOWRAP = "white-space:nowrap"
HEAD = f"{CELL};font-weight:600;color:{MUTED};white-space:nowrap"
FRAME = (
    f"border:{BORDER};border-radius:4px;padding:8px 12px;{FONT};text-align:left;"
    f"background:{_var('layout-color1', 'transparent')};max-width:100%;box-sizing:border-box"
)


def text(value: Any) -> str:
    """Escape anything for HTML; None becomes an em dash."""
    if value is None or value == "":
        return "&mdash;"
    return escape(str(value), quote=True)


def nowrap(value: Any) -> str:
    """Escaped text kept on one line (region codes, names, ids)."""
    return f"<span style='{NOWRAP}'>{text(value)}</span>"


def badge(label: str, phase: str, title: str = "") -> str:
    """``label`` with its phase icon and tint (colour is not the only signal)."""
    ink = PHASE_INK.get(phase, PHASE_INK["unknown"])
    icon = PHASE_ICONS.get(phase, "?")
    return (
        f"<span class='novita-status novita-{text(phase)}' title='{text(title or phase)}' "
        f"style='background:{PHASE_COLOURS.get(phase, PHASE_COLOURS['unknown'])};"
        f"border:1px solid {ink};padding:0 6px;border-radius:8px;white-space:nowrap'>"
        f"<span style='color:{ink}' aria-hidden='true'>{icon}</span> {text(label)}</span>"
    )


def status_badge(status: str | None, phase: str) -> str:
    """An instance's status in words (``creating``, ``stopped``, ``failed``...); the API's own
    status in the tooltip."""
    word = status_word(status, failed=phase == "failed")
    detail = status_detail(status)
    title = f"API status: {status or 'unknown'}" + (f" ({detail})" if detail else "")
    return badge(word, phase, title)


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    raw_columns: Iterable[str] = (),
    numeric: Iterable[str] = (),
    nowrap_columns: Iterable[str] = (),
    widths: Sequence[str] | None = None,
    header: bool = True,
) -> str:
    """A table in the shared style. Cells are escaped, except in ``raw_columns`` (already
    HTML); ``numeric`` columns are right-aligned, ``nowrap_columns`` never break; ``widths``
    fixes the layout so separately drawn tables (a header and its rows) line up."""
    raw, right, whole = set(raw_columns), set(numeric), set(nowrap_columns)

    def style(column: str, base: str) -> str:
        if column in right:
            return f"{base};{NUMERIC}"
        return f"{base};{NOWRAP}" if column in whole else base

    head = ""
    if header:
        cells = "".join(f"<th style='{style(c, HEAD)}'>{text(c)}</th>" for c in columns)
        head = f"<thead><tr style='{ROW}'>{cells}</tr></thead>"
    body = []
    for row in rows:
        cells = "".join(
            f"<td style='{style(column, CELL)}'>{cell if column in raw else text(cell)}</td>"
            for column, cell in zip(columns, row, strict=False)
        )
        body.append(f"<tr style='{ROW}'>{cells}</tr>")
    inner = f"{head}<tbody>{''.join(body)}</tbody></table>"
    if widths is not None:
        cols = "".join(f"<col style='width:{w}'>" for w in widths)
        fixed = TABLE.replace("table-layout:auto;width:auto", "table-layout:fixed;width:100%")
        return f"<table class='novita-table' style='{fixed}'><colgroup>{cols}</colgroup>{inner}"
    return f"<table class='novita-table' style='{TABLE}'>{inner}"


def progress_bar(fraction: float, ink: str, width: int = 120) -> str:
    """A small static bar, ``fraction`` of it filled with ``ink`` (snapshots of progress)."""
    percent = round(max(0.0, min(1.0, fraction)) * 100)
    return (
        f"<span style='display:inline-block;width:{width}px;height:10px;vertical-align:middle;"
        f"border:{BORDER};border-radius:2px'><span style='display:block;height:100%;"
        f"width:{percent}%;background:{ink}'></span></span>"
    )


def key_value_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (label, already-escaped HTML value)."""
    label = (
        f"{CELL};border-bottom:none;padding:2px 12px 2px 0;font-weight:600;color:{MUTED};{NOWRAP}"
    )
    value = f"{CELL};border-bottom:none;padding:2px 0;overflow-wrap:anywhere"
    return (
        f"<table class='novita-fields' style='{TABLE}'>"
        + "".join(
            f"<tr style='{ROW}'><th style='{label}'>{text(k)}</th><td style='{value}'>{v}</td></tr>"
            for k, v in rows
        )
        + "</table>"
    )


def frame(title: str, body: str, *, subtitle: str = "", kind: str = "") -> str:
    """The shared container of cards, panels and reports: a title line and a body.
    ``title`` is HTML (escape it first); ``kind`` names the view (a ``novita-<kind>`` class)."""
    extra = f" <span style='color:{MUTED};font-weight:normal'>{subtitle}</span>" if subtitle else ""
    classes = "novita-frame" + (f" novita-{kind}" if kind else "")
    return (
        f"<div class='{classes}' style='{FRAME}'>"
        f"<div style='font-weight:600;margin-bottom:4px'>{title}{extra}</div>{body}</div>"
    )


def muted(words: str) -> str:
    """A small muted line (already-escaped HTML)."""
    return f"<div style='color:{MUTED};font-size:90%;padding:2px 0'>{words}</div>"


# -- money and time ---------------------------------------------------------------------------


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


def timestamp(moment: datetime | str | None) -> str:
    """``2026-12-01 18:00:05 UTC``: to the second, in UTC (no microseconds); "" for None; a
    string that is not a time is returned as it is."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock_time(moment: datetime) -> str:
    """``18:00:05 UTC``: the time of day of a recent moment."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")


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


def when(moment: datetime | None, now: datetime | None = None) -> str:
    """A relative time with the exact one (to the second) in its tooltip."""
    if moment is None:
        return "&mdash;"
    return f"<span title='{text(timestamp(moment))}'>{text(relative_time(moment, now))}</span>"


# -- links ------------------------------------------------------------------------------------


def safe_url(url: Any) -> str | None:
    """``url`` if it is an http(s) URL, else None: a ``javascript:`` or ``data:`` URL from
    the API must never become something a click runs."""
    if not isinstance(url, str):
        return None
    stripped = url.strip()
    try:
        # urlsplit drops tabs and newlines as browsers do ("java\tscript:" is javascript:)
        parts = urlsplit(stripped)
    except ValueError:
        return None
    return stripped if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def link(url: str | None, label: str | None = None) -> str:
    """A link styled with the theme's link colour, for http(s) URLs only; anything else is
    shown as plain text."""
    if not url:
        return "&mdash;"
    safe = safe_url(url)
    if safe is None:
        return f"<span title='not a web address: not linked'>{text(url)}</span>"
    return (
        f"<a href='{text(safe)}' target='_blank' rel='noopener noreferrer' style='{LINK}'>"
        f"{text(label or safe)}</a>"
    )


def copyable(value: str) -> str:
    """A monospace field with a copy button (works in Jupyter without widgets)."""
    safe = text(value)
    return (
        f"<code style='user-select:all'>{safe}</code> "
        f'<button onclick="navigator.clipboard.writeText(this.previousElementSibling.innerText)"'
        f" title='copy'>copy</button>"
    )


# -- small charts -----------------------------------------------------------------------------


def sparkline(
    values: Sequence[float],
    *,
    width: int = 120,
    height: int = 24,
    label: str = "",
    low: str = "",
    high: str = "",
) -> str:
    """A small inline SVG line of ``values`` (oldest first) in the theme's brand colour, with
    ``label`` written before it and the ``low``/``high`` ends after it (e.g. "$0.35–$0.70/h")."""
    if len(values) < 2:
        return ""
    least, most = min(values), max(values)
    span = (most - least) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v - least) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    ink = _var("brand-color1", "#1976d2")
    small = f"color:{MUTED};font-size:90%;{NOWRAP}"
    before = f"<span style='{small}'>{text(label)}</span> " if label else ""
    ends = f" <span style='{small}'>{text(low)}\u2013{text(high)}</span>" if low or high else ""
    return (
        f"<span class='novita-sparkline'>{before}"
        f"<svg width='{width}' height='{height}' role='img' aria-label='{text(label)}' "
        f"style='vertical-align:middle'><title>{text(label)}</title>"
        f"<polyline fill='none' stroke='{ink}' stroke-width='1.5' points='{points}'/></svg>"
        f"{ends}</span>"
    )


def bar_chart(items: Sequence[tuple[str, float]], *, unit: str = "/h", width: int = 160) -> str:
    """Horizontal bars, one per (label, value), cheapest first; numbers right-aligned."""
    if not items:
        return ""
    top = max(v for _, v in items) or 1.0
    ink = _var("brand-color1", "#1976d2")
    plain = f"{CELL};border-bottom:none"
    rows = []
    for label, value in sorted(items, key=lambda item: item[1]):
        bar = max(2, round(value / top * width))
        rows.append(
            f"<tr style='{ROW}'><td style='{plain};padding:1px 8px 1px 0;{NOWRAP}'>"
            f"{text(label)}</td>"
            f"<td style='{plain};padding:1px 0;width:{width}px'><div style='background:{ink};"
            f"height:10px;width:{bar}px;border-radius:2px'></div></td>"
            f"<td style='{plain};padding:1px 0 1px 8px;{NUMERIC}'>"
            f"{money(value, per_hour=unit == '/h')}</td></tr>"
        )
    return f"<table class='novita-bars' style='{TABLE}'>{''.join(rows)}</table>"
