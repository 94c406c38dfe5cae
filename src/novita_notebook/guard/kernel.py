"""In-kernel enforcement: a GuardBackend over a Novita client (reusing the watcher's listing,
recreating through the client's fallback) and one call per watcher tick with the same claims.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .backend import METRICS_STEP, HttpGuardBackend, replace_instance
from .enforcer import Enforcer, TickResult, default_actor
from .host import GuardHost
from .policy import DEFAULT_GRACE
from .store import GuardStore

__all__ = ["ClientGuardBackend", "KernelGuard"]

log = logging.getLogger(__name__)


class ClientGuardBackend:
    """GuardBackend over a ``Novita`` client: lifecycle calls through ``client.api``, the
    listing from ``listing`` (the watcher's current one, so a tick costs no extra list call)
    or one list call, metrics over HTTP with the key from ``api_key_loader``, ``recreate``
    through ``client.create`` (the normal regional fallback) under the same name, and events
    to ``on_event`` (the notebook's display/panel) and the client's webhook settings."""

    def __init__(
        self,
        client: GuardHost,
        api_key_loader: Callable[[], str],
        *,
        listing: Callable[[], list[dict[str, Any]]] | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        metrics_step: int = METRICS_STEP,
    ) -> None:
        self.client = client
        self._listing = listing
        config = client.config
        self._http = HttpGuardBackend(
            config.api_url,
            api_key_loader,
            webhook_url=getattr(config, "webhook_url", None),
            webhook_secret=getattr(config, "webhook_secret", None),
            on_event=on_event,
            metrics_step=metrics_step,
        )

    @property
    def events(self) -> Any:
        return self._http.events

    def __repr__(self) -> str:
        return f"<ClientGuardBackend {self.client.config.api_url}>"

    def list_instances(self) -> list[dict[str, Any]]:
        if self._listing is not None:
            return list(self._listing())
        return self.client.api.list_instances()

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        return self.client.api.get_instance(instance_id)

    def stop(self, instance_id: str) -> None:
        self.client.api.stop_instance(instance_id)

    def delete(self, instance_id: str) -> None:
        self.client.api.delete_instance(instance_id)

    def migrate(self, instance_id: str) -> None:
        migrate = getattr(self.client.api, "migrate_instance", None)
        if migrate is not None:
            migrate(instance_id)
            return
        self.client.api.transport.request(
            "POST", "/gpu/instance/migrate", json={"instanceId": instance_id}, idempotent=False
        )

    def metrics(self, instance_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        return self._http.metrics(instance_id, start, end)

    def gpu_utilisation(self, instance_id: str) -> Any:
        """The GPUs read over SSH (nvidia-smi), for when the metrics cannot be used."""
        return self.client.remote.gpu_utilisation(instance_id)

    def busy(self, instance_id: str) -> str | None:
        return self.client.remote.busy(instance_id)

    def recreate(self, instance_id: str) -> str:
        """A fresh instance like the reclaimed one, made before the old one is deleted
        (``replace_instance``), and remembered in the client's ledger."""
        new_id = replace_instance(self.client.api, instance_id)
        try:
            self.client.ledger.record(self.client.api.get_instance(new_id))
        except Exception as error:  # noqa: BLE001 - the ledger is a convenience
            log.warning("recreated %s as %s but could not record it: %s", instance_id, new_id,
                        error)  # fmt: skip
        return new_id

    def notify(self, event_type: str, data: Mapping[str, Any]) -> None:
        self._http.notify(event_type, data)

    def close(self) -> None:
        self._http.close()


class KernelGuard:
    """The watcher's side of the guard: ``tick(listing)`` enforces the stored rules of the
    client's API URL with the same store and claims as the guard process."""

    def __init__(
        self,
        backend: Any,
        api_url: str,
        *,
        grace: timedelta = DEFAULT_GRACE,
        actor: str | None = None,
    ) -> None:
        self.store = GuardStore(api_url=api_url)
        self.enforcer = Enforcer(backend, self.store, actor=actor or default_actor(), grace=grace)

    def tick(self, now: datetime | None = None) -> TickResult | None:
        """One enforcement pass; None when nothing is guarded. Errors are logged, not
        raised: the watcher must keep watching."""
        now = now or datetime.now(UTC)
        try:
            records = self.store.records()
            if not records and not self.store.intents():
                return None
            return self.enforcer.execute(self.enforcer.plan(now, records))
        except Exception as exc:  # the watcher thread must survive any guard failure
            log.warning("in-kernel guard tick failed: %s", exc)
            return None
