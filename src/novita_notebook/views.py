"""The HTML views of instances, built from html.py's pieces: the connection card, the panel's
rows, the compact instance list, guard and ETA notes, guard and spot notices, and the list of
runs. No IPython.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import money as _money
from .html import (
    MUTED,
    NOWRAP,
    PHASE_INK,
    approx_money,
    badge,
    copyable,
    format_money,
    frame,
    key_value_table,
    link,
    money,
    muted,
    nowrap,
    status_badge,
    table,
    text,
    timestamp,
    when,
)
from .vocabulary import billing_word, status_word

if TYPE_CHECKING:  # pragma: no cover
    from .models import Instance


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


def instance_card(instance: Instance, since: datetime | None = None) -> str:
    """The connection card of an instance: where, what, price, Jupyter link, SSH command.
    Never shows the SSH password or any credential; only http(s) URLs become links."""
    rows: list[tuple[str, str]] = [
        ("status", status_badge(instance.status, instance.phase)),
        ("id", f"<code>{text(instance.id)}</code>"),
    ]
    # A gone instance the API no longer lists knows only its id: no rows of dashes.
    for label, value in (
        ("region", nowrap(instance.region) if instance.region else None),
        ("product", text(instance.product_name) if instance.product_name else None),
        ("GPUs", text(instance.gpu_num) if instance.gpu_num else None),
        ("billing", text(billing_word(instance.billing_mode)) if instance.billing_mode else None),
        ("image", text(instance.image_url) if instance.image_url else None),
    ):
        if value is not None or instance.phase != "removed":
            rows.append((label, value or "&mdash;"))
    created = instance.created_at or since
    if created is not None:
        rows.append(("created", when(created)))
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
    return frame(text(instance.name or instance.id), key_value_table(rows), kind="card")


def instance_text(instance: Instance) -> str:
    """The connection card as plain text (terminals, logs); no password."""
    word = status_word(instance.status, failed=instance.phase == "failed")
    lines = [f"{instance.name}  {word}  ({instance.id})"]
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
        status_badge(instance.status, instance.phase) + (f"<br>{eta}" if eta else ""),
        nowrap(instance.region),
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
    """A table of instances, status shown by icon, word and tint; no secrets. Fixed column
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


#: The compact instance list (``%novita instances``, ``%novita mine``): what fits 1,000 px.
OVERVIEW_COLUMNS = ("name", "status", "region", "product", "$/h", "so far", "created", "id")


def instance_overview_cells(row: dict[str, Any], now: datetime | None = None) -> list[str]:
    """One row of an instance frame (``instances()`` or ``mine()`` columns) as HTML cells."""
    value = {k: (None if _blank(v) else v) for k, v in row.items()}
    product = text(value.get("product"))
    gpus = value.get("gpus", value.get("gpu_num"))
    if gpus is not None and int(gpus) > 1:
        product += f" \u00d7{int(gpus)}"
    status = status_badge(
        str(value["status"]) if value.get("status") else None,
        str(value.get("phase") or "unknown"),
    )
    if value.get("error"):
        status = f"<span title='{text(value['error'])}'>{status}</span>"
    cost = value.get("cost_so_far")
    created = value.get("created_at") or value.get("started_at")
    return [
        f"<b style='{NOWRAP}'>{text(value.get('name'))}</b>",
        status,
        nowrap(value.get("region")),
        product,
        money(value.get("price_per_hour")),
        text(approx_money(cost)) if cost is not None else "&mdash;",
        when(created, now) if isinstance(created, datetime) else text(created),
        f"<code style='font-size:90%'>{text(value.get('id'))}</code>",
    ]


def instances_overview(
    rows: Iterable[dict[str, Any]],
    *,
    columns: int = 0,
    now: datetime | None = None,
    caption: str = "",
) -> str:
    """An instance frame as a compact table (status in words, money, relative times, no
    secrets), ≤ 1,000 px wide; a caption says how many and that the frame has ``columns``
    columns in all."""
    rows = list(rows)
    body = table(
        OVERVIEW_COLUMNS,
        (instance_overview_cells(r, now) for r in rows),
        raw_columns=OVERVIEW_COLUMNS,
        numeric=("$/h", "so far"),
    )
    words = caption or f"{len(rows)} instance{'' if len(rows) == 1 else 's'}"
    if columns:
        words = f"{text(words)} \u00b7 a DataFrame of {columns} columns (<code>df.columns</code>)"
    else:
        words = text(words)
    return (
        f"<div class='novita-instances' style='max-width:1000px;text-align:left'>{body}"
        f"<div style='color:{MUTED};padding:2px 8px'>{words}</div></div>"
    )


# -- guard and spot ---------------------------------------------------------------------------

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
    """A small muted line under an instance's name: ``guarded · until 18:00 UTC`` (the rules in
    its tooltip), and a spot reclaim time when one was announced."""
    small = f"color:{MUTED};font-size:90%;{NOWRAP}"
    parts = []
    if describe:
        until = f" \u00b7 until {deadline:%H:%M} UTC" if deadline is not None else ""
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
        f"<span class='novita-eta'{title} style='color:{MUTED};font-size:90%'>{text(words)}</span>"
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
        f"style='line-height:1.4;padding:2px 0;text-align:left'>"
        f"<span style='color:{ink}' aria-hidden='true'>{icon}</span> {text(first)}{calls}</div>"
    )


def guard_status_html(status: dict[str, Any]) -> str:
    """``guard_status()`` as one view: the process, the in-kernel guard, the rules of each
    guarded instance (with the spend a total budget counted), the next action and the latest
    actions, times to the second."""
    process = "running" if status.get("running") else "not running"
    if status.get("pid") and status.get("running"):
        process += f" (pid {status['pid']})"
    elif status.get("reason"):
        process += f" ({status['reason']})"
    names, spent = status.get("names") or {}, status.get("spent") or {}
    readings = status.get("idle_readings") or {}
    rules = []
    for instance_id, words in (status.get("rules") or {}).items():
        if instance_id in readings:  # where the idle rule read the GPU's utilisation
            words = f"{words}; {readings[instance_id]}"
        counted = spent.get(instance_id)
        budget = text(format_money(counted)) + " counted" if counted is not None else "&mdash;"
        rules.append(
            [nowrap(names.get(instance_id) or "?"), text(words), budget, nowrap(instance_id)]
        )
    rows = [
        ("guard process", text(process)),
        ("in-kernel guard", text(status.get("kernel") or "off")),
        ("next action", _next_action(status.get("next_action"))),
    ]
    if status.get("metrics_unit"):
        rows.append(("metrics unit", text(status["metrics_unit"])))
    if status.get("intents"):  # creates in flight: their rules apply once they exist
        rows.append(("creates in flight", text(", ".join(status["intents"]))))
    body = key_value_table(rows)
    if rules:
        body += table(
            ("instance", "rules", "total budget", "id"),
            rules,
            raw_columns=("instance", "rules", "total budget", "id"),
        )
    else:
        body += muted("No instance is guarded.")
    # rules lost or rebuilt, actions that failed: then the latest actions
    for title, key in (("Problems", "problems"), ("Latest actions", "actions")):
        entries = [
            [
                nowrap(_timestamp_text(entry.get("time"))),
                text(entry.get("action")),
                nowrap(entry.get("name") or entry.get("instance_id")),
                text(entry.get("result")),
                text(entry.get("reason")),
            ]
            for entry in status.get(key) or ()
        ]
        if entries:
            body += muted(title)
            body += table(
                ("time", "action", "instance", "result", "reason"),
                entries,
                raw_columns=("time", "action", "instance", "result", "reason"),
            )
    for note in status.get("notes") or ():
        body += muted(text(note))
    return frame("Guard", body, kind="guard-status")


def _next_action(action: dict[str, Any] | None) -> str:
    if not action:
        return "none planned"
    who = action.get("name") or action.get("instance_id")
    due = _timestamp_text(action.get("due"))
    return text(f"{action.get('kind')} {who} at {due} ({action.get('reason')})")


def _timestamp_text(value: Any) -> str:
    return timestamp(value) or "\u2014"


# -- runs -------------------------------------------------------------------------------------

#: A run's state → the phase whose icon and ink show it (the state's word is always shown).
RUN_PHASES: dict[str, str] = {
    "starting": "provisioning",
    "running": "starting",  # under way: the in-progress ink, not yet the green of done
    "succeeded": "running",
    "failed": "failed",
    "timed_out": "failed",
    "interrupted": "stopped",
    "lost": "removed",
    "not_started": "unknown",
}
RUNS_COLUMNS = ("run", "instance", "state", "started", "duration", "exit", "cost", "follow")


def run_duration(seconds: float | None) -> str:
    """``0.4`` → ``0.4s``, ``75`` → ``1m15s``: tenths under ten seconds, whole seconds above."""
    if seconds is None:
        return "\u2014"
    from .validation import format_duration

    return format_duration(round(seconds, 1) if seconds < 10 else round(seconds))


def run_cells(row: dict[str, Any], now: datetime | None = None) -> list[str]:
    """One row of ``runs()`` as HTML cells (RUNS_COLUMNS order)."""
    value = {k: (None if _blank(v) else v) for k, v in row.items()}
    state = str(value.get("state") or "unknown")
    duration = value.get("duration")
    seconds = duration.total_seconds() if duration is not None else None
    started = value.get("started")
    run_id = text(value.get("run"))
    follow = f"<code style='font-size:90%;{NOWRAP}'>%novita attach {run_id}</code>"
    return [
        f"<code style='font-size:90%'>{run_id}</code>",
        nowrap(value.get("instance")),
        badge(state.replace("_", " "), RUN_PHASES.get(state, "unknown"), f"run state: {state}"),
        when(started.to_pydatetime() if hasattr(started, "to_pydatetime") else started, now),
        text(run_duration(seconds)),
        text(value.get("exit_code")) if value.get("exit_code") is not None else "&mdash;",
        text(approx_money(value["cost"])) if value.get("cost") is not None else "&mdash;",
        follow,
    ]


def runs_overview(rows: Iterable[dict[str, Any]], *, caption: str = "") -> str:
    """A ``runs()`` frame as a compact table: state in words with its icon, times relative
    (exact in the tooltip), the call that follows each run here."""
    rows = list(rows)
    body = table(
        RUNS_COLUMNS,
        (run_cells(r) for r in rows),
        raw_columns=RUNS_COLUMNS,
        numeric=("duration", "exit", "cost"),
    )
    words = caption or f"{len(rows)} run{'' if len(rows) == 1 else 's'}, newest first"
    return (
        f"<div class='novita-runs' style='max-width:1000px;text-align:left'>{body}"
        f"<div style='color:{MUTED};padding:2px 8px'>{text(words)}</div></div>"
    )
