"""HTML building blocks for rich display (_repr_html_), shared by every object that renders.
Plain strings only: no IPython or ipywidgets here, so the core stays importable anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, raw_columns: Iterable[str] = ()) -> str:
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
        f"<button onclick=\"navigator.clipboard.writeText(this.previousElementSibling.innerText)\""
        f" title='copy'>copy</button>"
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
        rows.append(("price", text(f"${instance.price_per_hour:.2f}/h")))
    if instance.jupyter_url:
        url = text(instance.jupyter_url)
        rows.append(("Jupyter", f"<a href='{url}' target='_blank'>{url}</a>"))
    for port in instance.port_mappings:
        if port.endpoint:
            rows.append((f"port {port.port}/{port.type}", text(port.endpoint)))
    if instance.ssh_command:
        rows.append(("SSH", copyable(instance.ssh_command)))
    if instance.status_error is not None:
        rows.append(("error", text(f"{instance.status_error.state}: {instance.status_error.message}")))
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>" for k, v in rows
    )
    return (
        "<div style='border:1px solid #ccc;border-radius:6px;padding:8px;display:inline-block'>"
        f"<b>{text(instance.name)}</b><table>{body}</table></div>"
    )
