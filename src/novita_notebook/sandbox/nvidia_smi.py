"""The ``nvidia-smi`` on a sandbox instance's PATH (run as a script, standard library only): it
asks the sandbox for the instance's GPU reading and prints it as the real tool does.

Supported: the default table, ``-L``, ``--query-gpu=... --format=csv[,noheader][,nounits]``,
``--query-compute-apps=...``, ``-i/--id``, ``-l/--loop``. Anything else is refused as the real
tool refuses what it does not know. The reading's URL comes from ``NOVITA_SANDBOX_GPU_URL``,
which the wrapper on the PATH sets.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from datetime import datetime
from typing import Any

NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
BAD_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."

#: --query-gpu field -> (unit, the reading's key for it). A key of the whole reading (not of one
#: GPU) starts with "/"; "memory.free" and "count" are worked out.
GPU_FIELDS: dict[str, tuple[str, str]] = {
    "index": ("", "index"), "name": ("", "name"), "uuid": ("", "uuid"),
    "pci.bus_id": ("", "busId"), "driver_version": ("", "/driverVersion"), "count": ("", ""),
    "utilization.gpu": ("%", "utilizationGpu"), "utilization.memory": ("%", "utilizationMemory"),
    "memory.total": ("MiB", "memoryTotalMiB"), "memory.used": ("MiB", "memoryUsedMiB"),
    "memory.free": ("MiB", ""), "temperature.gpu": ("", "temperatureC"),
    "power.draw": ("W", "powerDrawW"), "power.limit": ("W", "powerLimitW"),
}  # fmt: skip
#: --query-compute-apps field -> (header, unit, the key: of the process, or "gpu/" of its GPU)
APP_FIELDS: dict[str, tuple[str, str, str]] = {
    "pid": ("pid", "", "pid"), "process_name": ("process_name", "", "name"),
    "name": ("process_name", "", "name"), "gpu_uuid": ("gpu_uuid", "", "gpu/uuid"),
    "used_memory": ("used_gpu_memory", "MiB", "usedMemoryMiB"),
    "used_gpu_memory": ("used_gpu_memory", "MiB", "usedMemoryMiB"),
    "gpu_bus_id": ("gpu_bus_id", "", "gpu/busId"),
}  # fmt: skip


def gpu_value(field: str, gpu: dict[str, Any], reading: dict[str, Any]) -> Any:
    unit, key = GPU_FIELDS[field]
    if field == "count":
        return len(reading["gpus"])
    if field == "memory.free":
        return gpu["memoryTotalMiB"] - gpu["memoryUsedMiB"]
    value = reading[key[1:]] if key.startswith("/") else gpu[key]
    return f"{value:.2f}" if unit == "W" else value


def app_value(field: str, process: dict[str, Any], gpu: dict[str, Any]) -> Any:
    key = APP_FIELDS[field][2]
    return gpu[key[4:]] if key.startswith("gpu/") else process[key]


class Usage(Exception):
    """Arguments the tool does not accept."""


def fetch() -> dict[str, Any]:
    url = os.environ.get("NOVITA_SANDBOX_GPU_URL", "")
    instance = os.environ.get("NOVITA_SANDBOX_GPU_INSTANCE", "")
    body = json.dumps({"instanceId": instance}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def parse(argv: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {"query": None, "apps": None, "format": None, "ids": None}
    options["loop"] = None
    options["list"] = False
    args = list(argv)
    while args:
        arg = args.pop(0)
        key, _, value = arg.partition("=")
        if key in ("-i", "--id", "-l", "--loop") and not value:
            if not args:
                raise Usage(BAD_ARGS)
            value = args.pop(0)
        if key in ("-L", "--list-gpus"):
            options["list"] = True
        elif key in ("--query-gpu", "--query-compute-apps") and value:
            options["query" if key == "--query-gpu" else "apps"] = value.split(",")
        elif key == "--format" and value:
            options["format"] = set(value.split(","))
        elif key in ("-i", "--id"):
            options["ids"] = {int(v) for v in value.split(",") if v.strip().isdigit()}
        elif key in ("-l", "--loop"):
            if not value.isdigit():
                raise Usage(BAD_ARGS)
            options["loop"] = max(1, int(value))
        else:
            raise Usage(BAD_ARGS)
    if (options["query"] or options["apps"]) and not options["format"]:
        raise Usage('"--format" must be given with a query (for example --format=csv).')
    if options["format"] is not None and "csv" not in options["format"]:
        raise Usage(BAD_ARGS)
    return options


def csv_table(
    fields: list[str],
    columns: dict[str, tuple[str, str]],
    rows: list[tuple[Any, Any]],
    value: Any,
    fmt: set[str],
) -> str:
    """A csv answer: ``columns`` maps each known field to (header, unit)."""
    fields = [f.strip() for f in fields]
    unknown = [f for f in fields if f not in columns]
    if unknown:
        raise Usage(f'Field "{unknown[0]}" is not a valid field to query.')
    lines = []
    if "noheader" not in fmt:
        lines.append(", ".join(h + (f" [{u}]" if u else "") for h, u in map(columns.get, fields)))
    for first, second in rows:
        cells = []
        for field in fields:
            text, unit = str(value(field, first, second)), columns[field][1]
            cells.append(text if not unit or "nounits" in fmt else f"{text} {unit}")
        lines.append(", ".join(cells))
    return "\n".join(lines)


def _row(*cells: str) -> str:
    """One line of the table: cells fitted to the real tool's three columns."""
    widths = (41, 24, 22) if len(cells) == 3 else (89,)
    return "|" + "|".join(f" {c:<{w - 2}} " for c, w in zip(cells, widths, strict=True)) + "|"


def table(reading: dict[str, Any], gpus: list[dict[str, Any]]) -> str:
    now = datetime.now().strftime("%a %b %d %H:%M:%S %Y")
    full = "+" + "-" * 89 + "+"
    rule = "+" + "+".join("-" * w for w in (41, 24, 22)) + "+"
    driver = reading["driverVersion"]
    lines = [
        now,
        full,
        _row(
            f"NVIDIA-SMI {driver:<22}Driver Version: {driver:<15}"
            f"CUDA Version: {reading['cudaVersion']}"
        ),
        rule,
        _row(
            "GPU  Name                 Persistence-M",
            "Bus-Id          Disp.A",
            "Volatile Uncorr. ECC",
        ),
        _row(
            "Fan  Temp   Perf          Pwr:Usage/Cap",
            "          Memory-Usage",
            "GPU-Util  Compute M.",
        ),
        rule.replace("-", "="),
    ]
    for g in gpus:
        power = f"{round(g['powerDrawW'])}W / {g['powerLimitW']}W"
        memory = f"{g['memoryUsedMiB']}MiB / {g['memoryTotalMiB']}MiB"
        lines.append(
            _row(f"{g['index']:>3}  {g['name'][:28]:<28}  On", f"{g['busId']} Off", f"{'Off':>20}")
        )
        lines.append(
            _row(
                f"30%  {g['temperatureC']:>3}C    P2 {power:>23}",
                f"{memory:>22}",
                f"{g['utilizationGpu']:>5}%      Default",
            )
        )
        lines.append(rule)
    lines += [
        "",
        full,
        _row("Processes:"),
        _row(
            " GPU   GI   CI        PID   Type   Process name                              GPU Memory"
        ),
        _row("       ID   ID                                                               Usage"),
        "|" + "=" * 89 + "|",
    ]
    apps = [p for g in gpus for p in g["processes"]]
    if not apps:
        lines.append(_row(" No running processes found"))
    for p in apps:
        used = f"{p['usedMemoryMiB']}MiB"
        lines.append(
            _row(
                f" {p['gpu']:>3}   N/A  N/A  {p['pid']:>9}      C   {p['name'][:40]:<40} {used:>9}"
            )
        )
    lines.append(full)
    return "\n".join(lines)


def render(options: dict[str, Any], reading: dict[str, Any]) -> str:
    gpus = [g for g in reading["gpus"] if options["ids"] is None or g["index"] in options["ids"]]
    if options["ids"] is not None and not gpus:
        raise Usage("No devices were found")
    if options["list"]:
        return "\n".join(f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']})" for g in gpus)
    if options["query"]:
        columns = {field: (field, unit) for field, (unit, _) in GPU_FIELDS.items()}
        rows = [(g, reading) for g in gpus]
        return csv_table(options["query"], columns, rows, gpu_value, options["format"])
    if options["apps"]:
        columns = {field: (header, unit) for field, (header, unit, _) in APP_FIELDS.items()}
        rows = [(p, g) for g in gpus for p in g["processes"]]
        return csv_table(options["apps"], columns, rows, app_value, options["format"])
    return table(reading, gpus)


def main(argv: list[str]) -> int:
    try:
        options = parse(argv)
    except Usage as usage:
        print(usage, file=sys.stderr)
        return 2
    while True:
        try:
            reading = fetch()
        except (OSError, ValueError):
            print(NO_DRIVER)
            return 9
        try:
            text = render(options, reading)
        except Usage as usage:
            print(usage, file=sys.stderr)
            return 6
        print(text, flush=True)
        if options["loop"] is None:
            return 0
        time.sleep(options["loop"])


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
