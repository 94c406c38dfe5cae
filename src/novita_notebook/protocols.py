"""``NovitaClient``: what the notebook face, teaching mode and the views ask of a client, as a
Protocol. ``Novita`` satisfies it; they type their client with it instead of importing the
facade (or taking ``Any``), so a reader and an IDE can follow ``client.create`` from a magic.

Only modules above the client (notebook/, teaching) import this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .config import Config
    from .doctor import DoctorReport
    from .guard.service import GuardService, GuardStatus
    from .guard.store import GuardRecord
    from .instances import InstanceRef, Instances
    from .ledger import Ledger
    from .models import Instance
    from .provisioning.storages import NetworkStorage
    from .remote.runs import Run
    from .remote.service import Remote
    from .teaching import Handout
    from .waiting.watcher import Watcher

__all__ = ["NovitaClient"]


class NovitaClient(Protocol):
    """The client as its callers above it use it (see ``Novita`` for each method)."""

    config: Config
    guards: GuardService
    lifecycle: Instances
    sandbox_server: Any

    @property
    def ledger(self) -> Ledger: ...

    def close(self) -> None: ...
    def doctor(self, timeout: float = 10.0) -> DoctorReport: ...

    # catalog and listings
    def products(
        self, gpu: str | None = None, region: str | None = None, **filters: Any
    ) -> pd.DataFrame: ...
    def regions(self, refresh: bool = False, detail: bool = True) -> pd.DataFrame: ...
    def instances(
        self, status: str | Iterable[str] | None = None, refresh: bool = False
    ) -> pd.DataFrame: ...
    def templates(
        self,
        name: str | None = None,
        type: str | None = None,
        channel: str | Iterable[str] | None = None,
        refresh: bool = False,
    ) -> pd.DataFrame: ...  # noqa: A002

    # single instances
    def instance(self, instance: InstanceRef) -> Instance: ...
    def start(self, instance: InstanceRef) -> Instance: ...
    def stop(self, instance: InstanceRef) -> Instance: ...
    def restart(self, instance: InstanceRef) -> Instance: ...
    def delete(self, instance: InstanceRef) -> Instance: ...

    # creating
    def create(self, name: str, gpu: str | None = None, **options: Any) -> Instance: ...
    def create_many(
        self, specs: int | Sequence[Mapping[str, Any]], **options: Any
    ) -> pd.DataFrame: ...
    def classroom(self, n: int, gpu: str | None = None, **options: Any) -> Handout: ...
    def storages(self) -> pd.DataFrame: ...
    def create_storage(self, name: str, region: str, size_gb: int) -> NetworkStorage: ...
    def delete_storage(self, name_or_id: str) -> NetworkStorage | None: ...

    # waiting, the ledger, the guard
    def wait(
        self,
        instance: InstanceRef,
        until: str = "running",
        timeout: float | None = 600,
        **options: Any,
    ) -> Instance: ...
    def watch(
        self, instances: Any = None, interval: float | None = None, **options: Any
    ) -> Watcher: ...
    def mine(self, refresh: bool = True, *, prune: bool = False) -> pd.DataFrame: ...
    def cleanup(self, **options: Any) -> pd.DataFrame: ...
    def guard(
        self, instance: InstanceRef, *, replace: bool = False, **rules: Any
    ) -> GuardRecord: ...
    def unguard(self, instance: InstanceRef, *rules: str) -> GuardRecord | None: ...
    def extend(
        self, instance: InstanceRef, duration: Any = "1h", rule: str | None = None
    ) -> GuardRecord: ...
    def guard_status(self) -> GuardStatus: ...

    # -- work on instances over SSH ---------------------------------------------------------
    @property
    def remote(self) -> Remote: ...
    def run(self, instance: InstanceRef, code: str, **options: Any) -> Run: ...
    def attach(self, run: Run | str, **options: Any) -> Run: ...
    def runs(self, refresh: bool = True) -> pd.DataFrame: ...
    def kernel(self, instance: InstanceRef, **options: Any) -> Any: ...
    def install_kernelspec(self, instance: InstanceRef, **options: Any) -> str: ...
    def top(self, instance: InstanceRef) -> pd.DataFrame: ...
    def push(self, instance: InstanceRef, local: Any, remote: str | None = None,
             **options: Any) -> Any: ...  # fmt: skip
    def pull(self, instance: InstanceRef, remote: str, local: Any = None,
             **options: Any) -> Any: ...  # fmt: skip
