"""HttpGuardBackend: the GuardBackend over HTTP. Instances through NovitaAPI and its Transport,
GPU metrics from ``/openapi/v1/metrics/gpu/instance`` with requests, events as signed webhooks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from ..config import API_PREFIX
from ..errors import APIError, NetworkError, NotFoundError, ValidationError

__all__ = [
    "HttpGuardBackend",
    "METRICS_PATH",
    "metrics_step",
    "recreate_body",
    "replace_instance",
]

log = logging.getLogger(__name__)

METRICS_PATH = "/openapi/v1/metrics/gpu/instance"
#: Seconds between metric points asked for (the API aggregates to it), at most.
METRICS_STEP = 60


def metrics_step(interval: float | None) -> int:
    """The metrics resolution for a guard ticking every ``interval`` seconds: a point per
    minute at the default 30-s interval, finer for a guard that looks more often."""
    if interval is None:
        return METRICS_STEP
    return int(max(1, min(METRICS_STEP, round(2 * interval))))


#: The most points one metrics call asks for.
MAX_POINTS = 1000
#: Tries of one metrics call (transient failures only).
METRICS_ATTEMPTS = 4
#: Fields of an instance that a recreated twin copies.
_RESERVED_PORTS = {2222, 2223, 2224}


def _base_url(api_url: str) -> str:
    url = api_url.rstrip("/")
    return url[: -len(API_PREFIX)] if url.endswith(API_PREFIX) else url


def _network_volumes(detail: Mapping[str, Any]) -> list[dict[str, str]]:
    """``networkStorages`` entries for the network volumes ``detail`` mounts."""
    out = []
    for mount in detail.get("volumeMounts") or ():
        if isinstance(mount, Mapping) and mount.get("type") == "network" and mount.get("id"):
            entry = {"Id": str(mount["id"])}
            if mount.get("mountPath"):
                entry["mountPoint"] = str(mount["mountPath"])
            out.append(entry)
    return out


def recreate_body(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A create body for a fresh instance like ``detail`` (a get-instance object): same name,
    product, image and network volumes, built by the one body builder (provisioning's
    ``instance_body``; a missing disk size is its default, as for any create). The cluster is
    left to the API (the old one is reclaiming capacity) unless volumes pin it: a volume mounts
    only in its own cluster."""
    from ..provisioning.request import instance_body

    ports: list[tuple[int, str]] = []
    for item in detail.get("portMappings") or ():
        if isinstance(item, Mapping):
            try:
                port = int(item.get("port"))
            except (TypeError, ValueError):
                continue
            kind = item.get("type") if item.get("type") in ("tcp", "http") else "tcp"
            if port not in _RESERVED_PORTS:
                ports.append((port, str(kind)))
    envs = [
        (str(e.get("key")), str(e.get("value", "")))
        for e in detail.get("envs") or ()
        if isinstance(e, Mapping) and e.get("key")
    ]
    volumes = _network_volumes(detail)
    rootfs = detail.get("rootfsSize")
    body = instance_body(
        name=str(detail.get("name") or ""),
        product_id=str(detail.get("productId") or ""),
        image=str(detail.get("imageUrl") or ""),
        billing=str(detail.get("billingMode") or "spot"),
        gpu_num=int(float(detail.get("gpuNum") or 1)),
        rootfs_gb=int(float(rootfs)) if rootfs else None,
        cluster_id=str(detail["clusterId"]) if volumes and detail.get("clusterId") else None,
        image_auth_id=detail.get("imageAuthId"),
        ports=ports,
        envs=envs,
        command=detail.get("command"),
        entrypoint=detail.get("entrypoint"),
        network_storages=volumes,
    )
    if not body["productId"] or not body["imageUrl"]:
        raise ValidationError("the instance to recreate has no product or image", field="instance")
    return body


def replace_instance(api: Any, instance_id: str) -> str:
    """Spot ``recreate``: make the replacement first (same name, product, image, volumes),
    then delete the reclaimed instance; never the other way round, so a create that fails
    leaves the old instance (and its disk) in place. Returns the replacement's id."""
    detail = api.get_instance(instance_id)
    new_id = str(api.create_instance(recreate_body(detail)))
    with contextlib.suppress(NotFoundError):  # already reclaimed
        api.delete_instance(instance_id)
    return new_id


class HttpGuardBackend:
    """GuardBackend for one API URL. ``api_key_loader`` is called once, when first needed;
    the key then lives only in the HTTP sessions' headers (never in repr, logs or files).

    ``webhook_url``/``webhook_secret``: events are POSTed signed (as the Notifier signs);
    ``on_event``: also called with each event (the kernel shows it). The last events are
    kept in ``events``. ``transport_options`` go to the Transport (retry pacing);
    ``metrics_step`` is the seconds between metric points asked for.
    """

    def __init__(
        self,
        api_url: str,
        api_key_loader: Callable[[], str],
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        transport_options: Mapping[str, Any] | None = None,
        metrics_step: int = METRICS_STEP,
    ) -> None:
        if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
            raise ValidationError("api_url must be an http(s) URL", field="api_url")
        if not callable(api_key_loader):
            raise ValidationError("api_key_loader must be callable", field="api_key_loader")
        self.base_url = _base_url(api_url)
        self.api_url = self.base_url + API_PREFIX
        self._load_key = api_key_loader
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._on_event = on_event
        self.timeout = timeout
        self._transport_options = dict(transport_options or {})
        self.metrics_step = metrics_step
        self.events: deque[dict[str, Any]] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._api: Any = None
        self._session: requests.Session | None = None
        self._webhook: Any = None
        self._remote: Any = None

    def __repr__(self) -> str:
        return f"<HttpGuardBackend {self.base_url}>"

    # -- connections ---------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        """The NovitaAPI used for instance calls (built on first use)."""
        with self._lock:
            if self._api is None:
                from ..api import NovitaAPI
                from ..http import Transport

                key = self._load_key()
                self._api = NovitaAPI(
                    Transport(self.api_url, key, timeout=self.timeout, **self._transport_options)
                )
                session = requests.Session()
                session.trust_env = False
                session.headers.update(
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                )
                self._session = session
            return self._api

    @property
    def remote(self) -> Any:
        """SSH to the instances (nvidia-smi for the idle rule), built on first use."""
        if self._remote is None:
            from ..models import Instance
            from ..remote.service import Remote

            self._remote = Remote(
                self.api_url, lambda i: Instance.from_api(self.api.get_instance(i))
            )
        return self._remote

    def gpu_utilisation(self, instance_id: str) -> Any:
        return self.remote.gpu_utilisation(instance_id)

    def busy(self, instance_id: str) -> str | None:
        return self.remote.busy(instance_id)

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()
        if self._webhook is not None:
            self._webhook.close()
        if self._api is not None:
            self._api.transport.close()
        if self._session is not None:
            self._session.close()

    # -- GuardBackend --------------------------------------------------------------------------
    def list_instances(self) -> list[dict[str, Any]]:
        from .spot import with_spot_details

        return with_spot_details(self.api, self.api.list_instances())

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        return self.api.get_instance(instance_id)

    def stop(self, instance_id: str) -> None:
        self.api.stop_instance(instance_id)

    def delete(self, instance_id: str) -> None:
        self.api.delete_instance(instance_id)

    def migrate(self, instance_id: str) -> None:
        self.api.transport.request(
            "POST", "/gpu/instance/migrate", json={"instanceId": instance_id}, idempotent=False
        )

    def recreate(self, instance_id: str) -> str:
        """A fresh instance like ``instance_id``: the replacement first, then the old one is
        deleted (see ``replace_instance``)."""
        return replace_instance(self.api, instance_id)

    def metrics(self, instance_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        """GET the instance's metrics between ``start`` and ``end`` (unix seconds); a
        transient failure (dropped connection, 5xx, 429) is retried: a metrics call that
        fails once must not hold an idle stop back by a whole interval."""
        pause = float(self._transport_options.get("retry_backoff", 0.5))
        for attempt in range(METRICS_ATTEMPTS):
            try:
                return self._metrics_once(instance_id, start, end)
            except (NetworkError, APIError) as error:
                status = error.status or 0
                transient = isinstance(error, NetworkError) or status == 429 or status >= 500
                if not transient or attempt == METRICS_ATTEMPTS - 1:
                    raise
                time.sleep(pause * 2**attempt)
        raise AssertionError("unreachable")

    def _metrics_once(self, instance_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        self.api  # noqa: B018 - builds the session with the key
        assert self._session is not None
        params = {
            "instanceId": instance_id,
            "startTime": int(start.timestamp()),
            "endTime": int(end.timestamp()),
            # never more than MAX_POINTS points, whatever the window
            "interval": max(
                self.metrics_step, math.ceil((end - start).total_seconds() / MAX_POINTS)
            ),
        }
        call = {"method": "GET", "path": METRICS_PATH}
        try:
            response = self._session.get(
                self.base_url + METRICS_PATH, params=params, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise NetworkError(f"metrics call failed: {type(exc).__name__}", **call) from None
        if response.status_code >= 400:
            raise _metrics_error(response, call)
        try:
            return response.json()
        except ValueError:
            raise APIError("the metrics response is not JSON", **call) from None

    def notify(self, event_type: str, data: Mapping[str, Any]) -> None:
        payload = {
            "id": uuid.uuid4().hex,
            "event": event_type,
            "timestamp": datetime.now(UTC).isoformat(),
            **dict(data),
        }
        self.events.append(payload)
        log.info("guard event %s %s", event_type, data.get("instanceId"))
        if self._on_event is not None:
            self._on_event(event_type, payload)
        if self._webhook_url and self._webhook_secret:
            self._notifier().send_event(
                event_type,
                instance_id=data.get("instanceId"),
                name=data.get("name"),
                data={k: v for k, v in payload.items() if k not in ("instanceId", "name")},
            )

    def _notifier(self) -> Any:
        """The webhooks' Notifier (signed, retried like status events), built once."""
        with self._lock:
            if self._webhook is None:
                from ..webhooks import Notifier

                self._webhook = Notifier(self._webhook_url, self._webhook_secret, max_attempts=2)
            return self._webhook


def _metrics_error(response: requests.Response, call: dict[str, str]) -> Exception:
    """The transport's own reading of an error answer (status and reason together): a 5xx such
    as ``WALLET_NOT_FOUND`` stays a server error, so an instance is never taken as gone from
    the metrics call."""
    from ..http_answers import error_from_response

    return error_from_response(response, call["method"], call["path"])
