"""The GPU's own view: ``nvidia-smi`` read over SSH (``--query-gpu`` and
``--query-compute-apps`` as CSV, one command), one row per GPU next to the instance's price and
spend; and the same reading as a utilisation source for the guard's idle rule, kept as a short
history so a streak of idle readings can be seen (``gpu-readings.json`` in the ledger
directory).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import RemoteError
from .jsonfile import JsonFile, scope_of
from .ssh import SSHPool

__all__ = ["GpuUtilisation", "SOURCE", "read_gpus", "top_frame", "gpu_utilisation"]

SOURCE = "nvidia-smi over SSH"
GPU_FIELDS = ("index", "name", "uuid", "utilization.gpu", "utilization.memory", "memory.used",
              "memory.total", "temperature.gpu", "power.draw", "power.limit")  # fmt: skip
APP_FIELDS = ("pid", "process_name", "used_memory", "gpu_uuid")
_SPLIT = "--novita-apps--"
_SCRIPT = (
    f"nvidia-smi --query-gpu={','.join(GPU_FIELDS)} --format=csv,noheader,nounits && "
    f'echo "{_SPLIT}" && '
    f"nvidia-smi --query-compute-apps={','.join(APP_FIELDS)} --format=csv,noheader,nounits"
)
COLUMNS = (
    "instance", "name", "gpu", "gpu_name", "utilization_pct", "memory_utilization_pct",
    "memory_used_mib", "memory_total_mib", "memory_pct", "temperature_c", "power_w",
    "power_limit_w", "processes", "process_list", "price_per_hour", "cost_so_far", "read_at",
)  # fmt: skip
READINGS_FILE = "gpu-readings.json"
HISTORY_SECONDS = 3 * 3600.0
HISTORY_POINTS = 720


def _number(text: str) -> float | None:
    """nvidia-smi's numbers; ``[N/A]`` and ``[Not Supported]`` are None."""
    try:
        return float(text)
    except ValueError:
        return None


def _rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text)) if row]


def read_gpus(pool: SSHPool, instance_id: str) -> tuple[list[dict[str, Any]], datetime]:
    """Each GPU of the instance now (a dict per GPU with its processes), and when."""
    done = pool.run(instance_id, ["sh", "-c", _SCRIPT], timeout=60, retry=True)
    at = datetime.now(UTC)
    out = done.stdout.decode(errors="replace")
    if not done.ok or _SPLIT not in out:
        said = (done.stderr or done.stdout).decode(errors="replace").strip()[-300:]
        raise RemoteError(
            f"nvidia-smi on instance {instance_id} gave no reading: {said or 'no output'}",
            instance_id=instance_id,
            reason="NO_GPU_READING",
        )
    gpu_text, app_text = out.split(_SPLIT, 1)
    apps: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(app_text):
        if len(row) == len(APP_FIELDS):
            pid, name, used, uuid = row
            memory = _number(used)
            apps.setdefault(uuid, []).append(
                {
                    "pid": int(pid) if pid.isdigit() else pid,
                    "name": name,
                    "memory_mib": None if memory is None else int(memory),
                }  # fmt: skip
            )
    gpus = []
    for row in _rows(gpu_text):
        if len(row) != len(GPU_FIELDS):
            continue
        values = dict(zip(GPU_FIELDS, row, strict=True))
        gpus.append({"index": int(values["index"]), "name": values["name"],
                     "uuid": values["uuid"],
                     **{key: _number(values[key]) for key in GPU_FIELDS[3:]},
                     "processes": apps.get(values["uuid"], [])})  # fmt: skip
    return gpus, at


def top_frame(gpus: list[dict[str, Any]], at: datetime, instance: Any, spent: float | None) -> Any:
    """The DataFrame of ``Novita.top``: one row per GPU. ``attrs['source']`` names where the
    reading came from."""
    import pandas as pd

    rows = []
    for gpu in gpus:
        used, total = gpu["memory.used"], gpu["memory.total"]
        processes = gpu["processes"]
        rows.append({
            "instance": instance.id, "name": instance.name, "gpu": gpu["index"],
            "gpu_name": gpu["name"], "utilization_pct": gpu["utilization.gpu"],
            "memory_utilization_pct": gpu["utilization.memory"],
            "memory_used_mib": used, "memory_total_mib": total,
            "memory_pct": round(100 * used / total, 1) if used is not None and total else None,
            "temperature_c": gpu["temperature.gpu"], "power_w": gpu["power.draw"],
            "power_limit_w": gpu["power.limit"], "processes": len(processes),
            "process_list": "; ".join(
                f"{p['pid']} {p['name']} {p['memory_mib']} MiB" for p in processes),
            "price_per_hour": instance.price_per_hour, "cost_so_far": spent, "read_at": at,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs["source"] = SOURCE
    return frame


@dataclass(frozen=True)
class GpuUtilisation:
    """Utilisation samples ``(time, percent averaged over the GPUs)`` for the idle rule: the
    reading just taken after the ones taken before (within a few hours); ``source`` says
    where they came from."""

    samples: tuple[tuple[datetime, float], ...]
    source: str = SOURCE


def gpu_utilisation(
    pool: SSHPool, api_url: str, instance_id: str, directory: Path | None = None
) -> GpuUtilisation:
    """Read the instance's GPUs now and return the history of readings with it."""
    gpus, at = read_gpus(pool, instance_id)
    values = [g["utilization.gpu"] for g in gpus if g["utilization.gpu"] is not None]
    if not values:
        raise RemoteError(
            f"nvidia-smi on instance {instance_id} reports no GPU utilisation",
            instance_id=instance_id,
            reason="NO_GPU_READING",
        )
    now = at.timestamp()
    point = [now, sum(values) / len(values)]

    def change(entries: dict[str, Any]) -> list[list[float]]:
        kept = [p for p in entries.get(instance_id, []) if now - p[0] <= HISTORY_SECONDS]
        kept = (kept + [point])[-HISTORY_POINTS:]
        entries[instance_id] = kept
        return kept

    history = JsonFile(READINGS_FILE, directory).update(scope_of(api_url), change)
    samples = tuple((datetime.fromtimestamp(t, UTC), float(v)) for t, v in history)
    return GpuUtilisation(samples)


def forget_readings(api_url: str, instance_id: str, directory: Path | None = None) -> None:
    store = JsonFile(READINGS_FILE, directory)
    if store.path.exists():
        store.update(scope_of(api_url), lambda entries: entries.pop(instance_id, None))
