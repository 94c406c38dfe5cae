"""Novita: the facade users hold. It owns config, transport, api and the Catalog, and composes
the services (provisioning, waiting, ledger); each public method is a few lines delegating.

Longer than 500 lines on purpose: it is the whole public surface, each method with its full
signature and docstring (what help() and the IDE show); the logic lives in the services. Not
split: one class can only spread over modules as mixins or ``self: Novita`` functions, which
issue 11 removed; a second facade object would change every call users write.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .api import NovitaAPI
from .catalog import Catalog, estimated_columns
from .config import SANDBOX_SPEED, Config, load_config
from .errors import NotFoundError, NovitaError, ValidationError
from .guard import GuardRules
from .guard.service import GuardService
from .http import RateLimiter, Transport
from .ledger import Ledger
from .ledger_views import LedgerService
from .models import (
    GONE_STATUSES,
    Cluster,
    Instance,
    Product,
    Template,
)
from .money import price_is_estimate
from .parsing import listing_fields, phase_of
from .provisioning import Batch, Budget, NameClaims, Provisioner, Resources
from .provisioning.request import DEFAULT_ROOTFS_GB, prepare_request
from .validation import (
    Problems,
    check_bool,
    check_gpu_num,
    check_statuses,
    normalise_billing,
    port_dicts,
    require_max_price,
    require_text,
)
from .waiting.backoff import Backoff
from .waiting.probes import Probe
from .waiting.service import Waiting
from .waiting.watcher import EventCallback, Watcher

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .doctor import DoctorReport
    from .models import RegistryAuth
    from .provisioning.storages import NetworkStorage
    from .remote.files import Progress, Transfer
    from .remote.kernel import RemoteKernel
    from .remote.output import OutputSink
    from .remote.runs import Run
    from .remote.service import Remote

__all__ = ["Novita"]

# Statuses where start() and stop() have nothing left to do.
_STARTED = frozenset({"running", "toStart", "starting", "restarting", "toRestart"})
_STOPPED = frozenset({"exited", "toStop", "stopping"})


def _removed(instance: Instance) -> Instance:
    """A copy of ``instance`` marked ``removed`` (what deleting leaves)."""
    import dataclasses

    return dataclasses.replace(instance, status="removed")


logger = logging.getLogger("novita_notebook")


def _frames() -> ModuleType:
    """frames.py imports pandas (slow): load it only when a DataFrame is asked for."""
    from . import frames

    return frames


class Novita:
    """The client: ``Novita()`` reads NOVITA_API_KEY (arguments, then environment, then .env).

    Catalog and instances as DataFrames (``products()``, ``regions()``, ``instances()``,
    ``templates()``), single instances (``instance()``), lifecycle by id or exact name
    (``start``, ``stop``, ``restart``, ``delete``, ``edit``), and through its services creation,
    waiting, watching and the local ledger. ``Novita.sandbox()`` runs an offline cloud.
    Use as a context manager or call ``close()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        budget_per_hour: float | None = None,
        default_region: str | None = None,
        poll_interval: float | None = None,
        max_concurrency: int = 8,
        timeout: float | tuple[float, float] = (5, 30),
        max_retries: int = 4,
        cache_ttl: float = 300,
        rate_limit_per_second: float | None = None,
        env_file: str | bool | None = None,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 60.0,
        breaker_threshold: int = 5,
        breaker_reset_timeout: float = 30.0,
    ) -> None:
        config, key = load_config(
            api_key,
            api_url,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            budget_per_hour=budget_per_hour,
            default_region=default_region,
            poll_interval=poll_interval,
            max_concurrency=max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            cache_ttl=cache_ttl,
            rate_limit_per_second=rate_limit_per_second,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            breaker_threshold=breaker_threshold,
            breaker_reset_timeout=breaker_reset_timeout,
            env_file=env_file,
        )
        self.config: Config = config
        self.max_concurrency: int = config.max_concurrency
        self.rate_limiter: RateLimiter | None = (
            RateLimiter(config.rate_limit_per_second) if config.rate_limit_per_second else None
        )
        self.transport = Transport(
            config.api_url,
            key,
            timeout=config.timeout,
            max_retries=config.max_retries,
            max_concurrency=config.max_concurrency,
            rate_limiter=self.rate_limiter,
            retry_backoff=config.retry_backoff,
            retry_backoff_max=config.retry_backoff_max,
            breaker_threshold=config.breaker_threshold,
            breaker_reset_timeout=config.breaker_reset_timeout,
        )
        del key  # from here on the raw key lives only in the transport
        self.api = NovitaAPI(self.transport)
        self.sandbox_server: Any = None
        self.catalog = Catalog(self.api, config.cache_ttl)
        self._ledger = Ledger(api_url=config.api_url)
        self._closed = False
        self._deleted: dict[str, Instance] = {}  # id and name -> what this client deleted
        self._remote: Remote | None = None  # SSH work, built on first use (remote/)
        self._compose()

    def _compose(self) -> None:
        """Build the services; each gets its collaborators explicitly. ``config`` is read
        through a function because the %config magic replaces ``self.config`` live."""

        def config() -> Config:
            return self.config

        self.waiting = Waiting(
            api=self.api,
            config=config,
            to_instance=self.to_instance,
            resolve=self.resolve,
            owner=self,
        )
        self.resources = Resources(self.api, self.catalog)
        self.budget = Budget(self.api, config, self.to_instance)
        claims = NameClaims(
            self.api, read_timeout=lambda: float(self.config.timeout[1]), ledger=self._ledger
        )
        self.provisioner = Provisioner(
            api=self.api,
            catalog=self.catalog,
            config=config,
            ledger=self._ledger,
            resources=self.resources,
            budget=self.budget,
            claims=claims,
            fetch=self.instance,
            wait=self.wait,
            owner=self,
        )
        self.guards = GuardService(self)
        self.batch = Batch(self.provisioner, self.max_concurrency, self.guards)
        self.ledger_service = LedgerService(
            self._ledger, self.api, self.catalog.price_of, on_forgotten=self.guards.forget
        )
        self.guards.ensure()  # guarded instances from earlier kernels: a guard must answer

    # -- construction helpers ----------------------------------------------------------------
    @classmethod
    def sandbox(
        cls, speed: float = SANDBOX_SPEED, seed: int | None = 0, **client_kwargs: Any
    ) -> Novita:
        """Start an in-process sandbox cloud and return a client bound to it. It runs
        ``speed`` times faster than real time (50 by default, as ``%novita sandbox start``:
        a minute of provisioning takes about a second; 1 is real time).

        ``close()`` (or leaving a ``with`` block) stops the sandbox; it is kept as
        ``client.sandbox_server`` (``.url``, ``.set_faults(...)``, ``.requests()``...).
        """
        for name in ("api_key", "api_url"):
            if name in client_kwargs:
                raise ValidationError(
                    f"{name} cannot be given to Novita.sandbox(); the sandbox provides it",
                    field=name,
                )
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise ValidationError(
                f"speed must be a number > 0 (1 = real time, 60 = a minute per second), "
                f"got {speed!r}",
                field="speed",
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValidationError(f"seed must be an integer, got {seed!r}", field="seed")
        from .sandbox import Sandbox  # lazy: the sandbox is only needed offline

        server = Sandbox(speed=speed, seed=0 if seed is None else seed)
        server.start()
        try:
            client = cls(api_key=server.api_key, api_url=server.url, **client_kwargs)
        except BaseException:
            server.stop()
            raise
        client.sandbox_server = server
        return client

    @property
    def ledger(self) -> Ledger:
        """The local ledger of instances created through this package."""
        return self._ledger

    @property
    def requests_made(self) -> int:
        """HTTP requests this client has sent (every retry counts)."""
        return self.api.requests_made

    def doctor(self, timeout: float = 10.0) -> DoctorReport:
        """Check this client's assumptions against its API with read-only calls: the key,
        latency, paging base, catalog shape, template parameters, field shapes, unknown
        fields (see ``novita_notebook.doctor``). Show the report; if a line differs, paste
        ``report.bug_report()`` (values only, never the key) into a bug report."""
        from .doctor import run_doctor

        return run_doctor(self.config.api_url, self.transport.api_key, timeout=timeout)

    def close(self) -> None:
        """Stop every watcher (and close every notifier bound to this client) it started,
        release connections and stop the sandbox this client started. Idempotent; any later
        API call raises ``ClientClosedError`` at once."""
        if self._closed:
            return
        self._closed = True
        try:
            self.waiting.stop_all()
        except Exception:  # closing must still release the connections
            logger.warning("could not stop every watcher", exc_info=True)
        try:
            if self._remote is not None:
                self._remote.close()
            self.guards.close()
            self.transport.close()
        finally:
            if self.sandbox_server is not None:
                self.sandbox_server.stop()

    def __enter__(self) -> Novita:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = " (sandbox)" if self.sandbox_server is not None else ""
        return f"<Novita {self.config.api_url}{where} key={self.config.masked_key}>"

    # -- work on instances over SSH -------------------------------------------------------------
    @property
    def remote(self) -> Remote:
        """SSH access to instances (``remote/``): one pooled connection per instance, host
        keys pinned per instance id, the password read from the API when needed."""
        if self._remote is None:
            from .remote.service import Remote

            self._remote = Remote(self.config.api_url, self.instance)
        return self._remote

    def run(
        self,
        instance: Instance | str,
        code: str,
        *,
        detach: bool = False,
        put: Mapping[str, Any] | None = None,
        get: Sequence[str] | None = None,
        python: str | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        shell: bool = False,
        on_output: OutputSink | None = None,
        max_output: int = 1_000_000,
    ) -> Run:
        """Run ``code`` on an instance (its id, name or handle) as a durable run: detached
        there, so it survives a dropped connection and a dead kernel; output streams here as
        it comes (``on_output(stream, text)``, else printed, up to ``max_output`` characters,
        the whole log kept on the instance). ``put`` sends local values (a dict), ``get``
        brings names back into ``run.values``; ``python`` picks the interpreter, ``shell=True``
        runs a shell script (images without Python); ``timeout`` (seconds) ends it there;
        ``env`` sets variables. ``detach=True`` returns the ``Run`` at once. A bad end raises
        RemoteRunError with the remote traceback's last lines; Ctrl-C interrupts the code."""
        return self.remote.run(
            self._target(instance),
            code,
            detach=detach,
            put=put,
            get=get,
            python=python,
            timeout=timeout,
            env=env,
            shell=shell,
            on_output=on_output,
            max_output=max_output,
        )

    def attach(
        self,
        run: Run | str,
        *,
        wait: bool = True,
        on_output: OutputSink | None = None,
        max_output: int = 1_000_000,
    ) -> Run:
        """A run remembered on this machine (a ``Run`` or its id), in this kernel or another:
        replays its output from the start and, with ``wait``, follows it to its end."""
        return self.remote.attach(run, wait=wait, on_output=on_output, max_output=max_output)

    def runs(self, refresh: bool = True) -> pd.DataFrame:
        """The runs remembered on this machine, newest first: run, instance, started,
        duration, state, exit_code, cost (estimated from the instance's price). ``refresh``
        looks at the instances of runs not seen to end."""
        return self.remote.runs(refresh=refresh)

    def _target(self, instance: Instance | str) -> Instance:
        return instance if isinstance(instance, Instance) else self.resolve(instance)

    def forget_host_key(self, instance: Instance | str) -> bool:
        """Drop the SSH host key pinned for an instance (its id, name or handle), after you
        know why it changed; the next connection pins the key it sees. True if one was."""
        return self.remote.forget_host_key(self._target(instance).id)

    def kernel(
        self,
        instance: Instance | str,
        *,
        python: str | None = None,
        new: bool = False,
        install: bool = False,
    ) -> RemoteKernel:
        """The instance's remote IPython kernel (started there, or found again with its
        variables): ``execute(code)`` runs code in it and returns the outputs. ``python``
        (default python3) runs it; ``new`` starts afresh; ``install`` pip-installs ipykernel
        there when missing. Stopping the instance ends the kernel. See ``remote/kernel.py``."""
        target = self._target(instance)
        return self.remote.kernels.kernel(
            target.id, target.name or target.id, python=python, new=new, install=install
        )

    def install_kernelspec(
        self,
        instance: Instance | str,
        *,
        python: str = "python3",
        user: bool = True,
        prefix: str | None = None,
    ) -> str:
        """Install a Jupyter kernel "Novita: NAME" that runs a whole notebook on the instance
        (pick it from the kernel menu); returns its kernel name. When the instance stops, the
        kernel's variables end with it and its cells say so. The key is not written: the
        Jupyter server needs NOVITA_API_KEY (environment or .env)."""
        from .remote.kernelspec import install_kernelspec

        target = self._target(instance)
        return install_kernelspec(target.id, target.name or target.id, self.config.api_url,
                                  python=python, user=user, prefix=prefix)  # fmt: skip

    def top(self, instance: Instance | str) -> pd.DataFrame:
        """What the instance's GPUs are doing, read from ``nvidia-smi`` over SSH: one row per
        GPU (name, utilisation, memory used/total, temperature, power, processes) with the
        instance's price and spend so far. ``attrs['source']`` says where it was read."""
        target = self.instance(instance.id if isinstance(instance, Instance) else instance)
        return self.remote.top(target, _frames().cost_so_far(target))

    def push(
        self,
        instance: Instance | str,
        local: str | os.PathLike[str],
        remote: str | None = None,
        *,
        ignore: str | Sequence[str] | None = None,
        default_ignore: bool = True,
        checksum: bool = False,
        progress: Callable[[Progress], Any] | None = None,
    ) -> Transfer:
        """Copy a local file or folder to the instance over SFTP (``remote`` relative to its
        home; default: the same name there). ``ignore``: .gitignore lines, added to a default
        that skips .git, virtual environments and caches (``default_ignore=False`` drops
        it). Unchanged files are skipped (``checksum=True`` compares contents), an interrupted
        push resumes, permissions and mtimes are kept. ``progress(Progress)`` is called a few
        times a second. Returns what was sent (``Transfer``)."""
        target = self._target(instance)
        return self.remote.files.push(
            target.id, target.name or target.id, local, remote, ignore=ignore,
            default_ignore=default_ignore, checksum=checksum, progress=progress,
        )  # fmt: skip

    def pull(
        self,
        instance: Instance | str,
        remote: str,
        local: str | os.PathLike[str] | None = None,
        *,
        ignore: str | Sequence[str] | None = None,
        default_ignore: bool = True,
        checksum: bool = False,
        progress: Callable[[Progress], Any] | None = None,
    ) -> Transfer:
        """Copy a file or folder of the instance here (``local`` default: its name in the
        current folder); the same options as ``push``."""
        target = self._target(instance)
        return self.remote.files.pull(
            target.id, target.name or target.id, remote, local, ignore=ignore,
            default_ignore=default_ignore, checksum=checksum, progress=progress,
        )  # fmt: skip

    # -- the catalog --------------------------------------------------------------------------
    def cached_products(self, refresh: bool = False) -> list[Product]:
        """The full GPU product listing (all regions, one entry per product × region)."""
        return self.catalog.products(refresh)

    def cached_clusters(self, refresh: bool = False) -> list[Cluster]:
        return self.catalog.clusters(refresh)

    def cached_templates(self, refresh: bool = False) -> list[Template]:
        return self.catalog.templates(refresh)

    def clear_cache(self) -> None:
        """Forget cached products, clusters and templates (the next call fetches them)."""
        self.catalog.clear()

    def to_instance(self, raw: dict[str, Any]) -> Instance:
        """Parse a raw API instance, fill ``price_per_hour`` from the catalog and bind it."""
        if not isinstance(raw, dict):
            raise ValidationError("raw must be the API's instance dict", field="raw")
        instance = Instance.from_api(raw, client=self)
        try:
            instance.price_per_hour = self.catalog.price_of(instance)
        except NovitaError as exc:
            # The price is decoration: an unreachable catalog must not hide the instance.
            logger.debug("no price for %s: %s", instance.id, type(exc).__name__)
        return instance

    # -- single instances ------------------------------------------------------------------
    def resolve(self, id_or_name: str) -> Instance:
        """The instance with this exact id, else the one live instance with this exact name."""
        ref = require_text(id_or_name, "id_or_name", optional=False)
        assert ref is not None
        try:
            return self.to_instance(self.api.get_instance(ref))
        except NotFoundError:
            pass
        except ValidationError as exc:
            if exc.status is None:  # our own argument check, not the API's answer
                raise
        matches = [
            raw
            for raw in self.api.list_instances(name=ref)
            if raw.get("name") == ref and raw.get("status") not in GONE_STATUSES
        ]
        if not matches:
            raise NotFoundError(
                f"no instance has the id or name {ref!r}",
                hint="client.instances() lists them (names are matched exactly).",
            )
        if len(matches) > 1:
            ids = ", ".join(str(raw.get("id")) for raw in matches)
            raise ValidationError(
                f"{len(matches)} live instances are named {ref!r} (ids: {ids}); pass an id",
                field="id_or_name",
            )
        return self.to_instance(self.api.get_instance(str(matches[0].get("id"))))

    def instance(self, id_or_name: str) -> Instance:
        """A fresh Instance (by id or exact name), price filled, bound to this client."""
        return self.resolve(id_or_name)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, id_or_name: str) -> Instance:
        """Start a stopped instance; returns it refreshed (typically ``toStart``). Starting
        one that is already running or starting succeeds and says so (an INFO log line)."""
        target = self.resolve(id_or_name)
        self.guards.ensure(kernel=True)  # it may bill again: a guard must answer
        if target.status in _STARTED:
            logger.info(
                "%s (%s) is already %s; nothing to start", target.name, target.id, target.status
            )
            return target
        self.api.start_instance(target.id)
        return self.instance(target.id)

    def stop(self, id_or_name: str) -> Instance:
        """Stop an instance (billing stops once exited); returns it refreshed. Stopping one
        that is already stopped or stopping succeeds and says so (an INFO log line)."""
        target = self.resolve(id_or_name)
        if target.status in _STOPPED:
            logger.info(
                "%s (%s) is already %s; nothing to stop", target.name, target.id, target.status
            )
            return target
        self._warn_unpulled(target, "stop")
        self.api.stop_instance(target.id)
        return self.instance(target.id)

    def restart(self, id_or_name: str) -> Instance:
        """Restart an instance; returns it refreshed."""
        target = self.resolve(id_or_name)
        self.guards.ensure(kernel=True)  # it bills on: a guard must answer
        self.api.restart_instance(target.id)
        return self.instance(target.id)

    def delete(self, id_or_name: str) -> Instance:
        """Delete an instance; returns it refreshed (``removing``), or with status ``removed``
        once the API forgot it. Idempotent: deleting what is already gone (an id, or a name
        the ledger or this client knows) returns it as ``removed`` and says so (INFO log);
        a name nothing ever knew still raises ``NotFoundError``."""
        try:
            target = self.resolve(id_or_name)
        except NotFoundError:
            gone = self._already_gone(id_or_name)
            if gone is None:
                raise
            logger.info("%s (%s) is already deleted; nothing to do", gone.name, gone.id)
            return gone
        if target.status in GONE_STATUSES:
            logger.info("%s (%s) is already deleted; nothing to do", target.name, target.id)
            self._forget_deleted(target)
            return target
        self._warn_unpulled(target, "delete")
        with contextlib.suppress(NotFoundError):  # gone between the lookup and the delete
            self.api.delete_instance(target.id)
        self._forget_deleted(target)
        try:
            return self.instance(target.id)
        except NotFoundError:
            return _removed(target)

    def _warn_unpulled(self, target: Instance, action: str) -> None:
        """Files written on the instance since its last pull are named before they may go."""
        from .remote.unpulled import warning

        text = warning(self.config.api_url, target.id, target.name, action)
        if text:
            logger.warning("%s", text)

    def _forget_deleted(self, target: Instance) -> None:
        """The ledger forgets a deleted instance; this client remembers its id and name, so a
        second delete (``inst.delete()`` goes by id) still knows what it meant."""
        removed = _removed(target)
        self._deleted[target.id] = removed
        if target.name:
            self._deleted[target.name] = removed
        self.guards.forget([target.id], "deleted by this client")
        self.remote.forget_instance(target.id)
        try:
            self.ledger.forget(target.id)
        except (OSError, NovitaError) as exc:  # the delete itself succeeded
            logger.warning("could not update the ledger for %s: %s", target.id, exc)

    def _already_gone(self, ref: str) -> Instance | None:
        """What a delete of an unknown id or name meant, if it is known to be gone: an id or
        name in the ledger (checked against the API) or deleted earlier by this client."""
        if not isinstance(ref, str):
            return None
        for entry in reversed(self.ledger.entries()):
            if ref in (entry.get("id"), entry.get("name")):
                try:
                    live = self.to_instance(self.api.get_instance(str(entry["id"])))
                except NotFoundError:
                    self.ledger.forget(str(entry["id"]))
                    name = str(entry.get("name") or "")
                    return Instance(id=str(entry["id"]), name=name, status="removed", _client=self)
                return live if live.status in GONE_STATUSES else None
        return self._deleted.get(ref)

    def edit(
        self,
        id_or_name: str,
        ports: Iterable[Any] | None = None,
        expand_root_disk_gb: int | None = None,
    ) -> Instance:
        """Add ports (``8080``, ``"8080/http"``, ``(8080, "http")`` or dicts) and/or grow the
        root disk by ``expand_root_disk_gb`` GB, without a restart; returns it refreshed."""
        require_text(id_or_name, "id_or_name", optional=False)
        port_list = None if ports is None else port_dicts(ports)
        if expand_root_disk_gb is not None and (
            isinstance(expand_root_disk_gb, bool)
            or not isinstance(expand_root_disk_gb, int)
            or expand_root_disk_gb < 1
        ):
            raise ValidationError(
                f"expand_root_disk_gb must be a positive integer (GB), got {expand_root_disk_gb!r}",
                field="expand_root_disk_gb",
            )
        if not port_list and expand_root_disk_gb is None:
            raise ValidationError(
                "nothing to edit: give ports=[...] and/or expand_root_disk_gb=N", field="ports"
            )
        target = self.resolve(id_or_name)
        self.api.edit_instance(target.id, ports=port_list, expand_root_disk=expand_root_disk_gb)
        return self.instance(target.id)

    # -- DataFrames --------------------------------------------------------------------------
    def products(
        self,
        gpu: str | None = None,
        region: str | None = None,
        gpu_num: int | None = None,
        billing: str | None = None,
        max_price: float | None = None,
        available: bool | None = None,
        refresh: bool = False,
        detail: bool = False,
    ) -> pd.DataFrame:
        """GPU products, one row per product × region, cheapest first.

        ``gpu`` matches loosely (``"4090"``, ``"rtx 4090"``, ``"RTX 4090 24GB"``) or is a
        product id; ``region`` is a region name or id; ``billing`` (onDemand, spot, monthly)
        lists that method's offers and sorts/filters by its price; ``max_price`` is USD per
        GPU-hour; ``gpu_num`` asks which products can serve that many GPUs.

        Stock is known per region only from that region's own listing. With ``region``,
        ``available`` or ``detail=True`` each row's ``available``/``stock`` are its region's
        (one listing per region offering a match, fetched concurrently). Otherwise they are
        <NA>, and ``available_somewhere``/``stock_somewhere`` hold the API's aggregate (in
        stock in at least one region offering the product).
        """
        gpu = require_text(gpu, "gpu")
        region = require_text(region, "region")
        if gpu_num is not None:
            problems = Problems()
            check_gpu_num(gpu_num, problems)
            problems.raise_if_any()
        billing = normalise_billing(billing)
        max_price = require_max_price(max_price)
        if available is not None:
            check_bool(available, "available")
        check_bool(refresh, "refresh")
        check_bool(detail, "detail")

        selection = self.catalog.select(
            gpu=gpu,
            region=region,
            gpu_num=gpu_num,
            billing=billing,
            max_price=max_price,
            available=available,
            detail=detail,
            refresh=refresh,
        )
        clusters = self.catalog.clusters()
        frame = _frames().products_frame(
            selection.items,
            clusters,
            billing=billing,
            per_region=selection.per_region,
            aggregate=selection.aggregate,
        )
        if selection.join is not None:
            frame.attrs["region_join"] = selection.join.describe(clusters)
        frame.attrs["estimated"] = estimated_columns(billing, gpu_num)
        return frame

    def regions(self, refresh: bool = False, detail: bool = True) -> pd.DataFrame:
        """Regions (clusters) with their GPU types, product counts, products in stock and the
        cheapest GPU in stock. Stock comes from each region's own listing (all fetched at once,
        kept 15 s; ``refresh=True`` asks again); ``detail=False`` skips them:
        ``products_available`` is then <NA> and ``cheapest_gpu`` is the cheapest listed there,
        in stock or not."""
        check_bool(refresh, "refresh")
        check_bool(detail, "detail")
        clusters = self.cached_clusters(refresh)
        products = self.catalog.listing("onDemand", refresh)
        listings = None
        if detail:
            fetched = self.catalog.region_listings([c.id for c in clusters], refresh=refresh)
            for value in fetched.values():
                if isinstance(value, NovitaError):
                    raise value
            listings = {key: value for key, value in fetched.items() if isinstance(value, list)}
        frame = _frames().regions_frame(clusters, products, listings)
        frame.attrs["region_join"] = self.catalog.region_join().describe(clusters)
        return frame

    def instances(
        self, status: str | Iterable[str] | None = None, refresh: bool = False
    ) -> pd.DataFrame:
        """Every instance (all pages), newest first. ``status``: statuses and/or phases to keep
        (``"running"``, ``["exited", "failed"]``). ``refresh`` also reloads the price catalog."""
        wanted = check_statuses(status)
        check_bool(refresh, "refresh")
        if refresh:
            self.cached_products(refresh=True)
            self.cached_clusters(refresh=True)
        # Only the listed fields are parsed (parsing.listing_fields, as Instance.from_api
        # parses them): the frame is all that is returned, so no Instance is made.
        rows = [listing_fields(raw) for raw in self.api.list_instances()]
        try:
            index = self.catalog.price_index()
        except NovitaError as exc:
            logger.debug("instances without prices: %s", type(exc).__name__)
            index = {}
        recorded = self._ledger_created_times()
        price_of = self.catalog.listed_price
        for row in rows:
            row["price_per_hour"] = price_of(row, index)
            if row["created_at"] is None:
                # The list view carries no timestamps; instances made here have one on record.
                row["created_at"] = recorded.get(row["id"])
        if wanted is not None:
            rows = [
                r
                for r in rows
                if r["status"] in wanted or phase_of(r["status"], r["status_error"]) in wanted
            ]
        frame = _frames().listed_instances_frame(rows, datetime.now(UTC))
        if any(price_is_estimate(r["billing_mode"], r["gpu_num"]) for r in rows):
            frame.attrs["estimated"] = ["price_per_hour", "cost_so_far"]  # money.ESTIMATED_PRICES
        return frame

    def _ledger_created_times(self) -> dict[str, datetime]:
        """Creation times the ledger recorded, by instance id ({} if the ledger is unreadable)."""
        try:
            return self.ledger.created_times()
        except Exception as exc:  # noqa: BLE001 - a broken ledger must not break listings
            logger.debug("ledger unavailable for creation times: %s", type(exc).__name__)
            return {}

    def templates(
        self,
        name: str | None = None,
        type: str | None = None,  # noqa: A002 - the API's word
        channel: str | Iterable[str] | None = None,
        refresh: bool = False,
    ) -> pd.DataFrame:
        """Templates as a DataFrame (all pages); without filters from the cache. Without
        ``channel``: official, community and your private templates, one listing per channel
        (``channel`` + ``isMyCommunity``, true for private, as the newest docs ask)."""
        require_text(name, "name")
        require_text(type, "type")
        check_bool(refresh, "refresh")
        if name is None and type is None and channel is None:
            items = self.cached_templates(refresh)
        else:
            items = self.api.templates(name=name, type=type, channel=channel)
        return _frames().templates_frame(items)

    # -- provisioning (provisioning/) --------------------------------------------------------
    def create(
        self,
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
        volumes: Any = None,
        prefer: str = "price",
        unique_name: bool = False,
        wait: bool = False,
        wait_until: str = "running",
        timeout: float | None = None,
        progress: Callable[..., Any] | str | None = None,
        guard: bool | GuardRules | None = None,
        stop_after: Any = None,
        delete_after: Any = None,
        idle_stop: Any = None,
        idle_threshold: float | None = None,
        budget: float | None = None,
        budget_per_hour: float | None = None,
        warn_before: Any = None,
        on_reclaim: str | None = None,
    ) -> Instance:
        """Create an instance, falling back across regions; by default on the cheapest offer
        in stock in any region.

        ``gpu`` is matched fuzzily ("4090", "rtx 4090", "RTX 4090 24GB" or a product id; None
        means any GPU). Offers and prices come from one cached catalog listing, each candidate
        region's stock from its own listing (fetched at once). ``prefer`` orders the offers:
        ``"price"`` (the default) cheapest per GPU-hour first across regions, the region order
        breaking ties; ``"region"`` the regions in order (``region`` or ``default_region``
        first, then AS-SGP-02, CN-HK-01, AS-IN-01 and the rest; ``regions`` replaces that
        list), cheapest first within each (ties: more memory, then CPU per GPU). When stock
        races away (the create answers INSUFFICIENT_RESOURCE) the next offer is tried.
        ``max_price`` is USD per GPU-hour, the unit of ``products()``. The result carries
        ``fallback_report`` (the policy, and which answer decided each region); with
        ``wait=True`` it is returned once ``wait_until`` is reached (``progress`` is passed
        to ``wait``).

        ``volumes``: network volumes to mount, by name or id (``"my-data"``, ``("my-data",
        "/data")`` or ``"my-data:/data"``; default mount point ``/network``). A volume is
        mountable only in its own region, so the create is pinned there and the report says
        so (``network_storages`` takes the same entries).

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

        Guard rules bound the instance's life even after the kernel dies (docs/guard.md):
        ``stop_after``/``delete_after`` (a duration such as "2h" or a time), ``idle_stop`` (stop
        when GPU use stays below ``idle_threshold`` %, default 5, this long), ``budget`` (USD
        total) and ``budget_per_hour`` (USD/h; the newest guarded instances stop first),
        ``warn_before`` and ``on_reclaim`` ("notify", "migrate", "recreate"; spot). They add to
        the user's NOVITA_GUARD_* defaults; ``guard=False`` sets none. Bad rules fail before any
        request; the guard process starts by itself (NOVITA_GUARD_AUTOSTART=0 opts out).
        """
        rules = self.guards.rules_for_create(
            guard,
            dict(
                stop_after=stop_after,
                delete_after=delete_after,
                idle_stop=idle_stop,
                idle_threshold=idle_threshold,
                budget_total=budget,
                budget_per_hour=budget_per_hour,
                warn_before=warn_before,
                on_reclaim=on_reclaim,
            ),
        )
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
            volumes=volumes,
            prefer=prefer,
            unique_name=unique_name,
            wait=wait,
            wait_until=wait_until,
            timeout=timeout,
            progress=progress,
        )
        try:
            instance = self.provisioner.provision(request, guard=self.guards.create_guard(rules))
        except NovitaError as error:
            made = getattr(error, "created_instance", None)
            if isinstance(made, Instance):  # made, then its wait failed: it bills all the same
                self.guards.protect(made, rules)
            raise
        self.guards.protect(instance, rules)
        return instance

    def create_many(
        self,
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
        instance the batch created (their rows say so). Guard keywords (``stop_after``,
        ``budget``, ``idle_stop``..., ``guard``) work as in create(), for all or per spec.
        """
        return self.batch.create_many(
            specs,
            concurrency=concurrency,
            name_prefix=name_prefix,
            gpu=gpu,
            all_or_nothing=all_or_nothing,
            progress=progress,
            **common,
        )

    def storages(self) -> pd.DataFrame:
        """Network volumes: name, id, region, cluster_id, size_gb, price_per_hour (USD per
        hour for the whole volume, as the API lists it) and price_per_month (x 730 h)."""
        return self.provisioner.storages.frame()

    def create_storage(self, name: str, region: str, size_gb: int) -> NetworkStorage:
        """Create a network volume of ``size_gb`` GB (10-10240) in ``region`` (one with network
        storage) and return it; ``create(..., volumes=[name])`` mounts it."""
        return self.provisioner.storages.create(name, region, size_gb)

    def delete_storage(self, name_or_id: str) -> NetworkStorage | None:
        """Delete a network volume by id or exact name; returns what was deleted, or None when
        there is no such volume (deleting twice is fine). ``create_storage`` refuses a name
        already used, so a name always means one volume."""
        return self.provisioner.storages.delete(name_or_id)

    def current_spend_per_hour(self) -> float:
        """USD per hour of this account's live instances that are billed or about to be."""
        return self.budget.current_spend_per_hour()

    def create_template(
        self,
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
        return self.resources.create_template(
            name,
            image,
            ports=ports,
            envs=envs,
            rootfs_gb=rootfs_gb,
            start_command=start_command,
            entrypoint=entrypoint,
            image_auth_id=image_auth_id,
            readme=readme,
        )

    def delete_template(self, id_or_name: str) -> None:
        """Delete a private template by id or exact name."""
        self.resources.delete_template(id_or_name)

    def registry_auths(self) -> pd.DataFrame:
        """Registry credentials as a table: id, name, username (passwords are never shown)."""
        return self.resources.registry_auths()

    def create_registry_auth(self, name: str, username: str, password: str) -> RegistryAuth:
        """Store credentials for a private registry; returns it without the password."""
        return self.resources.create_registry_auth(name, username, password)

    def delete_registry_auth(self, id_or_name: str) -> None:
        """Delete registry credentials by id or exact name."""
        self.resources.delete_registry_auth(id_or_name)

    # -- the ledger (ledger.py) ----------------------------------------------------------------
    def mine(self, refresh: bool = True, *, prune: bool = False) -> pd.DataFrame:
        """Instances this package created against this API (from the ledger), oldest first.
        See ``LedgerService.mine``."""
        self.guards.ensure()  # guarded instances left by earlier kernels: a guard must answer
        return self.ledger_service.mine(refresh, prune=prune)

    def watch_mine(self, **kwargs: Any) -> Watcher:
        """Watch every live instance of the ledger again (after a kernel restart, say)."""
        ids = self.ledger_service.live_ids()
        if not ids:
            raise NotFoundError(
                "no live instance in the ledger for this API; create one or check mine()",
                hint="Novita.mine() lists what the ledger remembers.",
            )
        return self.watch(ids, **kwargs)

    def cleanup(
        self,
        *,
        stop: bool = False,
        delete: bool = False,
        dry_run: bool = True,
        older_than: Any = None,
        names: Any = None,
        forget_gone: bool = False,
    ) -> pd.DataFrame:
        """Find the ledger's forgotten instances and stop or delete them (a dry run by
        default); ``forget_gone=True`` forgets gone ones at once. See
        ``LedgerService.cleanup``."""
        return self.ledger_service.cleanup(
            stop=stop,
            delete=delete,
            dry_run=dry_run,
            older_than=older_than,
            names=names,
            forget_gone=forget_gone,
        )

    # -- waiting (waiting/) --------------------------------------------------------------------
    def wait(
        self,
        instance: Instance | str,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """Block until ``instance`` (an Instance, id or name) is ``until`` and return it fresh.

        ``until``: ``running``; ``reachable`` (running, SSH/Jupyter components up and every
        http port answering below 500, or ``probe(instance)`` true); ``exited``; ``removed``
        (status removed or gone). Polls adaptively (``poll``: a ``Backoff`` or a fixed number
        of seconds; None: the client's ``poll_interval`` when set). Raises ``InstanceFailedError`` at once on a statusError or if the instance
        vanishes (unless waiting for ``removed``), ``TimeoutError`` with ``last_status``.
        Ctrl-C stops waiting only: the instance keeps going. ``progress``: None (live display
        in notebooks, silent elsewhere), ``"text"``, ``"silent"`` or a callable
        ``progress(instance, elapsed, phase)``. Runs on the caller's thread, starts none.
        """
        return self.waiting.wait(
            instance, until, timeout, progress=progress, probe=probe, poll=poll
        )

    async def wait_async(
        self,
        instance: Instance | str,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """``await novita.wait_async(...)``: ``wait`` without blocking the event loop (a
        notebook cell can ``await`` it; it runs on the caller's loop and never re-enters it). Same arguments and errors.

        Pauses are ``asyncio.sleep``; each HTTP call (and probe) runs in the loop's default
        executor, so cancelling the task stops the wait after the call in flight.
        """
        return await self.waiting.wait_async(
            instance, until, timeout, progress=progress, probe=probe, poll=poll
        )

    def watch(
        self,
        instances: Iterable[Instance | str] | Instance | str | None = None,
        interval: float | None = None,
        *,
        callbacks: Iterable[EventCallback] | EventCallback = (),
        notify: EventCallback | None = None,
        stop_when_terminal: bool = False,
        page_size: int = 100,
        error_backoff: Backoff | None = None,
    ) -> Watcher:
        """Watch instances in the background (a daemon thread) and return the running Watcher.

        ``instances``: None for all of your instances, or ids / names (resolved once) /
        Instances. Each tick makes one paginated list call (``page_size`` per page), never one
        GET per instance. Status changes go to ``callbacks``, to ``notify`` (e.g. a
        ``webhooks.Notifier``) and to ``watcher.events``; first sightings are events too
        (``old_status`` None). ``interval`` None uses ``poll_interval`` (else 5 s).
        Each tick also enforces the guard rules and announces spot reclaim notices
        (``spot.reclaim_notice``), with no extra list call.
        """
        watcher = self.waiting.watch(
            instances,
            interval,
            callbacks=callbacks,
            notify=notify,
            stop_when_terminal=stop_when_terminal,
            page_size=page_size,
            error_backoff=error_backoff,
        )
        self.guards.attach(watcher)
        return watcher

    # -- the guard (guard/) --------------------------------------------------------------------
    def guard(self, instance: Instance | str, *, replace: bool = False, **rules: Any) -> Any:
        """Guard a running instance (Instance, id or name): ``stop_after``, ``delete_after``,
        ``idle_stop``, ``idle_threshold``, ``budget_per_hour``, ``budget_total``,
        ``warn_before``, ``on_reclaim`` as for ``create``. Merged into its current rules
        (``replace=True`` replaces them). Returns the stored record; starts the guard."""
        return self.guards.guard(instance, replace=replace, **rules)

    def unguard(self, instance: Instance | str, *rules: str) -> Any:
        """Remove an instance's guard rules: all, or the named ones ("stop_after", "idle",
        "budget", ...). Returns what remains (None: no longer guarded)."""
        return self.guards.unguard(instance, *rules)

    def extend(
        self, instance: Instance | str, duration: Any = "1h", rule: str | None = None
    ) -> Any:
        """Push a guarded instance's deadlines back by ``duration`` ("1h", "30m", seconds);
        ``rule`` "stop_after" or "delete_after" moves only that one."""
        return self.guards.extend(instance, duration, rule)

    def guard_status(self) -> Any:
        """The guard process (running, pid, last tick), the rules per instance, the next
        action with its time and the latest actions (what ``%novita guard status`` shows)."""
        return self.guards.status()

    def push_to_class(
        self, seats: Any, local: str | os.PathLike[str], remote: str | None = None, **options: Any
    ) -> pd.DataFrame:
        """The same course folder to every seat of a class at once (a ``Handout``, or
        instances, ids or names): one row per seat with what was sent or the error. Options
        as for ``push``."""
        from .teaching import push_to_class

        return push_to_class(self, seats, local, remote, **options)

    def classroom(self, n: int, gpu: str | None = None, **options: Any) -> Any:
        """Teaching mode: ``n`` guarded instances named ``<prefix>-1..n`` with one deadline
        for all, returned as a ``Handout`` (name, Jupyter link, SSH command; ``to_csv()``,
        ``to_html()``). See ``teaching.classroom`` for the options."""
        from .teaching import classroom

        return classroom(self, n, gpu, **options)
