"""``GuardHost``: what the guard asks of the client it serves, as a Protocol (the client
satisfies it), so the guard types its client without importing the facade."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from ..api import NovitaAPI
    from ..config import Config
    from ..http import Transport
    from ..ledger import Ledger
    from ..models import Instance
    from ..remote.service import Remote
    from ..waiting.watcher import Watcher

__all__ = ["GuardHost"]


class GuardHost(Protocol):
    """The client as the guard uses it: its api, transport and settings, the ledger, SSH work,
    one instance by id or name, a watcher to hook the in-kernel guard on."""

    api: NovitaAPI
    transport: Transport
    config: Config
    sandbox_server: Any

    @property
    def ledger(self) -> Ledger: ...

    @property
    def remote(self) -> Remote: ...

    def instance(self, instance: Instance | str) -> Instance: ...

    def watch(
        self, instances: Any = None, interval: float | None = None, **options: Any
    ) -> Watcher: ...
