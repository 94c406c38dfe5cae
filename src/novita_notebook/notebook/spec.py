"""Parsing of what people type in notebooks: ``%%novita`` create specs, ``A=1, B=2`` envs,
``8888/http, 22/tcp`` ports and region lists. Pure functions; every mistake names its field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..errors import ValidationError

#: Instance names the API accepts in practice: letters, digits and hyphens (MCP rule).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_PORTS = {2222, 2223, 2224}
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}

BILLING_METHODS = ("onDemand", "spot", "monthly")
_BILLING_ALIASES = {
    "ondemand": "onDemand",
    "on-demand": "onDemand",
    "on_demand": "onDemand",
    "spot": "spot",
    "monthly": "monthly",
}

#: Keys the cell form understands, mapped to the keyword argument of ``Novita.create``.
CELL_KEYS: dict[str, str] = {
    "name": "name",
    "gpu": "gpu",
    "region": "region",
    "regions": "regions",
    "template": "template",
    "image": "image",
    "billing": "billing",
    "max_price": "max_price",
    "envs": "envs",
    "ports": "ports",
    "wait": "wait",
    "gpu_num": "gpu_num",
    "rootfs_size": "rootfs_gb",
    "rootfs_gb": "rootfs_gb",
    "command": "command",
    "entrypoint": "entrypoint",
    "image_auth_id": "image_auth_id",
    "timeout": "timeout",
}


def check_name(name: str) -> str:
    """An instance name: letters, digits and hyphens, starting with a letter or digit."""
    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise ValidationError(
            f"name {name!r} is not valid: use 1-63 letters, digits and hyphens, "
            "starting with a letter or digit",
            field="name",
        )
    return name


def parse_billing(value: str | None) -> str | None:
    """``on-demand`` / ``ondemand`` / ``onDemand`` → ``onDemand``; also spot, monthly."""
    if value is None or str(value).strip() == "":
        return None
    key = str(value).strip().lower()
    if key not in _BILLING_ALIASES:
        raise ValidationError(
            f"billing {value!r} is not one of {', '.join(BILLING_METHODS)}", field="billing"
        )
    return _BILLING_ALIASES[key]


def parse_price(value: Any, field: str = "max_price") -> float | None:
    """A USD/hour amount: ``0.5``, ``$0.5``, ``"0.50/h"``; must be positive."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    text = str(value).strip().lstrip("$").removesuffix("/h").strip()
    return _positive(text, value, field, "USD per hour (e.g. 0.5)")


def parse_envs(value: Any) -> dict[str, str]:
    """``"A=1, B=2"`` (or a dict, or ``["A=1"]``) → ``{"A": "1", "B": "2"}``."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    else:
        parts = value if isinstance(value, list | tuple) else re.split(r"[,\n]", str(value))
        pairs = []
        for part in parts:
            part = str(part).strip()
            if not part:
                continue
            if "=" not in part:
                raise ValidationError(
                    f"envs entry {part!r} must look like KEY=value (entries separated by commas)",
                    field="envs",
                )
            key, val = part.split("=", 1)
            pairs.append((key.strip(), val.strip()))
        items = pairs
    envs: dict[str, str] = {}
    for key, val in items:
        key = str(key)
        if not _ENV_KEY.match(key):
            raise ValidationError(
                f"envs key {key!r} must be letters, digits and underscores, not starting "
                "with a digit",
                field="envs",
            )
        envs[key] = str(val)
    return envs


def parse_ports(value: Any) -> str | None:
    """``"8888/http, 22/tcp"`` or ``[8888, "22/tcp"]`` → the API's ``"8888/http,22/tcp"``.
    A bare number means http. Ports 2222-2224 are reserved by Novita."""
    if value is None or value == "" or value == []:
        return None
    parts = value if isinstance(value, list | tuple) else re.split(r"[,\s]+", str(value))
    normalised = []
    for part in parts:
        part = str(part).strip()
        if not part:
            continue
        number, _, kind = part.partition("/")
        kind = (kind or "http").lower()
        if not number.isdigit() or not 1 <= int(number) <= 65535:
            raise ValidationError(
                f"ports entry {part!r} must be PORT/TYPE with PORT in 1-65535", field="ports"
            )
        if int(number) in _RESERVED_PORTS:
            raise ValidationError(f"port {number} is reserved by Novita (2222-2224)", field="ports")
        if kind not in {"http", "tcp"}:
            raise ValidationError(f"ports entry {part!r}: type must be http or tcp", field="ports")
        normalised.append(f"{int(number)}/{kind}")
    return ",".join(normalised) or None


def parse_regions(value: Any) -> list[str] | None:
    """``"AS-SGP-02, CN-HK-01"`` → ``["AS-SGP-02", "CN-HK-01"]`` (order is preference)."""
    if value is None or value == "":
        return None
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    regions = [str(p).strip() for p in parts if str(p).strip()]
    return regions or None


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(f"{field} {value!r} is not yes/no or true/false", field=field)


def parse_seconds(value: Any, field: str) -> float:
    """``"90"`` or ``"90s"`` → 90.0; must be positive."""
    text = str(value).strip().removesuffix("s").strip()
    return _positive(text, value, field, "seconds")


def _positive(text: str, value: Any, field: str, unit: str) -> float:
    """``text`` (``value`` with its unit stripped) as a positive float, or a ValidationError."""
    try:
        amount = float(text)
    except ValueError:
        raise ValidationError(f"{field} {value!r} is not a number of {unit}", field=field) from None
    if amount <= 0:
        raise ValidationError(f"{field} must be greater than 0 ({unit}), got {amount}", field=field)
    return amount


def _parse_int(value: Any, field: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{field} {value!r} is not a whole number", field=field) from None


def parse_cell_spec(body: str) -> dict[str, Any]:
    """The ``%%novita`` body, one ``key: value`` per line (``#`` comments and blank lines
    ignored) → keyword arguments for ``Novita.create`` with values parsed and checked."""
    spec: dict[str, Any] = {}
    for number, raw_line in enumerate(body.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            raise ValidationError(
                f"line {number} {line!r} must look like 'key: value'", field="cell"
            )
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower().replace("-", "_")
        if key not in CELL_KEYS:
            raise ValidationError(
                f"unknown key {key!r} on line {number}; known keys: {', '.join(CELL_KEYS)}",
                field=key,
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        spec[CELL_KEYS[key]] = value
    return normalise_create_kwargs(spec)


def normalise_create_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """Check and convert create arguments given as text (cell form, widgets, flags)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        if key == "name":
            out[key] = check_name(value)
        elif key == "billing":
            out[key] = parse_billing(value)
        elif key == "max_price":
            out[key] = parse_price(value)
        elif key == "envs":
            out[key] = parse_envs(value)
        elif key == "ports":
            out[key] = parse_ports(value)
        elif key == "regions":
            out[key] = parse_regions(value)
        elif key == "wait":
            out[key] = parse_bool(value, "wait")
        elif key in {"gpu_num", "rootfs_gb"}:
            out[key] = _parse_int(value, key)
        elif key == "timeout":
            out[key] = parse_seconds(value, "timeout")
        else:
            out[key] = str(value).strip() if isinstance(value, str) else value
    if "name" not in out:
        raise ValidationError("a create spec needs a name (name: my-box)", field="name")
    if "gpu" not in out and "template" not in out:
        raise ValidationError(
            "a create spec needs a gpu (gpu: RTX 4090) or a template", field="gpu"
        )
    return out
