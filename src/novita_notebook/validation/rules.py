"""The rules for names, billing, images, text, ports, envs, network storages, progress and
status filters; durations, money, sizes and regions have their own modules beside this one.

Two styles: ``check_*``/``parse_*`` taking a ``Problems`` collect every broken rule so one error
lists them all; ``normalise_*``/``require_*``/``check_progress`` raise a ValidationError at once
(for single arguments). A leaf: imports only errors, models and its sibling grammars.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ValidationError
from ..models import PHASES, STATUS_ORDER
from .amounts import parse_size, size_from_text
from .durations import invalid

NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
ENV_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
#: The distribution reference grammar: optional registry host[:port], lowercase path, tag, digest.
IMAGE_PATTERN = re.compile(
    rf"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
BILLING_METHODS: tuple[str, ...] = ("onDemand", "spot", "monthly")
#: Spellings accepted for each billing method (lowercased), everywhere billing is accepted.
BILLING_ALIASES: dict[str, str] = {
    "ondemand": "onDemand",
    "on_demand": "onDemand",
    "on-demand": "onDemand",
    "on demand": "onDemand",
    "spot": "spot",
    "monthly": "monthly",
}
#: What ``wait(until=...)`` and ``create(wait_until=...)`` accept.
WAIT_TARGETS: tuple[str, ...] = ("running", "reachable", "exited", "removed")
#: What ``progress=`` accepts besides None, False and a callable(instance, elapsed, phase).
PROGRESS_VALUES: tuple[str, ...] = ("text", "display", "silent", "off", "none")
SILENT_PROGRESS: tuple[str, ...] = ("silent", "off", "none")
PORT_TYPES: tuple[str, ...] = ("tcp", "http")
RESERVED_PORTS: frozenset[int] = frozenset({2222, 2223, 2224})
MAX_PORTS = 15  # ports + tools, upstream limit
MAX_ENVS = 100
MAX_ENV_KEY = 511
MAX_ENV_VALUE = 4095
MAX_COMMAND = 2047
MAX_IMAGE = 500
MIN_ROOTFS_GB = 10
MAX_ROOTFS_GB = 6144
MIN_GPU_NUM = 1
MAX_GPU_NUM = 8
MAX_NETWORK_STORAGES = 30
MAX_MOUNT_POINT = 4095


class Problems:
    """Collects every (field, rule) broken so one error can list them all."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, rule: str) -> None:
        self.items.append((field, rule))

    def __bool__(self) -> bool:
        return bool(self.items)

    def check(self, parse: Any, *args: Any, **kwargs: Any) -> Any:
        """``parse(*args, **kwargs)``, a grammar that raises; its problems are recorded here
        instead (and None returned), so one error can still list them all."""
        try:
            return parse(*args, **kwargs)
        except ValidationError as error:
            for field, rule in error.problems or [(error.field or "value", error.message)]:
                self.add(field, rule)
            return None

    def raise_if_any(self) -> None:
        """Raise one ValidationError naming every field and rule (the first field is ``field``)."""
        if not self.items:
            return
        if len(self.items) == 1:
            field, rule = self.items[0]
            message = f"{field}: {rule}"
        else:
            lines = "\n".join(f"  - {field}: {rule}" for field, rule in self.items)
            message = f"{len(self.items)} invalid arguments:\n{lines}"
        raise ValidationError(message, field=self.items[0][0], problems=list(self.items))


def check_name(name: Any, problems: Problems, field: str = "name") -> str | None:
    """Instance names: letters, digits and hyphens, 1–63 chars, no leading/trailing hyphen."""
    if not isinstance(name, str):
        problems.add(field, f"must be a string, got {type(name).__name__}")
        return None
    if not 1 <= len(name) <= 63:
        problems.add(field, f"must be 1–63 characters long, got {len(name)}")
        return None
    if not NAME_PATTERN.match(name):
        problems.add(
            field,
            f"{name!r} may contain only letters, digits and hyphens, and may not start or end "
            "with a hyphen",
        )
        return None
    return name


def check_int_range(value: Any, low: int, high: int, problems: Problems, field: str) -> int | None:
    """An integer within [low, high]; digits as text are read as the number."""
    return problems.check(parse_size, size_from_text(value), field, low, high)


def check_gpu_num(value: Any, problems: Problems) -> int | None:
    """An int 1–8; text such as ``"2"`` is refused (text surfaces convert it first)."""
    return problems.check(parse_size, value, "gpu_num", MIN_GPU_NUM, MAX_GPU_NUM)


def check_rootfs(value: Any, problems: Problems, field: str = "rootfs_gb") -> int | None:
    """Container disk in GB, an int 10–6144."""
    return problems.check(parse_size, value, field, MIN_ROOTFS_GB, MAX_ROOTFS_GB, "GB")


def check_billing(value: Any, problems: Problems, field: str = "billing") -> str | None:
    """onDemand, spot or monthly, or an alias (``"on-demand"``, ``"OnDemand"``) → canonical."""
    canonical = BILLING_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if canonical is None:
        problems.add(field, f"must be one of {', '.join(BILLING_METHODS)}, got {value!r}")
    return canonical


def normalise_billing(value: Any, field: str = "billing") -> str | None:
    """Like check_billing but raising at once; None or "" mean "not given" → None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    problems = Problems()
    canonical = check_billing(value, problems, field)
    problems.raise_if_any()
    return canonical


def check_bool(value: Any, field: str) -> bool:
    """True or False, nothing else (``"yes"`` and 1 are refused)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be True or False, got {value!r}", field=field)
    return value


def require_text(value: Any, field: str, *, optional: bool = True) -> str | None:
    """A non-empty string (stripped); None allowed when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty string, got {value!r}", field=field)
    return value.strip()


def check_text(
    value: Any, problems: Problems, field: str, *, max_len: int, min_len: int = 0
) -> str | None:
    """Optional free text (command, entrypoint, image) within length bounds."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(field, f"must be a string, got {type(value).__name__}")
        return None
    if not min_len <= len(value) <= max_len:
        problems.add(field, f"must be {min_len}–{max_len} characters long, got {len(value)}")
        return None
    return value


def check_image(value: Any, problems: Problems, field: str = "image") -> str | None:
    """A container image reference: ``[registry[:port]/]repo[/path][:tag][@sha256:digest]``."""
    if value is None:
        return None
    image = check_text(value, problems, field, max_len=MAX_IMAGE, min_len=1)
    if image is None:
        return None
    if any(c.isspace() for c in image):
        problems.add(field, f"{image!r} must not contain whitespace")
        return None
    if not IMAGE_PATTERN.match(image):
        problems.add(
            field,
            f"{image!r} is not an image reference like 'pytorch/pytorch:2.4.0' or "
            "'registry.example.com/team/app:1.0' (lowercase repository, optional :tag)",
        )
        return None
    return image


def check_progress(value: Any, field: str = "progress") -> Any:
    """``progress``: None (live display in notebooks, silent elsewhere), False, a
    callable(instance, elapsed, phase) or one of PROGRESS_VALUES. Returns it unchanged."""
    if value is None or value is False or callable(value):
        return value
    if isinstance(value, str) and value in PROGRESS_VALUES:
        return value
    raise invalid(
        field,
        "must be None (live display in notebooks, silent elsewhere), False, "
        f"one of {', '.join(repr(v) for v in PROGRESS_VALUES)} or a "
        f"callable(instance, elapsed, phase); got {value!r}",
    )


# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------


def _one_port(port: Any, kind: Any, problems: Problems, field: str) -> tuple[int, str] | None:
    number: int | None = None
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str) and port.strip().isdigit():
        number = int(port.strip())
    if number is None:
        problems.add(field, f"port {port!r} is not a number")
        return None
    kind_text = str(kind).strip().lower() if kind is not None else "tcp"
    ok = True
    if not 1 <= number <= 65535:
        problems.add(field, f"port {number} must be between 1 and 65535")
        ok = False
    elif number in RESERVED_PORTS:
        problems.add(field, f"port {number} is reserved (2222–2224 are used by Novita)")
        ok = False
    if kind_text not in PORT_TYPES:
        problems.add(field, f"port {number} type {kind!r} must be tcp or http")
        ok = False
    return (number, kind_text) if ok else None


def _split_port_text(item: str) -> tuple[str, str | None]:
    text = item.strip()
    if "/" in text:
        number, kind = text.split("/", 1)
        return number.strip(), kind.strip()
    return text, None


def parse_ports(ports: Any, problems: Problems, field: str = "ports") -> list[tuple[int, str]]:
    """Accept ``"8888/http,22/tcp"``, ``[8888, "22/tcp", (80, "http")]`` or ``{8888: "http"}``.
    A port without a type is tcp. Returns [(port, type)] in order, duplicates removed."""
    if ports is None:
        return []
    pairs: list[tuple[Any, Any]] = []
    if isinstance(ports, str):
        pairs = [_split_port_text(p) for p in ports.split(",") if p.strip()]
    elif isinstance(ports, Mapping):
        pairs = list(ports.items())
    elif isinstance(ports, Iterable) and not isinstance(ports, bytes | bytearray | memoryview):
        for item in ports:
            if isinstance(item, str):
                pairs.append(_split_port_text(item))
            elif isinstance(item, tuple | list) and len(item) == 2:
                pairs.append((item[0], item[1]))
            elif isinstance(item, Mapping) and "port" in item:
                pairs.append((item["port"], item.get("type")))
            else:
                pairs.append((item, None))
    else:
        problems.add(
            field, f"must be a string like '8888/http,22/tcp', a list or a dict, got {ports!r}"
        )
        return []
    result: list[tuple[int, str]] = []
    seen: set[int] = set()
    for port, kind in pairs:
        parsed = _one_port(port, kind, problems, field)
        if parsed is None:
            continue
        if parsed[0] in seen:
            problems.add(field, f"port {parsed[0]} is listed twice")
            continue
        seen.add(parsed[0])
        result.append(parsed)
    if len(result) > MAX_PORTS:
        problems.add(field, f"at most {MAX_PORTS} ports (including tools), got {len(result)}")
    return result


def port_dicts(ports: Any, field: str = "ports") -> list[dict[str, Any]]:
    """parse_ports raising at once, in the edit body's form ``[{"port": 8080, "type": "http"}]``;
    at least one port is required."""
    problems = Problems()
    pairs = parse_ports(ports, problems, field)
    if not problems and not pairs:
        problems.add(field, "must list at least one port (e.g. 8080 or '8080/http')")
    problems.raise_if_any()
    return [{"port": port, "type": kind} for port, kind in pairs]


def format_ports(ports: Iterable[tuple[int, str]]) -> str:
    """[(8888, "http"), (22, "tcp")] → ``"8888/http,22/tcp"`` (the create body's format)."""
    return ",".join(f"{port}/{kind}" for port, kind in ports)


def group_ports(ports: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    """[(8888, "http"), (22, "tcp")] → template groups ``[{"type": "http", "ports": [8888]}, ...]``."""
    groups: dict[str, list[int]] = {}
    for port, kind in ports:
        groups.setdefault(kind, []).append(port)
    return [{"type": kind, "ports": numbers} for kind, numbers in groups.items()]


# ---------------------------------------------------------------------------------------------
# Environment variables
# ---------------------------------------------------------------------------------------------


def parse_envs(envs: Any, problems: Problems, field: str = "envs") -> list[tuple[str, str]]:
    """Accept a dict or a list of (key, value) pairs / {"key", "value"} dicts.
    Values are turned into strings; keys must look like shell variable names."""
    if envs is None:
        return []
    pairs: list[tuple[Any, Any]] = []
    if isinstance(envs, Mapping):
        pairs = list(envs.items())
    elif isinstance(envs, Iterable) and not isinstance(envs, str | bytes):
        for item in envs:
            if isinstance(item, Mapping) and "key" in item:
                pairs.append((item["key"], item.get("value", "")))
            elif isinstance(item, tuple | list) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                problems.add(field, f"entry {item!r} must be a (key, value) pair")
    else:
        problems.add(field, f"must be a dict or a list of (key, value) pairs, got {envs!r}")
        return []
    if len(pairs) > MAX_ENVS:
        problems.add(field, f"at most {MAX_ENVS} variables, got {len(pairs)}")
    result: list[tuple[str, str]] = []
    for key, value in pairs:
        if not isinstance(key, str) or not ENV_KEY_PATTERN.match(key):
            problems.add(field, f"key {key!r} must match [A-Za-z_][A-Za-z0-9_]*")
            continue
        if len(key) > MAX_ENV_KEY:
            problems.add(field, f"key {key[:20]}… is longer than {MAX_ENV_KEY} characters")
            continue
        text = "" if value is None else str(value)
        if len(text) > MAX_ENV_VALUE:
            # The value may be a secret: name the key, never echo the value.
            problems.add(field, f"value of {key} is longer than {MAX_ENV_VALUE} characters")
            continue
        result.append((key, text))
    return result


def parse_env_text(text: Any, field: str = "envs") -> list[tuple[str, str]]:
    """The magics' text form ``"A=1, B=2"`` (comma or newline separated KEY=value), checked by
    the same rules as parse_envs; raises at once. The Python API takes a dict instead."""
    problems = Problems()
    if not isinstance(text, str):
        problems.add(field, f"must be text like 'A=1, B=2', got {text!r}")
        problems.raise_if_any()
    pairs = parse_envs(_split_env_text(text, problems, field), problems, field)
    problems.raise_if_any()
    return pairs


def _split_env_text(text: str, problems: Problems, field: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in re.split(r"[,\n]", text):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            problems.add(field, f"entry {key.strip()!r} must look like KEY=value")
            continue
        pairs.append((key.strip(), value.strip()))
    return pairs


def merge_envs(
    base: Iterable[tuple[str, str]], overrides: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Template envs first, user envs override by key (order: template order, then new keys)."""
    merged: dict[str, str] = dict(base)
    for key, value in overrides:
        merged[key] = value
    return list(merged.items())


# ---------------------------------------------------------------------------------------------
# Network storages
# ---------------------------------------------------------------------------------------------


def mount_point_problem(mount: Any) -> str | None:
    """Why ``mount`` cannot be a volume's mount point, or None: an absolute path of 1–4095
    characters below ``/``, without ``.``/``..`` segments, whitespace or control characters
    (mounting over ``/`` or climbing out of the path would hide or expose the system)."""
    if not isinstance(mount, str) or not 1 <= len(mount) <= MAX_MOUNT_POINT:
        return f"must be 1–{MAX_MOUNT_POINT} characters, got {mount!r}"
    if not mount.startswith("/"):
        return f"must be an absolute path like /data, got {mount!r}"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in mount):
        return f"must not contain whitespace or control characters, got {mount!r}"
    segments = [s for s in mount.split("/") if s]
    if not segments:
        return "must be a directory below /, not / itself"
    if any(s in (".", "..") for s in segments):
        return f"must not contain '.' or '..' segments, got {mount!r}"
    return None


def parse_network_storages(value: Any, problems: Problems) -> list[dict[str, str]]:
    """Accept ids, (id, mount_point) pairs or dicts with id/Id and mountPoint/mount_point.
    Returns the body form ``[{"Id": ..., "mountPoint": ...}]`` (capital Id, as upstream)."""
    field = "network_storages"
    if value is None:
        return []
    items = [value] if isinstance(value, str | Mapping) else value
    if not isinstance(items, Iterable):
        problems.add(field, f"must be a list of storage ids or dicts, got {value!r}")
        return []
    result: list[dict[str, str]] = []
    for item in items:
        if isinstance(item, str):
            storage_id, mount = item, "/network"
        elif isinstance(item, tuple | list) and len(item) == 2:
            storage_id, mount = item
        elif isinstance(item, Mapping):
            storage_id = item.get("Id") or item.get("id") or item.get("storage_id")
            mount = item.get("mountPoint") or item.get("mount_point") or "/network"
        else:
            problems.add(field, f"entry {item!r} must be an id, (id, mount_point) or a dict")
            continue
        if not isinstance(storage_id, str) or not storage_id:
            problems.add(field, f"entry {item!r} has no storage id")
            continue
        mount_problem = mount_point_problem(mount)
        if mount_problem is not None:
            problems.add(field, f"mount point of {storage_id} {mount_problem}")
            continue
        result.append({"Id": storage_id, "mountPoint": mount})
    if len(result) > MAX_NETWORK_STORAGES:
        problems.add(field, f"at most {MAX_NETWORK_STORAGES} network storages, got {len(result)}")
    return result


def parse_volumes(value: Any, problems: Problems, field: str = "volumes") -> list[dict[str, str]]:
    """``volumes=``: names or ids, ``(volume, mount_point)`` pairs, ``"volume:/path"`` or dicts
    with name/id and mount_point; the mount point defaults to ``/network``. The shapes are
    validation's network-storage entries, with the volume's name allowed in place of its id."""
    if value is None:
        return []
    items = [value] if isinstance(value, str | Mapping | tuple) else value
    if not isinstance(items, Iterable):
        problems.add(field, f"must be a list of volume names or ids, got {value!r}")
        return []
    shaped: list[Any] = []
    for item in items:
        if isinstance(item, str) and ":/" in item:
            item = tuple(item.split(":", 1))
        elif isinstance(item, Mapping) and "name" in item:
            item = {**item, "Id": item["name"]}
        shaped.append(item)
    found = Problems()
    entries = parse_network_storages(shaped, found)
    for _field, rule in found.items:
        problems.add(field, rule)
    return [{**entry, "Id": entry["Id"].strip()} for entry in entries]


def check_text_field(value: Any, field: str, *, min_len: int, max_len: int) -> str:
    """A required string within bounds, raising at once (for the small helper methods)."""
    problems = Problems()
    if value is None:
        problems.add(field, "is required")
    else:
        check_text(value, problems, field, max_len=max_len, min_len=min_len)
    problems.raise_if_any()
    return value


#: The template channels ``templates(channel=...)`` lists.
TEMPLATE_CHANNELS: tuple[str, ...] = ("official", "community", "private")


def parse_channels(value: Any, field: str = "channel") -> list[str] | None:
    """Template channels: one of TEMPLATE_CHANNELS or a list of them; None: all."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    rule = f"must be one of {', '.join(TEMPLATE_CHANNELS)} or a list of them"
    if not isinstance(items, list | tuple | set | frozenset) or not items:
        raise invalid(field, f"{rule}, got {value!r}")
    for item in items:
        if item not in TEMPLATE_CHANNELS:
            raise invalid(field, f"{rule}, got {item!r}")
    return list(items)


def check_statuses(status: str | Iterable[str] | None) -> set[str] | None:
    """``status`` filters: a status or phase, or a list of them; None keeps everything."""
    if status is None:
        return None
    values = [status] if isinstance(status, str) else status
    try:
        wanted = set(values)
    except TypeError:
        raise ValidationError(
            f"status must be a status, a phase or a list of them, got {status!r}", field="status"
        ) from None
    allowed = set(STATUS_ORDER) | set(PHASES)
    for value in wanted:
        if not isinstance(value, str) or value not in allowed:
            raise ValidationError(
                f"status {value!r} is not a status or phase; allowed: "
                f"{', '.join(STATUS_ORDER)}; phases: {', '.join(PHASES)}",
                field="status",
            )
    return wanted
