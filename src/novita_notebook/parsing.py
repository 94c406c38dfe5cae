"""The API's quirks parsed in one place: statuses and phases, numbers and times sent as strings,
region codes, GPU names, secrets masked, and the fields of a listed instance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .money import usd_from_api

# ---------------------------------------------------------------------------------------------
# Statuses and phases
# ---------------------------------------------------------------------------------------------

#: Every documented status (plus ``pending``, seen live), in lifecycle order. Used as the
#: ordered categorical of instance frames; unknown strings are kept and sorted last.
STATUS_ORDER: tuple[str, ...] = (
    "pending",
    "toCreate",
    "creating",
    "pulling",
    "toStart",
    "starting",
    "toRestart",
    "restarting",
    "toReset",
    "resetting",
    "migrating",
    "running",
    "toStop",
    "stopping",
    "exited",
    "freezing",
    "toRemove",
    "removing",
    "removed",
)

_PHASE_OF_STATUS: dict[str, str] = {
    "pending": "provisioning",
    "toCreate": "provisioning",
    "creating": "provisioning",
    "pulling": "provisioning",
    "toStart": "starting",
    "starting": "starting",
    "toRestart": "starting",
    "restarting": "starting",
    "toReset": "starting",
    "resetting": "starting",
    "migrating": "starting",
    "running": "running",
    "toStop": "stopping",
    "stopping": "stopping",
    "exited": "stopped",
    "freezing": "stopped",
    "toRemove": "removing",
    "removing": "removing",
    "removed": "removed",
}

#: Phases in display order; ``failed`` is a statusError on an instance that came to rest (see
#: ``error_is_failure``), ``unknown`` any new string.
PHASES: tuple[str, ...] = (
    "provisioning",
    "starting",
    "running",
    "stopping",
    "stopped",
    "removing",
    "removed",
    "failed",
    "unknown",
)

#: Statuses an instance can rest in without further action.
TERMINAL_STATUSES: frozenset[str] = frozenset({"running", "exited", "removed"})
#: Statuses in which the instance is billed for compute (billing starts at pulling).
BILLED_STATUSES: frozenset[str] = frozenset(
    {"pulling", "running", "toStop", "stopping", "toRestart", "restarting", "toReset", "resetting"}
)
#: Statuses that count as "live" (not gone): for name uniqueness, ledgers and cleanup.
GONE_STATUSES: frozenset[str] = frozenset({"toRemove", "removing", "removed"})


#: Statuses in which a statusError is not (yet) a failure: the instance is on its way, running
#: or going away. No public source says when Novita sets statusError, so one seen there may be
#: transient (a retried pull) or stale on a healthy instance; waits judge it over a window.
#: Anywhere else (exited, freezing, a status nobody documented) a statusError means failed.
ERROR_MAY_PASS: frozenset[str] = frozenset(_PHASE_OF_STATUS) - {"exited", "freezing"}


def error_is_failure(status: str | None, status_error: StatusError | None) -> bool:
    """True when a statusError means the instance failed: it says something, and the status
    is one where an instance rests (``exited``) or one nobody documented."""
    return (
        status_error is not None
        and status_error.is_failure
        and (status or "") not in ERROR_MAY_PASS
    )


def phase_of(status: str | None, status_error: StatusError | None = None) -> str:
    """Map a raw status string (and an optional statusError) to a coarse phase name."""
    if error_is_failure(status, status_error):
        return "failed"
    if not status:
        return "unknown"
    return _PHASE_OF_STATUS.get(status, "unknown")


# ---------------------------------------------------------------------------------------------
# Parsing helpers (the API's quirks, in one place)
# ---------------------------------------------------------------------------------------------

parse_price = usd_from_api  # API price units (1/100000 USD per hour) → USD


def parse_int(value: Any, default: int | None = None) -> int | None:
    """Numbers sent as strings (``"16"``), ints or floats → int; junk → default."""
    if value is None or value == "":
        return default
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def parse_time(value: Any) -> datetime | None:
    """Unix seconds (int or digit string; ``"0"``/``"-1"`` mean none) or ISO 8601 → aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        seconds = float(value)
        if seconds <= 0:
            return None
        if seconds > 1e11:  # milliseconds slipped in
            seconds /= 1000.0
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def region_code(region: str) -> str:
    """``"US-CA-06 (California)"`` → ``"US-CA-06"`` (products' ``regions`` carry a suffix)."""
    return region.strip().split(" ", 1)[0] if region else ""


_GPU_MODEL = re.compile(
    r"(RTX\s*(?:PRO\s*)?\d+\s*(?:Ti|Ada|SUPER)?|GTX\s*\d+|A\d{2,4}|H\d{2,4}|L\d{1,2}S?|B\d{3}|V100|T4|MI\d+X?)",
    re.IGNORECASE,
)
_VRAM = re.compile(r"(\d+)\s*GB", re.IGNORECASE)


def gpu_model_of(product_name: str) -> str:
    """``"RTX 4090 24GB"`` → ``"RTX 4090"``; ``"A100 80GB SXM"`` → ``"A100"``; else the name."""
    match = _GPU_MODEL.search(product_name or "")
    if not match:
        return (product_name or "").strip()
    model = re.sub(r"\s+", " ", match.group(1)).strip().upper()
    return model.replace("TI", "Ti").replace("ADA", "Ada")


def vram_gb_of(product_name: str) -> int | None:
    """``"RTX 4090 24GB"`` → 24 (VRAM is in the product name, not in memoryPerGpu)."""
    match = _VRAM.search(product_name or "")
    return int(match.group(1)) if match else None


# Fuzzy GPU matching: a query's tokens against a product's name and model.
_NOISE_TOKENS = frozenset({"nvidia", "geforce", "gpu", "tesla"})
_GB = re.compile(r"(\d+)\s*gb\b")
_LETTERS_THEN_DIGITS = re.compile(r"^([a-z]+)(\d.*)$")


def gpu_tokens(text: str) -> list[str]:
    """``"RTX4090 24 GB"`` → ``["rtx", "4090", "24gb"]`` (case, spaces and vendor words ignored).

    A letter prefix is split from its digits (``rtx4090`` → ``rtx``, ``4090``) but a digit run
    keeps its suffix (``40s`` stays whole), so ``L40`` does not match ``L40S`` and ``A10`` does
    not match ``A100``.
    """
    lowered = _GB.sub(r"\1gb", (text or "").lower())
    tokens: list[str] = []
    for raw in re.split(r"[^a-z0-9.]+", lowered):
        if not raw or raw in _NOISE_TOKENS:
            continue
        match = _LETTERS_THEN_DIGITS.match(raw)
        if match and not raw.endswith("gb"):
            tokens.extend((match.group(1), match.group(2)))
        else:
            tokens.append(raw)
    return tokens


def gpu_matches(query: str, product_name: str, gpu_model: str = "") -> bool:
    """True when every token of ``query`` is a token of the product's name or GPU model:
    ``"4090"``, ``"rtx 4090"`` and ``"RTX 4090 24GB"`` all match ``RTX 4090 24GB``."""
    wanted = gpu_tokens(query)
    if not wanted:
        return False
    have = set(gpu_tokens(product_name)) | set(gpu_tokens(gpu_model))
    return all(token in have for token in wanted)


@dataclass(frozen=True)
class StatusError:
    """An instance's ``statusError``. ``is_failure`` says it reports something; whether the
    instance failed depends on its status too (``error_is_failure``)."""

    state: str
    message: str

    @property
    def is_failure(self) -> bool:
        return bool(self.state or self.message)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.state, self.message) if part) or "error"


_SECRET_KEYS = {"password", "sshPassword", "imageAuth"}


def without_secrets(data: Any) -> Any:
    """A deep copy of an API object with passwords blanked (raw data is shown in tables)."""
    if isinstance(data, dict):
        # scalars are copied in place: a call per value was most of parsing a listing
        return {
            k: (
                "***"
                if k in _SECRET_KEYS and v
                else without_secrets(v)
                if isinstance(v, dict | list)
                else v
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [without_secrets(v) if isinstance(v, dict | list) else v for v in data]
    return data


class RawSource:
    """The API dict an Instance was built from, masked the first time ``raw`` is read."""

    __slots__ = ("data", "masked")

    def __init__(self, data: Any) -> None:
        self.data = data
        self.masked: Any = None

    def __repr__(self) -> str:  # the unmasked data must not show through vars() either
        return "<raw API data, passwords masked when read>"


class MaskedRaw:
    """``Instance.raw``: whatever is assigned is kept as given and handed out as a copy with
    passwords blanked (``without_secrets``), made on first read. Most instances of a listing
    are never looked at raw, so copying each one up front was half of parsing it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_source"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self  # the dataclass default: __set__ turns it into {}
        source = obj.__dict__.get(self._slot)
        if source is None:
            return {}
        if source.masked is None:
            source.masked = without_secrets(source.data)
        return source.masked

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._slot] = RawSource({} if value is None or value is self else value)


def node_max_rootfs(node: Any) -> int | None:
    """``node`` is an array ``[{maxRootfsSize}]`` in the docs and an object in one SDK."""
    if isinstance(node, list):
        node = next((item for item in node if isinstance(item, dict)), None)
    return parse_int(node.get("maxRootfsSize")) if isinstance(node, dict) else None


NO_DICT: dict[str, Any] = {}


def fast_int(value: Any) -> int | None:
    """``parse_int`` with the common cases (an int, a digit string as the API sends counts,
    nothing) first."""
    if type(value) is int:
        return value
    if type(value) is str and value.isdecimal():  # not isdigit: int("²") fails
        return int(value)
    return parse_int(value) if value is not None else None


def fast_time(value: Any) -> datetime | None:
    """``parse_time`` without a call for the common "no time" values (None, "", 0)."""
    return parse_time(value) if value else None


#: The keys of ``listing_fields``: the Instance fields a listing shows.
LISTING_FIELDS = (
    "id",
    "name",
    "status",
    "cluster_id",
    "region",
    "product_id",
    "product_name",
    "gpu_num",
    "image_url",
    "billing_mode",
    "status_error",
    "ssh_command",
    "jupyter_url",
    "created_at",
    "started_at",
    "stopped_at",
)


def listing_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of an Instance that a listing shows (``frames.instances_frame``'s columns
    and what prices and filters read), by field name, parsed from an API dict. The one home
    of those rules: ``Instance.from_api`` starts from these, and ``Novita.instances()``
    builds its frame from them without making the Instances."""
    get = data.get
    ssh = get("connectComponentSSH") or NO_DICT
    jupyter = get("connectComponentJupyter") or NO_DICT
    error = get("statusError")
    return {
        "id": str(get("id") or get("Id") or ""),
        "name": str(get("name") or ""),
        "status": str(get("status") or ""),
        "cluster_id": get("clusterId") or None,
        "region": get("clusterName") or get("clusterId") or None,
        "product_id": get("productId") or None,
        "product_name": get("productName") or None,
        "gpu_num": fast_int(get("gpuNum")),
        "image_url": get("imageUrl") or None,
        "billing_mode": get("billingMode") or None,
        "status_error": parse_status_error(error) if error else None,
        "ssh_command": ssh.get("sshCommand") or get("sshCommand") or None,
        "jupyter_url": jupyter.get("address") or None,
        "created_at": fast_time(get("createdAt") or get("createTime")),
        "started_at": fast_time(get("lastStartedAt")),
        "stopped_at": fast_time(get("lastStoppedAt")),
    }


def parse_status_error(error: Any) -> StatusError | None:
    """``statusError`` → a StatusError, or None when it says nothing (``{"state": ""}``)."""
    if isinstance(error, dict) and (error.get("state") or error.get("message")):
        return StatusError(str(error.get("state") or ""), str(error.get("message") or ""))
    return None


def parse_ssh_command(command: str | None) -> tuple[str | None, int | None]:
    """``"ssh root@host -p 30022"`` → ``("host", 30022)``."""
    if not command:
        return None, None
    parts = command.split()
    host = None
    port = None
    for i, part in enumerate(parts):
        if part == "-p" and i + 1 < len(parts):
            port = parse_int(parts[i + 1])
        elif part.startswith("-p") and part[2:].isdigit():
            port = int(part[2:])
        elif "@" in part and host is None:
            host = part.split("@", 1)[1]
    return host, port
