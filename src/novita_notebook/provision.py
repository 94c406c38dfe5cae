"""Provisioning: cheapest available product with multi-region fallback and its report,
templates, registry auths, batches, budget, and never a duplicate instance.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import html
from .errors import (
    BudgetExceededError,
    CapacityError,
    CircuitBreakerError,
    NetworkError,
    NotFoundError,
    NovitaError,
    RateLimitError,
    TimeoutError,
    ValidationError,
)
from .frames import gpu_matches
from .models import (
    BILLED_STATUSES,
    GONE_STATUSES,
    Cluster,
    Instance,
    Product,
    RegistryAuth,
    Template,
    phase_of,
)
from .validation import (
    MAX_COMMAND,
    Problems,
    check_billing,
    check_gpu_num,
    check_image,
    check_int_range,
    check_max_price,
    check_name,
    check_progress,
    check_regions,
    check_rootfs,
    check_text,
    check_text_field,
    format_ports,
    group_ports,
    merge_envs,
    parse_envs,
    parse_network_storages,
    parse_ports,
)
from .watch import WAIT_TARGETS

if TYPE_CHECKING:  # pragma: no cover
    from .client import Novita

logger = logging.getLogger(__name__)

#: Public PyTorch + JupyterLab image (CUDA 12) used when neither image nor template is given;
#: it starts JupyterLab on 8888 by itself, so only that port is exposed.
DEFAULT_IMAGE = "quay.io/jupyter/pytorch-notebook:cuda12-latest"
DEFAULT_IMAGE_PORTS: tuple[tuple[int, str], ...] = ((8888, "http"),)
#: The first 60 GB of container disk are free on Novita.
DEFAULT_ROOTFS_GB = 60
#: Regions tried first (lower first); every other cluster the API lists follows in API order.
DEFAULT_REGION_PRIORITY: dict[str, int] = {"AS-SGP-02": 1, "CN-HK-01": 2, "AS-IN-01": 3}

BILLING_LABELS = {"onDemand": "on demand", "spot": "spot", "monthly": "monthly"}

# Ambiguous creates (the request may or may not have been applied): how many creates we send
# at most, and how we look for the instance. Every resend follows lookups proving that nothing
# was created, so resending is safe; the bound only limits how long a failing API is tried.
MAX_CREATE_SENDS = 8
LOOKUP_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
SETTLE_AFTER_ERROR = 0.25  # a 5xx was answered: the server is done with the request
SETTLE_AFTER_DROP = 1.0  # the connection dropped: the request may still be running
SETTLE_AFTER_TIMEOUT_MAX = 90.0
# Rejections that prove the create was not applied (429, open breaker) are re-sent after the
# server's or breaker's delay, a bounded number of times; a wait longer than MAX_NOT_SENT_WAIT
# is never shortened: the error goes to the caller instead.
MAX_NOT_SENT_RETRIES = 8
MAX_NOT_SENT_WAIT = 30.0
# Rolling back a batch: deletes are retried so nothing is left behind on a flaky network.
DELETE_ATTEMPTS = 5

OUTCOME_NO_PRODUCT = "no such product"
OUTCOME_UNAVAILABLE = "out of stock"
OUTCOME_OVER_PRICE = "over max_price"
OUTCOME_ROOTFS = "rootfs too large"
OUTCOME_CREATE_FAILED = "create failed"
OUTCOME_NO_STORAGE = "no network storage"
OUTCOME_CHOSEN = "chosen"

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_locks_guard = threading.Lock()


# ---------------------------------------------------------------------------------------------
# The fallback report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What happened in one region: the outcome, a readable detail, and the offer if any."""

    region: str
    outcome: str
    detail: str
    cluster_id: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    price_per_gpu_hour: float | None = None
    price_per_hour: float | None = None  # the whole instance (all GPUs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "outcome": self.outcome,
            "detail": self.detail,
            "product_id": self.product_id,
            "product": self.product_name,
            "price_per_hour": self.price_per_hour,
        }


class FallbackReport:
    """Every region tried, in order, with its outcome, and the offer chosen (if one was)."""

    def __init__(self, gpu: str | None, gpu_num: int, billing: str) -> None:
        self.gpu = gpu
        self.gpu_num = gpu_num
        self.billing = billing
        self.attempts: list[Attempt] = []

    def add(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    @property
    def chosen(self) -> Attempt | None:
        for attempt in self.attempts:
            if attempt.outcome == OUTCOME_CHOSEN:
                return attempt
        return None

    @property
    def price(self) -> float | None:
        """USD per hour of the chosen offer for the whole instance, or None."""
        chosen = self.chosen
        return chosen.price_per_hour if chosen else None

    @property
    def regions_tried(self) -> list[str]:
        seen: list[str] = []
        for attempt in self.attempts:
            if attempt.region not in seen:
                seen.append(attempt.region)
        return seen

    def to_frame(self) -> pd.DataFrame:
        columns = ["region", "outcome", "detail", "product_id", "product", "price_per_hour"]
        return pd.DataFrame([a.as_dict() for a in self.attempts], columns=columns)

    def lines(self) -> list[str]:
        width = max((len(a.region) for a in self.attempts), default=0) + 2
        return [f"{a.region:<{width}}{a.detail}" for a in self.attempts]

    def __repr__(self) -> str:
        if not self.attempts:
            return "FallbackReport: no region tried"
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        rows = []
        for attempt in self.attempts:
            phase = "running" if attempt.outcome == OUTCOME_CHOSEN else "failed"
            price = f"${attempt.price_per_hour:.2f}/h" if attempt.price_per_hour else None
            rows.append(
                (
                    attempt.region,
                    html.badge(attempt.outcome, phase),
                    attempt.detail,
                    attempt.product_name,
                    price,
                )
            )
        title = f"<b>{html.text(_describe_request(self.gpu, self.gpu_num, self.billing))}</b>"
        columns = ["region", "outcome", "detail", "product", "price"]
        return title + html.table(columns, rows, raw_columns=["outcome"])


def _describe_request(gpu: str | None, gpu_num: int, billing: str) -> str:
    what = gpu if gpu else "any GPU"
    count = f" x{gpu_num}" if gpu_num > 1 else ""
    return f"{what}{count} ({BILLING_LABELS.get(billing, billing)})"


# ---------------------------------------------------------------------------------------------
# Product matching and ranking (pure functions over one listing)
# ---------------------------------------------------------------------------------------------


def _compact(text: str) -> str:
    return "".join(re.findall(r"[a-z0-9]+", text.lower()))


def match_gpu(products: Iterable[Product], gpu: str | None) -> list[Product]:
    """Products whose id or name matches ``gpu`` the way ``Novita.products(gpu=)`` does:
    ``"4090"``, ``"rtx 4090"``, ``"RTX 4090 24GB"`` or a product id; ``"L4"`` does not match
    ``"L40S"``. When an exact model and a longer one both match, the exact model wins."""
    products = list(products)
    if not gpu:
        return products
    by_id = [p for p in products if p.id == gpu]
    if by_id:
        return by_id
    matches = [p for p in products if gpu_matches(gpu, p.name, p.gpu_model)]
    exact = [
        p
        for p in matches
        if _compact(p.gpu_model) == _compact(gpu) or _compact(p.name) == _compact(gpu)
    ]
    return exact or matches


def _in_region(product: Product, cluster: Cluster) -> bool:
    codes = {code.upper() for code in product.regions}
    return cluster.name.upper() in codes or cluster.id.upper() in codes


def _offers_billing(product: Product, billing: str) -> bool:
    if product.billing_methods and billing not in product.billing_methods:
        return False
    return product.price_for(billing) is not None


def _rank_key(product: Product, billing: str) -> tuple[Any, ...]:
    """Cheapest first; ties: more memory per GPU, more CPU per GPU, then id."""
    return (
        product.price_for(billing),
        -(product.memory_per_gpu or 0),
        -(product.cpu_per_gpu or 0),
        product.id,
    )


def _names(products: Iterable[Product]) -> str:
    return ", ".join(dict.fromkeys(p.name for p in products))


@dataclass
class RegionVerdict:
    """The offers of one region that may be tried (ranked), or why none may."""

    cluster: Cluster
    candidates: list[Product]
    outcome: str | None = None
    detail: str | None = None


def judge_region(
    cluster: Cluster,
    matches: Sequence[Product],
    *,
    gpu: str | None,
    billing: str,
    max_price: float | None,
    rootfs_gb: int | None,
) -> RegionVerdict:
    """Filter the matching products of one region: billing, rootfs, stock, then max_price."""
    what = gpu or "GPU"
    here = [p for p in matches if _in_region(p, cluster)]
    if not here:
        return RegionVerdict(cluster, [], OUTCOME_NO_PRODUCT, f"no such product: no {what} here")
    billed = [p for p in here if _offers_billing(p, billing)]
    if not billed:
        label = BILLING_LABELS.get(billing, billing)
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_NO_PRODUCT,
            f"no such product: no {label} billing for {_names(here)}",
        )
    sized = [
        p for p in billed if rootfs_gb is None or not p.max_rootfs or rootfs_gb <= p.max_rootfs
    ]
    if not sized:
        largest = max(p.max_rootfs or 0 for p in billed)
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_ROOTFS,
            f"rootfs too large: {_names(billed)} allows at most {largest} GB, asked {rootfs_gb} GB",
        )
    available = [p for p in sized if p.available]
    if not available:
        return RegionVerdict(cluster, [], OUTCOME_UNAVAILABLE, f"out of stock: {_names(sized)}")
    affordable = [
        p for p in available if max_price is None or (p.price_for(billing) or 0) <= max_price + 1e-9
    ]
    if not affordable:
        cheapest = min(available, key=lambda p: _rank_key(p, billing))
        return RegionVerdict(
            cluster,
            [],
            OUTCOME_OVER_PRICE,
            f"over max_price: {cheapest.name} at ${cheapest.price_for(billing):.2f}/GPU-h "
            f"> ${max_price:.2f}/GPU-h",
        )
    return RegionVerdict(cluster, sorted(affordable, key=lambda p: _rank_key(p, billing)))


def order_regions(
    clusters: Sequence[Cluster],
    *,
    region: str | None = None,
    regions: Sequence[str] | Mapping[str, int] | None = None,
) -> list[Cluster]:
    """The clusters to try, in order. Default: AS-SGP-02, CN-HK-01, AS-IN-01, then the others
    as the API lists them. ``regions`` (names or ids; a list in order, or {name: priority})
    replaces that list entirely; ``region`` goes first in any case."""
    known = list(clusters)

    def find(key: Any, field: str) -> Cluster:
        text = str(key).strip().upper()
        for cluster in known:
            if text in (cluster.name.upper(), cluster.id.upper()):
                return cluster
        names = ", ".join(c.name for c in known)
        raise ValidationError(
            f"{field}: unknown region {key!r}; the API knows {names}", field=field
        )

    if regions is not None:
        if isinstance(regions, str):
            regions = [r for r in regions.split(",") if r.strip()]
        if isinstance(regions, Mapping):
            for key, priority in regions.items():
                if isinstance(priority, bool) or not isinstance(priority, int | float):
                    raise ValidationError(
                        f"regions: priority of {key!r} must be a number, got {priority!r}",
                        field="regions",
                    )
            keys = [k for k, _ in sorted(regions.items(), key=lambda item: item[1])]
        else:
            keys = list(regions)
        if not keys:
            raise ValidationError("regions: must name at least one region", field="regions")
        ordered = [find(key, "regions") for key in keys]
    else:
        position = {c.name: i for i, c in enumerate(known)}
        ordered = sorted(
            known,
            key=lambda c: (
                DEFAULT_REGION_PRIORITY.get(c.name, len(DEFAULT_REGION_PRIORITY) + 1),
                position[c.name],
            ),
        )
    if region is not None:
        first = find(region, "region")
        ordered = [first] + [c for c in ordered if c.id != first.id]
    unique: list[Cluster] = []
    for cluster in ordered:
        if all(cluster.id != seen.id for seen in unique):
            unique.append(cluster)
    return unique


def find_alternatives(
    products: Sequence[Product],
    *,
    gpu: str | None,
    billing: str,
    tried: Sequence[Cluster],
    limit: int = 5,
) -> list[dict[str, Any]]:
    """What could be created right now instead: the same GPU in other regions or with another
    billing method first, then other GPU models closest in VRAM; cheapest offer of each."""
    matched_ids = {p.id for p in match_gpu(products, gpu)} if gpu else set()
    wanted_vram = [p.vram_gb for p in products if p.id in matched_ids and p.vram_gb]
    target_vram = wanted_vram[0] if wanted_vram else None
    options: dict[tuple[str, str], dict[str, Any]] = {}
    for product in products:
        if not product.available:
            continue
        region = product.regions[0] if product.regions else ""
        for method in ("onDemand", "spot", "monthly"):
            if not _offers_billing(product, method):
                continue
            same_gpu = product.id in matched_ids
            in_tried = any(_in_region(product, c) for c in tried)
            if same_gpu and method == billing and in_tried:
                continue  # that is exactly what just failed
            if same_gpu and method == billing:
                closeness = 0.0
            elif same_gpu:
                closeness = 1.0
            else:
                distance = abs((product.vram_gb or 0) - target_vram) if target_vram else 0
                closeness = 2.0 + distance / 1000.0 + (0 if method == billing else 0.5)
            price = product.price_for(method)
            key = (product.name, method)
            option = {
                "gpu": product.name,
                "product_id": product.id,
                "region": region,
                "billing": method,
                "price_per_gpu_hour": price,
                "_rank": (closeness, price),
            }
            if key not in options or option["_rank"] < options[key]["_rank"]:
                options[key] = option
    ranked = sorted(options.values(), key=lambda o: o["_rank"])[:limit]
    for option in ranked:
        option.pop("_rank")
    return ranked


def _describe_alternatives(alternatives: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{a['gpu']} {BILLING_LABELS.get(a['billing'], a['billing'])} in {a['region']} "
        f"(${a['price_per_gpu_hour']:.2f}/GPU-h)"
        for a in alternatives
    )


def _unknown_gpu_error(gpu: str, products: Sequence[Product], billing: str) -> ValidationError:
    cheapest: dict[str, float] = {}
    for product in products:
        price = product.price_for(billing) or product.price
        if product.available and price is not None:
            cheapest[product.name] = min(price, cheapest.get(product.name, price))
    ranked = sorted(cheapest.items(), key=lambda item: item[1])
    listing = ", ".join(f"{name} (${price:.2f}/h)" for name, price in ranked) or "nothing"
    hint = None
    models = sorted({p.gpu_model for p in products if p.name in cheapest and p.gpu_model})
    close = difflib.get_close_matches(gpu.upper(), models, n=1, cutoff=0.0)
    if close:
        hint = f'Try gpu="{close[0]}" or see Novita.products().'
    return ValidationError(
        f'gpu: no product matches "{gpu}". Available now: {listing}.', field="gpu", hint=hint
    )


# ---------------------------------------------------------------------------------------------
# A validated create request
# ---------------------------------------------------------------------------------------------


@dataclass
class CreateRequest:
    """Everything create() was asked for, validated and normalised (no HTTP involved)."""

    name: str
    gpu: str | None
    gpu_num: int
    billing: str
    image: str | None
    template: str | None
    region: str | None
    regions: Sequence[str] | Mapping[str, int] | None
    max_price: float | None
    rootfs_gb: int | None
    ports: list[tuple[int, str]] | None
    envs: list[tuple[str, str]]
    command: str | None
    entrypoint: str | None
    image_auth_id: str | None
    network_storages: list[dict[str, str]]
    unique_name: bool
    wait: bool
    wait_until: str
    timeout: float | None
    progress: Callable[..., Any] | str | None = None


def prepare_request(
    name: Any,
    gpu: Any = None,
    *,
    gpu_num: Any = 1,
    image: Any = None,
    template: Any = None,
    region: Any = None,
    regions: Any = None,
    billing: Any = "onDemand",
    max_price: Any = None,
    rootfs_gb: Any = None,
    ports: Any = None,
    envs: Any = None,
    command: Any = None,
    entrypoint: Any = None,
    image_auth_id: Any = None,
    network_storages: Any = None,
    unique_name: bool = False,
    wait: bool = False,
    wait_until: str = "running",
    timeout: float | None = None,
    progress: Callable[..., Any] | str | None = None,
) -> CreateRequest:
    """Check every rule that needs no API call; raise one ValidationError listing them all."""
    problems = Problems()
    checked_name = check_name(name, problems)
    if checked_name is not None and unique_name and len(checked_name) > 56:
        problems.add("name", "must be at most 56 characters with unique_name=True (7 are added)")
    if gpu is not None and (not isinstance(gpu, str) or not gpu.strip()):
        problems.add("gpu", f"must be a GPU name like 'RTX 4090' or '4090', got {gpu!r}")
    checked_gpu_num = check_gpu_num(gpu_num, problems)
    checked_billing = check_billing(billing, problems)
    checked_image = check_image(image, problems)
    if image is not None and template is not None:
        problems.add("image", "give either image or template, not both (the template has one)")
    if template is not None and (not isinstance(template, str) or not template.strip()):
        problems.add("template", f"must be a template id or name, got {template!r}")
    checked_rootfs = check_rootfs(rootfs_gb, problems) if rootfs_gb is not None else None
    checked_ports = parse_ports(ports, problems) if ports is not None else None
    checked_envs = parse_envs(envs, problems)
    checked_command = check_text(command, problems, "command", max_len=MAX_COMMAND)
    checked_entrypoint = check_text(entrypoint, problems, "entrypoint", max_len=MAX_COMMAND)
    checked_price = check_max_price(max_price, problems)
    if image_auth_id is not None and (not isinstance(image_auth_id, str) or not image_auth_id):
        problems.add("image_auth_id", "must be a registry auth id or name")
    storages = parse_network_storages(network_storages, problems)
    if region is not None and (not isinstance(region, str) or not region.strip()):
        problems.add("region", f"must be a region name like 'AS-SGP-02', got {region!r}")
    check_regions(regions, problems)
    for flag_name, flag in (("unique_name", unique_name), ("wait", wait)):
        if not isinstance(flag, bool):
            problems.add(flag_name, f"must be True or False, got {flag!r}")
    if wait_until not in WAIT_TARGETS:
        problems.add("wait_until", f"must be one of {', '.join(WAIT_TARGETS)}, got {wait_until!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        problems.add("timeout", f"must be a positive number of seconds, got {timeout!r}")
    try:
        check_progress(progress)
    except ValidationError as error:
        problems.add("progress", error.message.removeprefix("progress "))
    problems.raise_if_any()
    return CreateRequest(
        name=checked_name or "",
        gpu=gpu.strip() if isinstance(gpu, str) else None,
        gpu_num=checked_gpu_num or 1,
        billing=checked_billing or "onDemand",
        image=checked_image,
        template=template.strip() if isinstance(template, str) else None,
        region=region,
        regions=regions,
        max_price=checked_price,
        rootfs_gb=checked_rootfs,
        ports=checked_ports,
        envs=checked_envs,
        command=checked_command,
        entrypoint=checked_entrypoint,
        image_auth_id=image_auth_id,
        network_storages=storages,
        unique_name=bool(unique_name),
        wait=bool(wait),
        wait_until=wait_until,
        timeout=timeout,
        progress=progress,
    )


@dataclass
class LaunchPlan:
    """The create request merged with its template: what every candidate's body shares."""

    image: str
    image_auth_id: str | None
    ports: list[tuple[int, str]]
    envs: list[tuple[str, str]]
    command: str | None
    entrypoint: str | None
    rootfs_gb: int | None  # asked explicitly (a product that cannot hold it is skipped)
    default_rootfs_gb: int  # fitted into each product's bounds


def _ambiguous(error: NovitaError) -> bool:
    """True when the create may have been applied although it failed."""
    if isinstance(error, RateLimitError | CircuitBreakerError):
        return False
    if isinstance(error, TimeoutError | NetworkError):
        return True
    return (error.status or 0) >= 500


def _capacity_failure(error: NovitaError) -> bool:
    return isinstance(error, CapacityError) or error.reason in (
        "INSUFFICIENT_RESOURCE",
        "MIGRATE_INSUFFICIENT_RESOURCE",
    )


def _suffix() -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6))


def _is_live(raw: Mapping[str, Any]) -> bool:
    return str(raw.get("status") or "") not in GONE_STATUSES


def _counts_for_budget(raw: Mapping[str, Any]) -> bool:
    """Live and billed, or on its way to running (it will be billed in a moment)."""
    status = str(raw.get("status") or "")
    if status in GONE_STATUSES:
        return False
    error = raw.get("statusError") or {}
    if isinstance(error, Mapping) and (error.get("state") or error.get("message")):
        return status in BILLED_STATUSES
    return status in BILLED_STATUSES or phase_of(status) in ("provisioning", "starting")


# ---------------------------------------------------------------------------------------------
# The mixin
# ---------------------------------------------------------------------------------------------


class ProvisioningMixin:
    """Methods of Novita for creating instances, templates and registry auths."""

    # -- create ----------------------------------------------------------------------------------
    def create(
        self: Novita,
        name: str,
        gpu: str | None = None,
        *,
        gpu_num: int = 1,
        image: str | None = None,
        template: str | None = None,
        region: str | None = None,
        regions: Sequence[str] | Mapping[str, int] | None = None,
        billing: str = "onDemand",
        max_price: float | None = None,
        rootfs_gb: int | None = None,
        ports: Any = None,
        envs: Any = None,
        command: str | None = None,
        entrypoint: str | None = None,
        image_auth_id: str | None = None,
        network_storages: Any = None,
        unique_name: bool = False,
        wait: bool = False,
        wait_until: str = "running",
        timeout: float | None = None,
        progress: Callable[..., Any] | str | None = None,
    ) -> Instance:
        """Create an instance on the cheapest available offer, falling back across regions.

        ``gpu`` is matched fuzzily ("4090", "rtx 4090", "RTX 4090 24GB" or a product id; None
        means any GPU). Regions are tried in order (``region`` first; default AS-SGP-02,
        CN-HK-01, AS-IN-01, then the rest; ``regions`` replaces that list) and in each the
        cheapest available product is taken (ties: more memory, then CPU per GPU); if its
        stock races away the next candidate is tried. ``max_price`` is USD per GPU-hour, the
        unit of ``products()``. The result carries ``fallback_report``; with ``wait=True`` it
        is returned once ``wait_until`` is reached (``progress`` is passed to ``wait``).

        ``template`` (id or name) supplies image, ports, envs, rootfs, command, entrypoint and
        registry auth (sent as ``imageAuthId``, never a password); ``envs``/``ports`` given here
        override it. Without image or template a public PyTorch + Jupyter image is used.

        Names are kept as given and must be unique among live instances (``unique_name=True``
        appends a random suffix). After an ambiguous failure (timeout, dropped connection, 5xx)
        the instance is looked up by name and adopted if it exists, so one call makes at most
        one instance. With ``budget_per_hour`` configured, a create that would push the hourly
        price of live, billed or starting instances over it raises ``BudgetExceededError``.
        Raises ``CapacityError`` (with ``attempts`` and ``alternatives``) when no region can
        serve the request; every error raised after the search began carries
        ``fallback_report``.
        """
        request = prepare_request(
            name,
            gpu,
            gpu_num=gpu_num,
            image=image,
            template=template,
            region=region,
            regions=regions,
            billing=billing,
            max_price=max_price,
            rootfs_gb=rootfs_gb,
            ports=ports,
            envs=envs,
            command=command,
            entrypoint=entrypoint,
            image_auth_id=image_auth_id,
            network_storages=network_storages,
            unique_name=unique_name,
            wait=wait,
            wait_until=wait_until,
            timeout=timeout,
            progress=progress,
        )
        return self._provision(request)

    def _provision(
        self: Novita, request: CreateRequest, listing: list[Product] | None = None
    ) -> Instance:
        clusters = _patiently(self.cached_clusters)
        region = request.region
        if region is None and request.regions is None:
            region = getattr(self.config, "default_region", None)
        ordered = order_regions(clusters, region=region, regions=request.regions)
        plan = self._launch_plan(request)
        name = request.name
        if request.unique_name:
            name = _patiently(lambda: self._claim_name(request.name, unique=True))
        # Held before the API check, so a concurrent create of the same name in this process
        # either sees this one in flight or, once it is done, sees it in the API.
        with self._name_in_flight(name):
            if not request.unique_name:
                _patiently(lambda: self._claim_name(name, unique=False))
            return self._search_and_create(request, plan, name, ordered, listing)

    def _search_and_create(
        self: Novita,
        request: CreateRequest,
        plan: LaunchPlan,
        name: str,
        ordered: list[Cluster],
        listing: list[Product] | None,
    ) -> Instance:
        # One listing for the whole decision, refreshed so stock is current (a batch shares one).
        products = listing if listing is not None else self._fresh_listing(request.gpu_num)
        matches = match_gpu(products, request.gpu)
        if request.gpu and not matches:
            raise _unknown_gpu_error(request.gpu, products, request.billing)
        report = FallbackReport(request.gpu, request.gpu_num, request.billing)
        try:
            for cluster in ordered:
                if request.network_storages and not cluster.support_network_storage:
                    report.add(
                        Attempt(
                            cluster.name,
                            OUTCOME_NO_STORAGE,
                            "no network storage: this region cannot mount network volumes",
                            cluster.id,
                        )
                    )
                    continue
                verdict = judge_region(
                    cluster,
                    matches,
                    gpu=request.gpu,
                    billing=request.billing,
                    max_price=request.max_price,
                    rootfs_gb=plan.rootfs_gb,
                )
                if not verdict.candidates:
                    report.add(
                        Attempt(
                            cluster.name, verdict.outcome or "", verdict.detail or "", cluster.id
                        )
                    )
                    continue
                for product in verdict.candidates:
                    instance = self._try_candidate(request, plan, name, cluster, product, report)
                    if instance is not None:
                        return self._finish(instance, request, report)
        except NovitaError as error:
            # Whatever stopped the search, the regions already tried stay inspectable.
            error.fallback_report = report
            raise
        raise self._capacity_error(request, report, products, ordered)

    def _try_candidate(
        self: Novita,
        request: CreateRequest,
        plan: LaunchPlan,
        name: str,
        cluster: Cluster,
        product: Product,
        report: FallbackReport,
    ) -> Instance | None:
        """Create on one offer; None (and a report line) when its stock raced away."""
        per_gpu = product.price_for(request.billing) or 0.0
        price = round(per_gpu * request.gpu_num, 6)
        body = self._create_body(request, plan, name, cluster, product)
        with self._budget_reservation(name, price):
            try:
                instance_id, adopted = self._send_create(body, name)
            except NovitaError as error:
                if not _capacity_failure(error):
                    raise
                reason = error.reason or "INSUFFICIENT_RESOURCE"
                report.add(
                    Attempt(
                        cluster.name,
                        OUTCOME_CREATE_FAILED,
                        f"create failed: {reason} for {product.name} ({error.message})",
                        cluster.id,
                        product.id,
                        product.name,
                        per_gpu,
                        price,
                    )
                )
                return None
        label = BILLING_LABELS.get(request.billing, request.billing)
        adopted_note = " (adopted after an ambiguous create)" if adopted else ""
        report.add(
            Attempt(
                cluster.name,
                OUTCOME_CHOSEN,
                f"chosen: {product.name} at ${price:.2f}/h ({label}){adopted_note}",
                cluster.id,
                product.id,
                product.name,
                per_gpu,
                price,
            )
        )
        return Instance(
            id=instance_id,
            name=name,
            status="toCreate",
            cluster_id=cluster.id,
            region=cluster.name,
            product_id=product.id,
            product_name=product.name,
            gpu_num=request.gpu_num,
            image_url=plan.image,
            image_auth_id=plan.image_auth_id,
            rootfs_size=body["rootfsSize"],
            billing_mode=request.billing,
            price_per_hour=price,
            _client=self,
        )

    def _finish(
        self: Novita, created: Instance, request: CreateRequest, report: FallbackReport
    ) -> Instance:
        """Fetch the created instance, remember it in the ledger, wait if asked."""
        try:
            instance = self.instance(created.id)
        except NovitaError as error:
            # The instance exists: never lose it because a read failed; return what we know.
            logger.warning("created %s but could not read it back: %s", created.id, error.message)
            instance = created
        if instance.price_per_hour is None:
            instance.price_per_hour = created.price_per_hour
        instance.fallback_report = report
        try:
            self.ledger.record(instance)
        except Exception:  # the ledger is a convenience: never lose the instance over it
            logger.exception("could not record %s in the ledger", instance.id)
        if not request.wait:
            return instance
        options: dict[str, Any] = {"until": request.wait_until, "progress": request.progress}
        if request.timeout is not None:  # None keeps wait()'s own default limit
            options["timeout"] = request.timeout
        try:
            waited = self.wait(instance, **options)
        except NovitaError as error:
            # The instance exists even though waiting failed: say which one.
            error.created_instance = instance
            raise
        if isinstance(waited, Instance):
            waited.fallback_report = report
            if waited.price_per_hour is None:
                waited.price_per_hour = instance.price_per_hour
            return waited
        return instance

    def _capacity_error(
        self: Novita,
        request: CreateRequest,
        report: FallbackReport,
        products: Sequence[Product],
        ordered: Sequence[Cluster],
    ) -> NovitaError:
        outcomes = {a.outcome for a in report.attempts}
        if OUTCOME_ROOTFS in outcomes and outcomes <= {OUTCOME_ROOTFS, OUTCOME_NO_PRODUCT}:
            # Only the disk size stands in the way: that is the user's argument, not capacity.
            return ValidationError(
                f"rootfs_gb: {request.rootfs_gb} GB is more than any matching product allows "
                f"({'; '.join(a.region + ': ' + a.detail for a in report.attempts if a.outcome == OUTCOME_ROOTFS)})",
                field="rootfs_gb",
            )
        alternatives = find_alternatives(
            products, gpu=request.gpu, billing=request.billing, tried=ordered
        )
        lines = "\n".join(f"  {line}" for line in report.lines())
        message = (
            f"no region could serve {_describe_request(request.gpu, request.gpu_num, request.billing)}:\n"
            f"{lines}"
        )
        if alternatives:
            message += f"\nAvailable now: {_describe_alternatives(alternatives)}"
        else:
            message += "\nNothing else is available right now."
        return CapacityError(
            message,
            reason="INSUFFICIENT_RESOURCE",
            attempts=list(report.attempts),
            alternatives=alternatives,
            fallback_report=report,
        )

    # -- building the request --------------------------------------------------------------------
    def _launch_plan(self: Novita, request: CreateRequest) -> LaunchPlan:
        """Merge the template (if any) with the request; check the registry auth exists."""
        image = request.image
        ports = request.ports
        envs = request.envs
        command = request.command
        entrypoint = request.entrypoint
        default_rootfs = DEFAULT_ROOTFS_GB
        auth_id: str | None = None
        if request.template is not None:
            chosen = self._find_template(request.template)
            image = chosen.image
            if ports is None:
                ports = [(port, kind) for port, kind in chosen.flat_ports]
            envs = merge_envs([(e.key, e.value) for e in chosen.envs], envs)
            command = command if command is not None else chosen.start_command
            entrypoint = entrypoint if entrypoint is not None else chosen.entrypoint
            default_rootfs = chosen.rootfs_size or DEFAULT_ROOTFS_GB
            if chosen.image_auth:
                auth_id = self._find_registry_auth(
                    chosen.image_auth, field="template", owner=f"template {chosen.name!r}"
                ).id
        if request.image_auth_id is not None:
            auth_id = self._find_registry_auth(request.image_auth_id, field="image_auth_id").id
        if image is None:
            image = DEFAULT_IMAGE
            if ports is None:
                ports = list(DEFAULT_IMAGE_PORTS)
        problems = Problems()
        checked = parse_ports(ports or [], problems, field="ports")
        problems.raise_if_any()
        return LaunchPlan(
            image=image,
            image_auth_id=auth_id,
            ports=checked,
            envs=envs,
            command=command,
            entrypoint=entrypoint,
            rootfs_gb=request.rootfs_gb,
            default_rootfs_gb=default_rootfs,
        )

    def _create_body(
        self: Novita,
        request: CreateRequest,
        plan: LaunchPlan,
        name: str,
        cluster: Cluster,
        product: Product,
    ) -> dict[str, Any]:
        rootfs = plan.rootfs_gb if plan.rootfs_gb is not None else plan.default_rootfs_gb
        if product.max_rootfs and plan.rootfs_gb is None:
            rootfs = min(rootfs, product.max_rootfs)
        if product.min_rootfs:
            rootfs = max(rootfs, product.min_rootfs)
        body: dict[str, Any] = {
            "name": name,
            "productId": product.id,
            "gpuNum": request.gpu_num,
            "rootfsSize": rootfs,
            "clusterId": cluster.id,
            "imageUrl": plan.image,
            "kind": "gpu",
            "billingMode": request.billing,
        }
        if request.billing == "monthly":
            body["month"] = 1
        if plan.image_auth_id:
            body["imageAuthId"] = plan.image_auth_id
        if plan.ports:
            body["ports"] = format_ports(plan.ports)
        if plan.envs:
            body["envs"] = [{"key": k, "value": v} for k, v in plan.envs]
        if plan.command:
            body["command"] = plan.command
        if plan.entrypoint:
            body["entrypoint"] = plan.entrypoint
        if request.network_storages:
            body["networkStorages"] = request.network_storages
        return body

    def _fresh_listing(self: Novita, gpu_num: int) -> list[Product]:
        """ONE current products listing: the shared cache refreshed, or for several GPUs the
        API's own listing for that count (its availability means "has that many GPUs")."""
        if gpu_num == 1:
            return _patiently(lambda: self.cached_products(refresh=True))
        return _patiently(lambda: self.api.products(gpu_num=gpu_num))

    # -- names and duplicates --------------------------------------------------------------------
    def _live_named(self: Novita, name: str) -> list[dict[str, Any]]:
        """Live instances whose name is exactly ``name`` (the API's name filter is fuzzy)."""
        return [
            raw
            for raw in self.api.list_instances(name=name)
            if raw.get("name") == name and _is_live(raw)
        ]

    @contextlib.contextmanager
    def _name_in_flight(self: Novita, name: str) -> Iterator[None]:
        """Hold ``name`` while this client creates it; a concurrent create of the same name
        in this process is refused (the API check alone cannot see a create in flight)."""
        state = self._provision_state()
        with state.lock:
            if name in state.names:
                raise ValidationError(
                    f"name: an instance named {name!r} is being created right now; choose "
                    "another name or pass unique_name=True",
                    field="name",
                )
            state.names.add(name)
        try:
            yield
        finally:
            with state.lock:
                state.names.discard(name)

    def _claim_name(self: Novita, name: str, *, unique: bool) -> str:
        if unique:
            for _ in range(5):
                candidate = f"{name}-{_suffix()}"
                if not self._live_named(candidate):
                    return candidate
            raise ValidationError(
                f"name: could not find a free name starting with {name!r}", field="name"
            )
        existing = self._live_named(name)
        if existing:
            ids = ", ".join(str(raw.get("id")) for raw in existing)
            raise ValidationError(
                f"name: a live instance named {name!r} already exists ({ids}); "
                f"choose another name, e.g. {name[:56]}-2, or pass unique_name=True",
                field="name",
                hint="Names are kept exactly as given and must be unique among live instances.",
            )
        return name

    def _send_create(self: Novita, body: dict[str, Any], name: str) -> tuple[str, bool]:
        """POST the create; after an ambiguous failure, adopt the instance if it exists by
        name, else send again (bounded). Returns (instance id, adopted)."""
        sends = 0
        not_sent = 0
        while True:
            try:
                sends += 1
                return self.api.create_instance(body), False
            except (RateLimitError, CircuitBreakerError) as error:
                # Refused before processing: resending cannot duplicate.
                sends -= 1
                not_sent += 1
                if not_sent > MAX_NOT_SENT_RETRIES:
                    raise
                _wait_or_raise(error, not_sent)
            except NovitaError as error:
                if not _ambiguous(error):
                    raise
                found = self._find_after_ambiguous(name, error)
                if found is not None:
                    logger.info("create of %s was ambiguous; adopted %s", name, found)
                    return found, True
                if sends >= MAX_CREATE_SENDS:
                    raise
                time.sleep(LOOKUP_DELAYS[min(sends, len(LOOKUP_DELAYS) - 1)])

    def _find_after_ambiguous(self: Novita, name: str, cause: NovitaError) -> str | None:
        """The id of the instance an ambiguous create made, or None once lookups spread over
        the settle window (see ``_settle_window``) agree there is none. If no lookup succeeds,
        re-raise ``cause`` with a hint naming the instance: resending could duplicate it."""
        window = self._settle_window(cause)
        started = time.monotonic()
        empty_answers = 0
        attempt = 0
        while True:
            try:
                found = self._live_named(name)
            except NovitaError as error:
                logger.info("lookup of %s after ambiguous create failed: %s", name, error.message)
            else:
                if found:
                    newest = max(found, key=lambda raw: str(raw.get("createdAt") or ""))
                    return str(newest.get("id"))
                empty_answers += 1
            elapsed = time.monotonic() - started
            if empty_answers >= 2 and elapsed >= window:
                return None
            if attempt >= len(LOOKUP_DELAYS) - 1 and elapsed >= window:
                break
            # Back off, but land the last lookups at the end of the window, not far past it.
            delay = LOOKUP_DELAYS[min(attempt, len(LOOKUP_DELAYS) - 1)]
            if elapsed < window:
                delay = min(delay, max(window - elapsed, 0.05))
            attempt += 1
            time.sleep(delay)
        cause.hint = (
            f"The create may have succeeded: look for an instance named {name!r} before trying "
            "again (Novita.instances())."
        )
        raise cause

    def _settle_window(self: Novita, cause: NovitaError) -> float:
        """How long an ambiguous create may still land after it failed. A 5xx answer means the
        server finished with it; a dropped connection may hide a request still running; a
        read timeout means the server was still working when we gave up waiting, so give it
        twice the read timeout (bounded) before concluding it never happened."""
        if isinstance(cause, TimeoutError):
            timeout = getattr(self.config, "timeout", None)
            read = timeout[1] if isinstance(timeout, tuple) else timeout
            read = float(read) if isinstance(read, int | float) else SETTLE_AFTER_DROP
            return min(max(2.0 * read, SETTLE_AFTER_DROP), SETTLE_AFTER_TIMEOUT_MAX)
        if isinstance(cause, NetworkError):
            return SETTLE_AFTER_DROP
        return SETTLE_AFTER_ERROR

    # -- budget ----------------------------------------------------------------------------------
    def _provision_state(self: Novita) -> _ProvisionState:
        """This client's shared provisioning state (created once, on first use)."""
        with _locks_guard:
            state = self.__dict__.get("_provision_shared_state")
            if state is None:
                state = _ProvisionState()
                self.__dict__["_provision_shared_state"] = state
            return state

    def current_spend_per_hour(self: Novita) -> float:
        """USD per hour of this account's live instances that are billed or about to be."""
        return self._spend_excluding(set())

    def _spend_excluding(self: Novita, names: set[str]) -> float:
        total = 0.0
        for raw in self.api.list_instances():
            if raw.get("name") in names or not _counts_for_budget(raw):
                continue
            price = self.to_instance(raw).price_per_hour
            total += price or 0.0
        return total

    def _budget_reservation(self: Novita, name: str, price: float) -> _Reservation:
        return _Reservation(self, name, price)

    # -- templates -------------------------------------------------------------------------------
    def _find_template(self: Novita, key: str) -> Template:
        for refresh in (False, True):
            templates = self.cached_templates(refresh=refresh)
            by_id = [t for t in templates if t.id == key]
            if by_id:
                return by_id[0]
            by_name = [t for t in templates if t.name == key]
            if len(by_name) > 1:
                ids = ", ".join(t.id for t in by_name)
                raise ValidationError(
                    f"template: the name {key!r} is used by several templates ({ids}); pass the id",
                    field="template",
                )
            if by_name:
                return by_name[0]
        try:
            # Not listed (e.g. another user's public template): ask for it by id.
            return self.api.template(key)
        except (NotFoundError, ValidationError):
            pass
        known = ", ".join(f"{t.name} ({t.id})" for t in templates[:10])
        raise NotFoundError(
            f"template: no template with id or name {key!r}. Known: {known or 'none'}",
            hint="List them with Novita.templates(); create one with Novita.create_template().",
        )

    def create_template(
        self: Novita,
        name: str,
        image: str,
        *,
        ports: Any = None,
        envs: Any = None,
        rootfs_gb: int = DEFAULT_ROOTFS_GB,
        start_command: str | None = None,
        entrypoint: str | None = None,
        image_auth_id: str | None = None,
        readme: str | None = None,
    ) -> Template:
        """Create a private template. ``image_auth_id`` (a registry auth id or name) is stored
        as the template's imageAuth: only the id, never a password."""
        problems = Problems()
        check_text(name, problems, "name", min_len=1, max_len=255)
        if name is None:
            problems.add("name", "is required")
        if image is None:
            problems.add("image", "is required")
        checked_image = check_image(image, problems)
        checked_ports = parse_ports(ports, problems)
        checked_envs = parse_envs(envs, problems)
        checked_rootfs = check_rootfs(rootfs_gb, problems)
        check_text(start_command, problems, "start_command", max_len=MAX_COMMAND)
        check_text(entrypoint, problems, "entrypoint", max_len=MAX_COMMAND)
        check_text(readme, problems, "readme", max_len=102400)
        problems.raise_if_any()
        if any(t.name == name for t in self.cached_templates(refresh=True)):
            raise ValidationError(
                f"name: a template named {name!r} already exists; choose another name",
                field="name",
            )
        auth_id = (
            self._find_registry_auth(image_auth_id, field="image_auth_id").id
            if image_auth_id
            else ""
        )
        body: dict[str, Any] = {
            "name": name,
            "readme": readme or "",
            "type": "instance",
            "channel": "private",
            "image": checked_image,
            "imageAuth": auth_id,
            "startCommand": start_command or "",
            "entrypoint": entrypoint or "",
            "rootfsSize": checked_rootfs,
            "ports": group_ports(checked_ports),
            "envs": [{"key": k, "value": v} for k, v in checked_envs],
        }
        template_id = self.api.create_template(body)
        self.cached_templates(refresh=True)
        return self.api.template(template_id)

    def delete_template(self: Novita, id_or_name: str) -> None:
        """Delete a private template by id or exact name."""
        check_text_field(id_or_name, "id_or_name", min_len=1, max_len=255)
        found = self._find_template(id_or_name)
        self.api.delete_template(found.id)
        self.cached_templates(refresh=True)

    # -- registry auths --------------------------------------------------------------------------
    def _find_registry_auth(
        self: Novita, key: str, *, field: str, owner: str | None = None
    ) -> RegistryAuth:
        auths = self.api.registry_auths()
        for auth in auths:
            if auth.id == key:
                return auth
        named = [a for a in auths if a.name == key]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise ValidationError(
                f"{field}: the registry auth name {key!r} is used {len(named)} times; pass the id",
                field=field,
            )
        who = f"{owner} uses registry auth {key!r}" if owner else f"registry auth {key!r}"
        known = ", ".join(f"{a.name} ({a.id})" for a in auths) or "none"
        raise NotFoundError(
            f"{field}: {who}, which does not exist. Known registry auths: {known}",
            field=field,
            hint="Create it with Novita.create_registry_auth(name, username, password).",
        )

    def registry_auths(self: Novita) -> pd.DataFrame:
        """Registry credentials as a table: id, name, username (passwords are never shown)."""
        rows = [
            {"id": a.id, "name": a.name, "username": a.username} for a in self.api.registry_auths()
        ]
        return pd.DataFrame(rows, columns=["id", "name", "username"])

    def create_registry_auth(self: Novita, name: str, username: str, password: str) -> RegistryAuth:
        """Store credentials for a private registry; returns it without the password."""
        problems = Problems()
        for field_name, value, limit in (("name", name, 255), ("username", username, 511)):
            if value is None:
                problems.add(field_name, "is required")
            else:
                check_text(value, problems, field_name, min_len=1, max_len=limit)
        if not isinstance(password, str) or not 1 <= len(password) <= 1024:
            # Never echo the value: only its shape.
            problems.add("password", "must be a string of 1–1024 characters")
        problems.raise_if_any()
        if any(a.name == name for a in self.api.registry_auths()):
            raise ValidationError(
                f"name: a registry auth named {name!r} already exists; choose another name",
                field="name",
            )
        self.api.save_registry_auth(name, username, password)
        for auth in self.api.registry_auths():
            if auth.name == name:
                return replace(auth, password="")
        raise NotFoundError(f"registry auth {name!r} was saved but is not listed")

    def delete_registry_auth(self: Novita, id_or_name: str) -> None:
        """Delete registry credentials by id or exact name."""
        check_text_field(id_or_name, "id_or_name", min_len=1, max_len=255)
        found = self._find_registry_auth(id_or_name, field="id_or_name")
        self.api.delete_registry_auth(found.id)

    # -- batches ---------------------------------------------------------------------------------
    def create_many(
        self: Novita,
        specs: int | Sequence[Mapping[str, Any]],
        *,
        concurrency: int = 4,
        name_prefix: str = "batch",
        gpu: str | None = None,
        all_or_nothing: bool = False,
        progress: Callable[[int, int, dict[str, Any]], Any] | None = None,
        **common: Any,
    ) -> pd.DataFrame:
        """Create several instances concurrently; returns one row per spec (name, instance_id,
        region, product, price_per_hour, status, error).

        ``specs`` is a count (names ``<name_prefix>-1`` …) or a list of create() kwargs dicts
        (``common`` fills what a spec leaves out). The stock listing is read once for the
        batch; the budget is checked per create under one lock. ``progress(done, total, row)``
        is called after each. With ``all_or_nothing=True`` a single failure deletes every
        instance the batch created (their rows say so).
        """
        requests_ = self._batch_requests(specs, name_prefix=name_prefix, gpu=gpu, common=common)
        problems = Problems()
        workers = check_int_range(concurrency, 1, 64, problems, "concurrency")
        if progress is not None and not callable(progress):
            problems.add("progress", "must be callable")
        if not isinstance(all_or_nothing, bool):
            problems.add("all_or_nothing", f"must be True or False, got {all_or_nothing!r}")
        problems.raise_if_any()
        total = len(requests_)
        rows: list[dict[str, Any]] = [_batch_row(r.name) for r in requests_]
        if not requests_:
            return _batch_frame(rows)
        # Never more threads than the client's connection pool serves, nor than creates.
        pool_size = min(workers or 1, self.max_concurrency, total)
        listings: dict[int, list[Product]] = {}
        listings_lock = threading.Lock()

        def listing_for(gpu_num: int) -> list[Product]:
            # One listing per GPU count for the whole batch; stock raced away is handled by
            # falling back to the next candidate, as in create().
            with listings_lock:
                if gpu_num not in listings:
                    listings[gpu_num] = self._fresh_listing(gpu_num)
                return listings[gpu_num]

        failed = threading.Event()
        done = 0
        done_lock = threading.Lock()

        def run(index: int) -> None:
            nonlocal done
            request = requests_[index]
            row = rows[index]
            if all_or_nothing and failed.is_set():
                row.update(
                    status="skipped", error="not attempted: another create of the batch failed"
                )
            else:
                try:
                    instance = self._provision(request, listing=listing_for(request.gpu_num))
                except NovitaError as error:
                    failed.set()
                    row.update(status="failed", error=_short_error(error))
                    created = getattr(error, "created_instance", None)
                    if isinstance(created, Instance):  # made, then its wait failed
                        row.update(_row_of(created), status="failed")
                except Exception as error:  # a bug must not hide the created siblings
                    failed.set()
                    row.update(status="failed", error=f"{type(error).__name__}: {error}")
                else:
                    row.update(_row_of(instance))
            with done_lock:
                done += 1
                finished = done
            if progress is not None:
                try:
                    progress(finished, total, dict(row))
                except Exception:  # the user's callback must not abort the batch
                    logger.exception("create_many progress callback failed")

        pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="novita-create")
        try:
            futures = [pool.submit(run, i) for i in range(total)]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            # Ctrl-C: creates not started are dropped; those in flight finish (and are in the
            # ledger) so nothing is left half-known.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if all_or_nothing and failed.is_set():
            self._roll_back(rows)
        return _batch_frame(rows)

    def _batch_requests(
        self: Novita,
        specs: int | Sequence[Mapping[str, Any]],
        *,
        name_prefix: str,
        gpu: str | None,
        common: Mapping[str, Any],
    ) -> list[CreateRequest]:
        """Validate every spec before any call; names must be distinct within the batch."""
        if isinstance(specs, bool) or not isinstance(specs, int | list | tuple):
            raise ValidationError(
                f"specs: must be a count or a list of dicts of create() arguments, got {specs!r}",
                field="specs",
            )
        if isinstance(specs, int):
            if not 1 <= specs <= 500:
                raise ValidationError(
                    f"specs: count must be between 1 and 500, got {specs}", field="specs"
                )
            specs = [{"name": f"{name_prefix}-{n}"} for n in range(1, specs + 1)]
        requests_: list[CreateRequest] = []
        for index, spec in enumerate(specs):
            if not isinstance(spec, Mapping):
                raise ValidationError(
                    f"specs[{index}]: must be a dict, got {spec!r}", field=f"specs[{index}]"
                )
            merged = {"gpu": gpu, **common, **spec}
            merged.setdefault("name", f"{name_prefix}-{index + 1}")
            # ``progress`` is the batch's; several live wait displays at once would be noise.
            merged["progress"] = "silent"
            try:
                requests_.append(prepare_request(**merged))
            except TypeError as error:
                raise ValidationError(f"specs[{index}]: {error}", field=f"specs[{index}]") from None
            except ValidationError as error:
                raise ValidationError(
                    f"specs[{index}] ({merged.get('name')!r}): {error.message}",
                    field=error.field,
                    problems=error.problems,
                ) from None
        names = [r.name for r in requests_ if not r.unique_name]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValidationError(
                f"specs: names must be distinct within a batch; repeated: {', '.join(duplicates)}",
                field="name",
            )
        return requests_

    def _roll_back(self: Novita, rows: list[dict[str, Any]]) -> None:
        """Delete every instance a failed all-or-nothing batch created (including one whose
        wait failed); say so in each row."""
        for row in rows:
            instance_id = row.get("instance_id")
            if not instance_id:
                continue
            own_failure = row.get("error") if row.get("status") == "failed" else None
            error = _delete_with_retries(self, instance_id)
            if error is None:
                reason = own_failure or "another create of the batch failed"
                row.update(status="deleted", error=f"rolled back: {reason}")
                try:
                    self.ledger.forget(instance_id)
                except Exception:  # the ledger is a convenience; the instance is gone anyway
                    logger.exception("could not forget %s in the ledger", instance_id)
            else:
                row.update(
                    status="rollback failed", error=f"delete it by hand: {_short_error(error)}"
                )


@dataclass
class _ProvisionState:
    """Per client: one lock, the prices of creates in flight (budget) and the names being
    created right now (so two threads cannot both pass the uniqueness check)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    prices: dict[str, float] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)


class _Reservation:
    """Holds a create's price against the budget while the create is in flight."""

    def __init__(self, client: Novita, name: str, price: float) -> None:
        self.client = client
        self.name = name
        self.price = price
        self.active = False

    def __enter__(self) -> _Reservation:
        budget = getattr(self.client.config, "budget_per_hour", None)
        if budget is None:
            return self
        state = self.client._provision_state()
        in_flight = state.prices
        with state.lock:
            # Creates in flight are counted by their reserved price, not their listing, so a
            # batch can never overshoot and nothing is counted twice.
            spend = _patiently(lambda: self.client._spend_excluding(set(in_flight)))
            spend += sum(in_flight.values())
            if spend + self.price > budget + 1e-9:
                raise BudgetExceededError(
                    f"creating {self.name!r} at ${self.price:.2f}/h would raise the hourly spend "
                    f"from ${spend:.2f}/h to ${spend + self.price:.2f}/h, over the budget of "
                    f"${budget:.2f}/h",
                    current_per_hour=spend,
                    price_per_hour=self.price,
                    budget_per_hour=budget,
                    hint="Stop or delete an instance, choose a cheaper GPU (max_price=) or raise "
                    "budget_per_hour.",
                )
            in_flight[self.name] = self.price
            self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        state = self.client._provision_state()
        with state.lock:
            state.prices.pop(self.name, None)


def _patiently(call: Callable[[], Any]) -> Any:
    """Run a read, waiting out 429 storms, an open breaker and transient failures a bounded
    number of times (the transport already retried it; reads are safe to repeat)."""
    for attempt in range(1, MAX_NOT_SENT_RETRIES + 1):
        try:
            return call()
        except NovitaError as error:
            transient = isinstance(error, RateLimitError | CircuitBreakerError) or _ambiguous(error)
            if not transient or attempt == MAX_NOT_SENT_RETRIES:
                raise
            _wait_or_raise(error, attempt)
    raise AssertionError("unreachable")


def _not_sent_delay(error: NovitaError, attempt: int) -> float:
    """How long to wait before sending again. What the server (Retry-After) or the breaker
    (retry_at) asked for is never shortened; only our own backoff is capped."""
    if isinstance(error, RateLimitError) and error.retry_after:
        return float(error.retry_after)
    if isinstance(error, CircuitBreakerError) and error.retry_at:
        return max(0.05, float(error.retry_at) - time.time())
    return min(0.25 * 2 ** (attempt - 1), MAX_NOT_SENT_WAIT)


def _wait_or_raise(error: NovitaError, attempt: int) -> None:
    """Sleep before a resend, or re-raise when the wait asked for is longer than a create
    should block (the error says when to try again)."""
    delay = _not_sent_delay(error, attempt)
    if delay > MAX_NOT_SENT_WAIT:
        raise error
    time.sleep(delay)


def _delete_with_retries(client: Novita, instance_id: str) -> NovitaError | None:
    last: NovitaError | None = None
    for attempt in range(DELETE_ATTEMPTS):
        try:
            client.api.delete_instance(instance_id)
            return None
        except NotFoundError:
            return None
        except NovitaError as error:
            if "NOT_FOUND" in (error.reason or ""):
                return None
            last = error
            time.sleep(_not_sent_delay(error, attempt + 1))
    return last


def _short_error(error: NovitaError) -> str:
    kind = type(error).__name__
    reason = f" {error.reason}" if error.reason else ""
    return f"{kind}{reason}: {error.message}"


def _row_of(instance: Instance) -> dict[str, Any]:
    return {
        "name": instance.name,
        "instance_id": instance.id,
        "region": instance.region,
        "product": instance.product_name,
        "price_per_hour": instance.price_per_hour,
        "status": instance.status,
    }


def _batch_row(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "instance_id": None,
        "region": None,
        "product": None,
        "price_per_hour": None,
        "status": "pending",
        "error": None,
    }


BATCH_COLUMNS = ["name", "instance_id", "region", "product", "price_per_hour", "status", "error"]


def _batch_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=BATCH_COLUMNS)
