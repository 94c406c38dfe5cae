"""The composition root of a client: its services built from its settings, api, catalog and
ledger, each given its collaborators explicitly (no service imports the facade), and the hooks
between them (a delete drops guard rules and SSH state; a stop or delete first names the files
on the instance nobody pulled yet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .guard.service import GuardService
from .instances import Instances
from .ledger_views import LedgerService
from .listings import Listings
from .provisioning import Batch, Budget, NameClaims, Provisioner, Resources
from .waiting.service import Waiting

if TYPE_CHECKING:  # pragma: no cover
    from .api import NovitaAPI
    from .catalog import Catalog
    from .config import Config
    from .ledger import Ledger
    from .models import Instance
    from .remote.service import Remote

__all__ = ["Services", "compose"]

logger = logging.getLogger("novita_notebook")


class Services(NamedTuple):
    """Every service of one client, in the order the facade takes them."""

    lifecycle: Instances
    listings: Listings
    waiting: Waiting
    resources: Resources
    budget: Budget
    provisioner: Provisioner
    guards: GuardService
    batch: Batch
    ledger_service: LedgerService


def compose(
    owner: Any,
    config: Config,
    api: NovitaAPI,
    catalog: Catalog,
    ledger: Ledger,
    remote: Callable[[], Remote],
) -> Services:
    """The services of ``owner`` (the client: handles bind to it, the guard drives it);
    ``remote()`` gives its SSH service, built on first use."""
    lifecycle = Instances(api=api, catalog=catalog, ledger=ledger, owner=owner)
    waiting = Waiting(
        api=api,
        config=config,
        to_instance=lifecycle.to_instance,
        resolve=lifecycle.resolve,
        owner=owner,
    )
    resources = Resources(api, catalog)
    budget = Budget(api, config, lifecycle.to_instance)
    claims = NameClaims(api, read_timeout=config.timeout[1], ledger=ledger)
    provisioner = Provisioner(
        api=api,
        catalog=catalog,
        config=config,
        ledger=ledger,
        resources=resources,
        budget=budget,
        claims=claims,
        fetch=owner.instance,
        wait=owner.wait,
        owner=owner,
    )
    guards = GuardService(owner)

    def forget(ids: list[str], reason: str) -> None:
        guards.forget(ids, reason)
        for instance_id in ids:
            remote().forget_instance(instance_id)

    def warn_unpulled(target: Instance, action: str) -> None:
        from .remote.unpulled import warning

        text = warning(config.api_url, target.id, target.name, action)
        if text:
            logger.warning("%s", text)

    lifecycle.on_deleted = forget
    lifecycle.before_send = warn_unpulled
    lifecycle.before_billing = lambda: guards.ensure(kernel=True)  # it bills: a guard answers
    return Services(
        lifecycle=lifecycle,
        listings=Listings(api, catalog, ledger),
        waiting=waiting,
        resources=resources,
        budget=budget,
        provisioner=provisioner,
        guards=guards,
        batch=Batch(provisioner, config.max_concurrency, guards),
        ledger_service=LedgerService(ledger, api, catalog.price_of, on_forgotten=guards.forget),
    )
