"""HTML building blocks for rich display (_repr_html_), shared by every object that renders.
Plain strings only: no IPython or ipywidgets here, so the core stays importable anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .models import Instance

#: Background colour per phase (models.PHASES), used by cards, tables and the instance panel.
PHASE_COLOURS: dict[str, str] = {
    "provisioning": "#fff3cd",
    "starting": "#fff3cd",
    "running": "#d1e7dd",
    "stopping": "#e2e3e5",
    "stopped": "#e2e3e5",
    "removing": "#f8d7da",
    "removed": "#f8d7da",
    "failed": "#f5c2c7",
    "unknown": "#ffffff",
}


def text(value: Any) -> str:
    """Escape anything for HTML; None becomes an em dash."""
    if value is None or value == "":
        return "&mdash;"
    return escape(str(value), quote=True)


def badge(status: str, phase: str) -> str:
    colour = PHASE_COLOURS.get(phase, "#ffffff")
    return (
        f'<span style="background:{colour};padding:1px 6px;border-radius:8px;'
        f'font-family:monospace">{text(status)}</span>'
    )


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, raw_columns: Iterable[str] = ()
) -> str:
    """A small HTML table. Cells are escaped, except in ``raw_columns`` (already HTML)."""
    raw = set(raw_columns)
    head = "".join(f"<th style='text-align:left'>{text(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f"<td>{cell if column in raw else text(cell)}</td>"
            for column, cell in zip(columns, row, strict=False)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def copyable(value: str) -> str:
    """A monospace field with a copy button (works in Jupyter without widgets)."""
    safe = text(value)
    return (
        f"<code style='user-select:all'>{safe}</code> "
        f'<button onclick="navigator.clipboard.writeText(this.previousElementSibling.innerText)"'
        f" title='copy'>copy</button>"
    )


def money(amount: float | None, per_hour: bool = False) -> str:
    """``0.35`` → ``$0.35`` (``$0.35/h`` with ``per_hour``); None → an em dash."""
    if amount is None:
        return "&mdash;"
    return f"${amount:,.2f}{'/h' if per_hour else ''}"


def spent_so_far(instance: Instance, now: datetime | None = None) -> float | None:
    """USD spent since the last start, for a billed instance with a known price; else None."""
    from .models import BILLED_STATUSES

    if instance.price_per_hour is None or instance.status not in BILLED_STATUSES:
        return None
    since = instance.started_at or instance.created_at
    if since is None:
        return None
    seconds = ((now or datetime.now(UTC)) - since).total_seconds()
    return instance.price_per_hour * max(0.0, seconds) / 3600.0


def link(url: str | None) -> str:
    if not url:
        return "&mdash;"
    safe = text(url)
    return f"<a href='{safe}' target='_blank' rel='noopener'>{safe}</a>"


def key_value_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of (label, already-escaped HTML value)."""
    return (
        "<table>"
        + "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{text(k)}</th><td>{v}</td></tr>"
            for k, v in rows
        )
        + "</table>"
    )


def instance_card(instance: Instance) -> str:
    """The connection card of an instance: where, what, price, Jupyter link, SSH command.
    Never shows the SSH password or any credential."""
    rows: list[tuple[str, str]] = [
        ("status", badge(instance.status or "unknown", instance.phase)),
        ("id", text(instance.id)),
        ("region", text(instance.region)),
        ("product", text(instance.product_name)),
        ("GPUs", text(instance.gpu_num)),
        ("image", text(instance.image_url)),
    ]
    if instance.price_per_hour is not None:
        rows.append(("price", money(instance.price_per_hour, per_hour=True)))
        spent = spent_so_far(instance)
        if spent is not None:
            rows.append(("spent so far", f"&asymp;{money(spent)}"))
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
    return (
        "<div style='border:1px solid #ccc;border-radius:6px;padding:8px;display:inline-block'>"
        f"<b>{text(instance.name)}</b>{key_value_table(rows)}</div>"
    )


def instance_text(instance: Instance) -> str:
    """The connection card as plain text (terminals, logs); no password."""
    lines = [f"{instance.name}  {instance.status}  ({instance.id})"]
    for label, value in (
        ("region", instance.region),
        ("product", instance.product_name),
        (
            "price",
            f"${instance.price_per_hour:.2f}/h" if instance.price_per_hour is not None else None,
        ),
        ("Jupyter", instance.jupyter_url),
        ("SSH", instance.ssh_command),
    ):
        if value:
            lines.append(f"  {label:<8} {value}")
    return "\n".join(lines)


#: Columns of instance_table, in order.
INSTANCE_COLUMNS: tuple[str, ...] = ("name", "status", "region", "product", "$/h", "id")


def instance_cells(instance: Instance) -> list[str]:
    """One instance as already-escaped HTML cells (INSTANCE_COLUMNS order)."""
    return [
        f"<b>{text(instance.name)}</b>",
        badge(instance.status or "unknown", instance.phase),
        text(instance.region),
        text(instance.product_name),
        money(instance.price_per_hour),
        f"<code>{text(instance.id)}</code>",
    ]


def instance_table(instances: Iterable[Instance]) -> str:
    """A table of instances, status coloured by phase; no secrets."""
    return table(
        INSTANCE_COLUMNS,
        (instance_cells(i) for i in instances),
        raw_columns=INSTANCE_COLUMNS,
    )
