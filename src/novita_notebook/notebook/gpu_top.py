"""What an instance's GPUs are doing, in the package's look: ``TopFrame`` (the DataFrame of
``Novita.top`` drawn as one compact table with price and spend) and ``GpuTop``, the live widget
of ``%novita top NAME --live``: read again in the background every few seconds, with a
Stop/Resume button; it says when it is paused, when a reading fails (disconnected, retrying)
and ends by itself when the instance stops.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from .. import html
from ..errors import NotFoundError, NovitaError
from ..models import Instance
from ..protocols import NovitaClient
from . import display as _display
from .display import Displayable

DEFAULT_INTERVAL = 5.0
#: The reading's state -> the phase whose badge it wears.
_PHASES = {"live": "running", "paused": "stopped", "disconnected": "failed", "ended": "removed"}


def _number(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "\u2014"
    return f"{value:,.{digits}f}{unit}"


def _gib(mib: Any) -> str:
    return _number(None if mib is None else mib / 1024, digits=1)


def gpu_rows_html(frame: pd.DataFrame) -> str:
    """One row per GPU: utilisation and memory with a bar, temperature, power, processes."""
    ink = html.PHASE_INK["running"]
    rows = []
    for gpu in frame.to_dict("records"):
        used, total = gpu["memory_used_mib"], gpu["memory_total_mib"]
        share = (used / total) if used is not None and total else 0.0
        utilisation = gpu["utilization_pct"] or 0.0
        rows.append([
            html.nowrap(f"{gpu['gpu']}: {gpu['gpu_name']}"),
            f"{html.progress_bar(utilisation / 100, ink, 48)} {_number(gpu['utilization_pct'], ' %')}",
            f"{html.progress_bar(share, ink, 48)} {_gib(used)} / {_gib(total)} GiB",
            _number(gpu["temperature_c"], " \u00b0C"),
            f"{_number(gpu['power_w'])} / {_number(gpu['power_limit_w'], ' W')}",
            html.text(gpu["process_list"] or "none"),
        ])  # fmt: skip
    columns = ("GPU", "use", "memory", "temp", "power", "processes")
    return html.table(columns, rows, raw_columns=columns, numeric=("temp", "power"),
                      nowrap_columns=columns[:-1])  # fmt: skip


def money_parts(frame: pd.DataFrame, when: bool = True) -> list[str]:
    """``["$0.69/h", "$0.12 so far", "read 18:00:05 UTC (nvidia-smi over SSH)"]`` (``when``:
    with the time of the reading)."""
    if frame.empty:
        return ["no GPU reported"]
    first = frame.iloc[0]
    at = first["read_at"]
    parts = [html.format_money(first["price_per_hour"], per_hour=True),
             f"{html.format_money(first['cost_so_far'])} so far"]  # fmt: skip
    if when and isinstance(at, datetime):
        parts.append(f"read {html.clock_time(at)}")
    source = frame.attrs.get("source")
    if source:
        parts[-1] += f" ({source})"
    return parts


def money_line(frame: pd.DataFrame, when: bool = True) -> str:
    return " \u00b7 ".join(money_parts(frame, when))


def money_html(frame: pd.DataFrame, when: bool = True) -> str:
    """The money line with each part in its own element: JupyterLab's MathJax reads two
    dollar signs in one run of text as TeX, never across elements."""
    return " &middot; ".join(f"<span>{html.text(part)}</span>" for part in money_parts(frame, when))


class TopFrame(pd.DataFrame):
    """``%novita top NAME``: the DataFrame of ``Novita.top``, drawn as one table; every
    operation on it gives a plain DataFrame."""

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        name = self["name"].iloc[0] if len(self) else ""
        body = gpu_rows_html(self) + html.muted(money_html(self))
        return html.frame(f"GPUs of {html.text(name)}", body, kind="top")


class GpuTop(Displayable):
    """A live view of one instance's GPUs. ``start()``/``stop()`` resume and pause it; it
    ends by itself once the instance is no longer running."""

    def __init__(
        self,
        client: NovitaClient,
        instance: Instance,
        interval: float | None = None,
        start: bool = True,
    ) -> None:
        self.client = client
        self.instance_id = instance.id
        self.name = instance.name or instance.id
        self.interval = float(interval or DEFAULT_INTERVAL)
        self.frame: pd.DataFrame | None = None
        self.readings = 0
        self.consecutive_errors = 0
        self.last_error: str | None = None
        self.last_error_time: datetime | None = None
        self.ended: str | None = None  # why it ended (the instance stopped, was deleted)
        self.paused = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._build_widgets()
        if start:
            self.start()

    # -- running -------------------------------------------------------------------------------
    def start(self) -> None:
        """Read now, then every ``interval`` seconds in the background."""
        with self._lock:
            if self.ended is not None or (self._thread is not None and self._thread.is_alive()):
                return
            self.paused = False
            self._wake.clear()
        self.read()
        if self.ended is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="novita-top")
            self._thread.start()
        self._draw()

    def stop(self) -> None:
        """Stop reading: the view keeps its last values and says it is paused."""
        with self._lock:
            self.paused = True
            self._wake.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self._draw()

    def _loop(self) -> None:
        while not self._wake.wait(self.interval):
            self.read()
            if self.ended is not None:
                return

    def read(self) -> None:
        """One reading (what the background thread does each interval)."""
        try:
            frame = self.client.top(self.instance_id)
        except NovitaError as error:
            self._failed(error)
        else:
            with self._lock:
                self.frame, self.readings = frame, self.readings + 1
                self.consecutive_errors, self.last_error = 0, None
        self._draw()

    def _failed(self, error: NovitaError) -> None:
        """A reading failed: the end when the instance no longer runs, else a retry."""
        try:
            status = self.client.instance(self.instance_id).status
        except NotFoundError:
            status = "removed"
        except NovitaError:
            status = None  # the API does not answer either: retry
        with self._lock:
            if status is not None and status != "running":
                gone = status in ("toRemove", "removing", "removed")
                what = "was deleted" if gone else f"is not running (status: {status})"
                self.ended = f"{self.name} {what}; no more readings"
                self._wake.set()
                return
            self.consecutive_errors += 1
            self.last_error = getattr(error, "message", None) or str(error)
            self.last_error_time = datetime.now(UTC)

    # -- what it says --------------------------------------------------------------------------
    def state(self) -> tuple[str, str]:
        """(state, the sentence that goes with it): live, paused, disconnected, ended, waiting."""
        frame = self.frame
        at = frame["read_at"].iloc[0] if frame is not None and len(frame) else None
        last = f"last reading {html.clock_time(at)}" if isinstance(at, datetime) else "no reading"
        if self.ended is not None:
            return "ended", f"ended: {self.ended} ({last})"
        if self.paused:
            return "paused", f"paused: not updating ({last}); Resume (or top.start()) goes on"
        if self.consecutive_errors:
            when = html.clock_time(self.last_error_time) if self.last_error_time else ""
            return "disconnected", (
                f"disconnected: the reading failed at {when} ({self.last_error}); retrying "
                f"every {self.interval:g} s; the values are from the {last}"
            )
        if frame is None:
            return "waiting", "waiting for the first reading"
        return "live", f"live: {last}, every {self.interval:g} s"

    def _status_html(self) -> str:
        state, words = self.state()
        badge = html.badge(state, _PHASES.get(state, "provisioning"))
        money = money_html(self.frame, when=False) if self.frame is not None else ""
        return (
            f"<div class='novita-summary' style='{html.FONT};padding:4px 0;text-align:left'>"
            f"<span class='novita-connection' data-state='{state}'>{badge} "
            f"<span style='color:{html.MUTED}'>{html.text(words.split(': ', 1)[-1])}</span>"
            f"</span><br>{money}</div>"
        )

    def _table_html(self) -> str:
        if self.frame is None:
            return html.muted("No reading yet.")
        return gpu_rows_html(self.frame)

    def _repr_html_(self) -> str:
        body = self._table_html() + self._status_html()
        return html.frame(f"GPUs of {html.text(self.name)}", body, kind="top")

    def __repr__(self) -> str:
        state, words = self.state()
        lines = [f"<GpuTop {self.name} {state}>", f"  {words}"]
        for gpu in self.frame.to_dict("records") if self.frame is not None else ():
            lines.append(
                f"  {gpu['gpu']}: {gpu['gpu_name']}  {_number(gpu['utilization_pct'], ' %')}  "
                f"{_number(gpu['memory_used_mib'])}/{_number(gpu['memory_total_mib'], ' MiB')}  "
                f"{_number(gpu['temperature_c'], ' C')}  {_number(gpu['power_w'], ' W')}"
            )
        if self.frame is not None:
            lines.append(f"  {money_line(self.frame)}")
        return "\n".join(lines)

    # -- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        widgets = _display.ipywidgets_module()
        if widgets is None:
            return
        flush = widgets.Layout(width="auto", margin="0")
        self.table = widgets.HTML(self._table_html(), layout=flush)
        self.summary = widgets.HTML(self._status_html(), layout=flush)
        self.button = widgets.Button(description="Stop", icon="stop")
        self.button.on_click(lambda _: self._toggle())
        self.widget = _display.framed(
            widgets, [self.table, self.summary, self.button], title=f"GPUs of {self.name}"
        )
        self.widget.add_class("novita-top")

    def _toggle(self) -> None:
        if self.paused:
            self.start()
        else:
            self.stop()

    def _draw(self) -> None:
        if self.widget is not None:
            table, summary = self._table_html(), self._status_html()
            if self.table.value != table:  # unchanged text sends nothing to the browser
                self.table.value = table
            if self.summary.value != summary:
                self.summary.value = summary
            running = not self.paused and self.ended is None
            self.button.description, self.button.icon = ("Stop", "stop") if running else (
                "Resume", "play")  # fmt: skip
            self.button.disabled = self.ended is not None
        self.refresh_snapshot(force=self.ended is not None or self.paused)
