"""Text typed in notebooks turned into ``Novita.create`` arguments: the ``%%novita`` cell spec,
``A=1, B=2`` envs, ``8888/http`` ports, ``$0.5/h`` prices. The rules come from validation.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import validation
from ..errors import ValidationError

BILLING_METHODS = validation.BILLING_METHODS
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


@dataclass(frozen=True)
class CreateOption:
    """One argument of ``%novita create``: the same key in the line and the cell form."""

    key: str  #: keyword of Novita.create (and the cell key)
    help: str
    kind: str = "text"  #: text | flag (a yes/no switch) | list (repeatable, comma-separated)
    aliases: tuple[str, ...] = ()  #: other cell keys meaning the same
    choices: tuple[str, ...] | None = None  #: the allowed values, where validation lists them


#: The one option set of ``%novita create`` and ``%%novita create`` (name is positional).
CREATE_OPTIONS: tuple[CreateOption, ...] = (
    CreateOption("gpu", 'GPU model or product, e.g. "RTX 4090"'),
    CreateOption("template", "template id or name"),
    CreateOption("region", "preferred region, e.g. AS-SGP-02"),
    CreateOption("regions", "regions to try in order, comma-separated"),
    CreateOption(
        "prefer",
        "offer order: price (cheapest in stock anywhere, the default) or region (region order)",
        choices=("price", "region"),
    ),
    CreateOption(
        "volumes",
        "network volume to mount, name or id, NAME:/path for another mount point "
        "(repeatable; pins the create to the volume's region)",
        kind="list",
        aliases=("volume",),
    ),
    CreateOption("image", "container image (overrides the template's)"),
    CreateOption("billing", "onDemand, spot or monthly"),
    CreateOption("max_price", "USD per GPU-hour ceiling, e.g. 0.5"),
    CreateOption("gpu_num", "GPUs per instance (default 1)"),
    CreateOption("rootfs_gb", "container disk in GB", aliases=("rootfs_size",)),
    CreateOption("envs", 'environment, e.g. "A=1, B=2"'),
    CreateOption("ports", 'ports, e.g. "8888/http, 22/tcp"'),
    CreateOption("command", "start command"),
    CreateOption("entrypoint", "container entrypoint"),
    CreateOption("image_auth_id", "registry auth id or name for a private image"),
    CreateOption("unique_name", "append a random suffix to the name", kind="flag"),
    CreateOption("stop_after", "guard: stop at a deadline, e.g. 2h or 18:00Z"),
    CreateOption("idle_stop", "guard: stop once the GPU is idle this long, e.g. 30m"),
    CreateOption("budget", "guard: USD cap on the total spend"),
    CreateOption(
        "on_reclaim", "guard: spot reclaim policy", choices=("notify", "migrate", "recreate")
    ),
    CreateOption("no_guard", "guard: no rules, not even the defaults", kind="flag"),
    CreateOption(
        "wait_until",
        "what --wait waits for (default running)",
        choices=validation.WAIT_TARGETS,
    ),
    CreateOption("timeout", "seconds --wait waits before giving up"),
    CreateOption("wait", "block until running, with progress", kind="flag"),
    CreateOption("background", "return at once and show a live panel", kind="flag"),
)

#: Cell keys → keyword of Novita.create (``name`` plus every option and its aliases).
CELL_KEYS: dict[str, str] = {"name": "name"}
for _option in CREATE_OPTIONS:
    CELL_KEYS[_option.key] = _option.key
    CELL_KEYS.update({alias: _option.key for alias in _option.aliases})


def _raise_problems(checker: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a validation.py checker that records problems, and raise them at once."""
    problems = validation.Problems()
    value = checker(*args, problems, **kwargs)
    problems.raise_if_any()
    return value


def check_name(name: Any) -> str:
    """An instance name, by validation.py's rule."""
    text = name.strip() if isinstance(name, str) else name
    return _raise_problems(validation.check_name, text)


def parse_billing(value: Any) -> str | None:
    """``on-demand`` / ``ondemand`` / ``onDemand`` → ``onDemand``; also spot, monthly."""
    return validation.normalise_billing(value)


def parse_price(value: Any, field: str = "max_price") -> float | None:
    """A USD per GPU-hour amount: ``0.5``, ``$0.5``, ``"0.50/h"``."""
    return validation.parse_money(value, field)


def parse_seconds(value: Any, field: str = "timeout") -> float:
    """``"90"``, ``"90s"`` or ``"2min"`` → seconds; must be positive."""
    return validation.parse_duration(value, field)


def parse_envs(value: Any) -> dict[str, str]:
    """``"A=1, B=2"`` (or a dict, or ``["A=1"]``) → ``{"A": "1", "B": "2"}``."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(_raise_problems(validation.parse_envs, value))
    text = "\n".join(str(v) for v in value) if isinstance(value, list | tuple) else value
    return dict(validation.parse_env_text(text))


def parse_ports(value: Any) -> str | None:
    """``"8888/http, 22/tcp"`` or ``[8888, "22/tcp"]`` → the API's ``"8888/http,22/tcp"``."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        value = ",".join(part for part in re.split(r"[,\s]+", value) if part)
    return validation.format_ports(_raise_problems(validation.parse_ports, value)) or None


def _whole(value: Any) -> Any:
    """Text holding a whole number as an int; anything else as given, for validation to judge."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def parse_regions(value: Any) -> list[str] | None:
    """``"AS-SGP-02, CN-HK-01"`` → ``["AS-SGP-02", "CN-HK-01"]`` (order is preference)."""
    if value is None or value == "":
        return None
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    regions = [str(p).strip() for p in parts if str(p).strip()]
    _raise_problems(validation.check_regions, regions)
    return regions


def parse_volumes(value: Any) -> list[str] | None:
    """``"my-data, other:/data"`` or ``["my-data", "other:/data"]`` → volume entries."""
    if value is None or value == "" or value == []:
        return None
    parts = value if isinstance(value, list | tuple) else [value]
    volumes = [v.strip() for part in parts for v in str(part).split(",") if v.strip()]
    return volumes or None


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(f"{field}: {value!r} is not yes/no or true/false", field=field)


_CONVERTERS: dict[str, Any] = {
    "name": check_name,
    "billing": parse_billing,
    "max_price": parse_price,
    "envs": parse_envs,
    "ports": parse_ports,
    "regions": parse_regions,
    "volumes": parse_volumes,
    "wait": lambda value: parse_bool(value, "wait"),
    "background": lambda value: parse_bool(value, "background"),
    "unique_name": lambda value: parse_bool(value, "unique_name"),
    "no_guard": lambda value: parse_bool(value, "no_guard"),
    "gpu_num": lambda value: _raise_problems(validation.check_gpu_num, _whole(value)),
    "rootfs_gb": lambda value: _raise_problems(validation.check_rootfs, _whole(value)),
    "timeout": parse_seconds,
}


def cell_values(body: str) -> dict[str, tuple[int, str]]:
    """``key: value`` lines of a cell → {keyword: (line number, raw value)}; every line's
    mistake (no colon, YAML list, unknown or repeated key) names the line."""
    seen: dict[str, tuple[int, str]] = {}
    for number, raw_line in enumerate(body.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("- ") or line == "-":
            raise ValidationError(
                f"line {number} {line!r}: YAML lists are not supported; give a list on one "
                "line, comma-separated (regions: AS-SGP-02, CN-HK-01)",
                field="cell",
            )
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
        target = CELL_KEYS[key]
        if target in seen:
            first = seen[target][0]
            raise ValidationError(
                f"{key!r} is given twice, on line {first} and line {number}; keep one",
                field=target,
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        seen[target] = (number, value)
    return seen


def values_of(lines: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    """{keyword: (line number, value)} → {keyword: value}."""
    return {key: value for key, (_number, value) in lines.items()}


def parse_cell_spec(body: str) -> dict[str, Any]:
    """The ``%%novita`` body, one ``key: value`` per line (``#`` comments and blank lines
    ignored) → keyword arguments for ``Novita.create`` with values parsed and checked."""
    return normalise_create_kwargs(values_of(cell_values(body)))


def normalise_create_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """Check and convert create arguments given as text (cell form, widgets, flags)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        convert = _CONVERTERS.get(key)
        if convert is not None:
            out[key] = convert(value)
        else:
            out[key] = value.strip() if isinstance(value, str) else value
    if "name" not in out:
        raise ValidationError("a create spec needs a name (name: my-box)", field="name")
    if "gpu" not in out and "template" not in out:
        raise ValidationError(
            "a create spec needs a gpu (gpu: RTX 4090) or a template", field="gpu"
        )
    return out
