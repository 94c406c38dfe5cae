"""Single instances for one client: the one resolver (an ``Instance``, an id or an exact name),
and the lifecycle on what it finds (start, stop, restart, delete, edit), idempotent and saying
whether a request was sent at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .api import NovitaAPI
from .catalog import Catalog
from .errors import NotFoundError, NovitaError, ValidationError
from .ledger import Ledger
from .models import GONE_STATUSES, Instance, InstanceActions
from .validation import invalid, port_dicts

__all__ = ["Instances", "Change", "InstanceRef", "instance_ref", "NOT_FOUND_HINT"]

logger = logging.getLogger("novita_notebook")

#: What every method taking one instance accepts.
InstanceRef = Instance | str
INSTANCE_RULE = "must be an Instance, an id or a name"
NOT_FOUND_HINT = "client.instances() lists them (names are matched exactly)."

# Statuses where start() and stop() have nothing left to do.
_STARTED = frozenset({"running", "toStart", "starting", "restarting", "toRestart"})
_STOPPED = frozenset({"exited", "toStop", "stopping"})


def instance_ref(value: Any, field: str = "instance") -> InstanceRef:
    """An Instance with an id, or a non-empty id or name (stripped): the one check of every
    argument naming an instance."""
    if isinstance(value, Instance):
        if not value.id:
            raise invalid(field, "this Instance has no id")
        return value
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, f"{INSTANCE_RULE}, got {value!r}")
    return value.strip()


def _removed(instance: Instance) -> Instance:
    """A copy of ``instance`` marked ``removed`` (what deleting leaves)."""
    return dataclasses.replace(instance, status="removed")


@dataclass(frozen=True)
class Change:
    """What a lifecycle call did: the instance afterwards, and whether a request was sent
    (False: it was already in that state, or already gone)."""

    instance: Instance
    sent: bool


class Instances:
    """The instances of one client. ``owner`` is what handles bind to (the client);
    ``on_deleted(ids, reason)`` hears of every delete (the guard drops their rules);
    ``before_send(instance, action)`` is told before a stop or a delete is sent, and
    ``before_billing()`` before a start or a restart (a guard must answer for what bills)."""

    def __init__(
        self,
        *,
        api: NovitaAPI,
        catalog: Catalog,
        ledger: Ledger,
        owner: InstanceActions | None,
        on_deleted: Callable[[list[str], str], Any] | None = None,
    ) -> None:
        self.api = api
        self.catalog = catalog
        self.ledger = ledger
        self.owner = owner
        self.on_deleted = on_deleted
        self.before_send: Callable[[Instance, str], Any] | None = None
        self.before_billing: Callable[[], Any] | None = None
        self._deleted: dict[str, Instance] = {}  # id and name -> what this client deleted

    def to_instance(self, raw: dict[str, Any]) -> Instance:
        """Parse a raw API instance, fill ``price_per_hour`` from the catalog and bind it."""
        if not isinstance(raw, dict):
            raise ValidationError("raw must be the API's instance dict", field="raw")
        instance = Instance.from_api(raw, client=self.owner)
        try:
            instance.price_per_hour = self.catalog.price_of(instance)
        except NovitaError as exc:
            # The price is decoration: an unreachable catalog must not hide the instance.
            logger.debug("no price for %s: %s", instance.id, type(exc).__name__)
        return instance

    # -- the resolver ------------------------------------------------------------------------
    def resolve(self, ref: Any, field: str = "instance") -> Instance:
        """The instance now: an Instance's id, an exact id, else the one live instance with
        this exact name (NotFoundError, or ValidationError when several share it)."""
        checked = instance_ref(ref, field)
        key = checked.id if isinstance(checked, Instance) else checked
        try:
            return self.to_instance(self.api.get_instance(key))
        except NotFoundError:
            if isinstance(checked, Instance):
                raise
        except ValidationError as exc:
            if exc.status is None:  # our own argument check, not the API's answer
                raise
        matches = [
            raw
            for raw in self.api.list_instances(name=key)
            if raw.get("name") == key and raw.get("status") not in GONE_STATUSES
        ]
        if not matches:
            raise NotFoundError(f"no instance has the id or name {key!r}", hint=NOT_FOUND_HINT)
        if len(matches) > 1:
            ids = ", ".join(str(raw.get("id")) for raw in matches)
            raise invalid(
                field, f"{len(matches)} live instances are named {key!r} (ids: {ids}); pass an id"
            )
        return self.to_instance(self.api.get_instance(str(matches[0].get("id"))))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, ref: Any) -> Change:
        """Start a stopped instance; nothing is sent when it is already running or starting."""
        return self._change("start", ref, _STARTED, self.api.start_instance)

    def stop(self, ref: Any) -> Change:
        """Stop an instance; nothing is sent when it is already stopped or stopping."""
        return self._change("stop", ref, _STOPPED, self.api.stop_instance)

    def _change(self, verb: str, ref: Any, done: frozenset[str], send: Any) -> Change:
        target = self.resolve(ref)
        if verb == "start" and self.before_billing is not None:
            self.before_billing()
        if target.status in done:
            logger.info("%s (%s) is already %s; nothing to %s", target.name, target.id,
                        target.status, verb)  # fmt: skip
            return Change(target, False)
        if verb == "stop" and self.before_send is not None:
            self.before_send(target, verb)
        send(target.id)
        return Change(self.resolve(target.id), True)

    def restart(self, ref: Any) -> Change:
        target = self.resolve(ref)
        if self.before_billing is not None:
            self.before_billing()
        self.api.restart_instance(target.id)
        return Change(self.resolve(target.id), True)

    def delete(self, ref: Any) -> Change:
        """Delete an instance. Idempotent: what is already gone (an id, or a name the ledger or
        this client knows) comes back ``removed`` with nothing sent; a name nothing ever knew
        is a NotFoundError."""
        checked = instance_ref(ref)
        try:
            target = self.resolve(checked)
        except NotFoundError:
            gone = self._already_gone(checked.id if isinstance(checked, Instance) else checked)
            if gone is None:
                raise
            logger.info("%s (%s) is already deleted; nothing to do", gone.name, gone.id)
            return Change(gone, False)
        if target.status in GONE_STATUSES:
            logger.info("%s (%s) is already deleted; nothing to do", target.name, target.id)
            self._forget_deleted(target)
            return Change(target, False)
        if self.before_send is not None:
            self.before_send(target, "delete")
        with contextlib.suppress(NotFoundError):  # gone between the lookup and the delete
            self.api.delete_instance(target.id)
        self._forget_deleted(target)
        try:
            return Change(self.resolve(target.id), True)
        except NotFoundError:
            return Change(_removed(target), True)

    def edit(
        self, ref: Any, ports: Iterable[Any] | None, expand_root_disk_gb: int | None
    ) -> Instance:
        """Add ports and/or grow the root disk (no restart); every argument checked first."""
        instance_ref(ref)
        port_list = None if ports is None else port_dicts(ports)
        if expand_root_disk_gb is not None and (
            isinstance(expand_root_disk_gb, bool)
            or not isinstance(expand_root_disk_gb, int)
            or expand_root_disk_gb < 1
        ):
            raise invalid(
                "expand_root_disk_gb",
                f"must be a positive integer (GB), got {expand_root_disk_gb!r}",
            )
        if not port_list and expand_root_disk_gb is None:
            raise invalid("ports", "nothing to edit: give ports=[...] and/or expand_root_disk_gb=N")
        target = self.resolve(ref)
        self.api.edit_instance(target.id, ports=port_list, expand_root_disk=expand_root_disk_gb)
        return self.resolve(target.id)

    def _forget_deleted(self, target: Instance) -> None:
        """The ledger forgets a deleted instance; this client remembers its id and name, so a
        second delete (``inst.delete()`` goes by id) still knows what it meant."""
        removed = _removed(target)
        self._deleted[target.id] = removed
        if target.name:
            self._deleted[target.name] = removed
        if self.on_deleted is not None:
            self.on_deleted([target.id], "deleted by this client")
        try:
            self.ledger.forget(target.id)
        except (OSError, NovitaError) as exc:  # the delete itself succeeded
            logger.warning("could not update the ledger for %s: %s", target.id, exc)

    def _already_gone(self, ref: str) -> Instance | None:
        """What a delete of an unknown id or name meant, if it is known to be gone: an id or
        name in the ledger (checked against the API) or deleted earlier by this client."""
        for entry in reversed(self.ledger.entries()):
            if ref in (entry.get("id"), entry.get("name")):
                try:
                    live = self.to_instance(self.api.get_instance(str(entry["id"])))
                except NotFoundError:
                    self.ledger.forget(str(entry["id"]))
                    name = str(entry.get("name") or "")
                    return Instance(
                        id=str(entry["id"]), name=name, status="removed", _client=self.owner
                    )
                return live if live.status in GONE_STATUSES else None
        return self._deleted.get(ref)
