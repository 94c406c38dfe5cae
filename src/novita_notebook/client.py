"""Novita: the facade users hold. It owns the settings, transport, api and Catalog; its services
are built in composition.py; each public method checks its arguments through the option schemas
and hands over to one service. Longer than 500 lines on purpose: it is the whole public surface,
each method with its full signature and docstring (what help() and an IDE show).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .api import NovitaAPI
from .catalog import Catalog
from .composition import compose
from .config import SANDBOX_SPEED, Config, load_config
from .errors import NovitaError
from .guard import GuardRules
from .http import RateLimiter, Transport
from .instances import InstanceRef, instance_ref
from .ledger import Ledger
from .models import Cluster, Instance, Product, Template
from .options import FILES, GUARD, RUN, WAITING
from .options.create import DEFAULT_ROOTFS_GB
from .options.guard import parse_extension, parse_rule_names
from .provisioning.request import prepare_request
from .validation import invalid
from .waiting.backoff import Backoff
from .waiting.probes import Probe
from .waiting.watcher import EventCallback, Watcher

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .doctor import DoctorReport
    from .guard.service import GuardStatus
    from .guard.store import GuardRecord
    from .models import RegistryAuth
    from .provisioning.storages import NetworkStorage
    from .remote.files import Progress, Transfer
    from .remote.kernel import RemoteKernel
    from .remote.output import OutputSink
    from .remote.runs import Run
    from .remote.service import Remote
    from .teaching import Handout

__all__ = ["Novita"]

logger = logging.getLogger("novita_notebook")

#: create()'s guard keywords: each rule's name, ``budget`` for budget_total.
_CREATE_RULES = tuple((option.aliases or (option.name,))[0] for option in GUARD)


class Novita:
    """The client: ``Novita()`` reads NOVITA_API_KEY (arguments, then environment, then .env).
    Catalog and instances as DataFrames, single instances (an Instance, an id or a name) and
    their lifecycle, creating, waiting, watching, the ledger, the guard and work over SSH;
    ``Novita.sandbox()`` runs an offline cloud. A context manager, or call ``close()``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        spend_limit_per_hour: float | str | None = None,
        default_region: str | None = None,
        poll_interval: float | str | None = None,
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
        budget_per_hour: float | str | None = None,
    ) -> None:
        """Every keyword is a client setting of docs/options.md, checked by its rule
        (``budget_per_hour``: the old name of ``spend_limit_per_hour``). ``client.config``
        holds them; the live ones may be changed later through it."""
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        config, key = load_config(**given)
        self.config: Config = config
        self.max_concurrency: int = config.max_concurrency
        self.transport = Transport.for_settings(config, key)
        self.rate_limiter: RateLimiter | None = self.transport.rate_limiter
        del key  # from here on the raw key lives only in the transport
        self.api = NovitaAPI(self.transport)
        self.sandbox_server: Any = None
        self.catalog = Catalog(self.api, config.cache_ttl)
        self._ledger = Ledger(api_url=config.api_url)
        self._closed = False
        self._remote: Remote | None = None  # SSH work, built on first use (remote/)
        (self.lifecycle, self.listings, self.waiting, self.resources, self.budget,
         self.provisioner, self.guards, self.batch, self.ledger_service) = compose(
            self, config, self.api, self.catalog, self._ledger, lambda: self.remote
        )  # fmt: skip
        self.guards.ensure()  # guarded instances from earlier kernels: a guard must answer

    # -- construction helpers ----------------------------------------------------------------
    @classmethod
    def sandbox(
        cls, speed: float = SANDBOX_SPEED, seed: int | None = 0, **client_kwargs: Any
    ) -> Novita:
        """Start an in-process sandbox cloud and return a client bound to it, ``speed`` times
        faster than real time (50 by default, as ``%novita sandbox start``; 1: real time).
        ``close()`` stops it; it is ``client.sandbox_server`` (``.url``, ``.set_faults()``...)."""
        from .offline import sandbox_client  # the sandbox is only needed offline

        return sandbox_client(cls, speed, seed, client_kwargs)

    @property
    def ledger(self) -> Ledger:
        """The local ledger of instances created through this package."""
        return self._ledger

    @property
    def requests_made(self) -> int:
        """HTTP requests this client has sent (every retry counts)."""
        return self.api.requests_made

    def doctor(self, timeout: float = 10.0) -> DoctorReport:
        """Check this client's assumptions against its API with read-only calls (key, latency,
        paging, catalog and field shapes; ``novita_notebook.doctor``); if a line differs,
        paste ``report.bug_report()`` (values only, never the key) into a bug report."""
        from .doctor import run_doctor

        return run_doctor(self.config.api_url, self.transport.api_key, timeout=timeout)

    def close(self) -> None:
        """Stop the watchers (and notifiers bound to this client) and the sandbox it started,
        release connections. Idempotent; a later call raises ``ClientClosedError`` at once."""
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
        """SSH access to instances (``remote/``): one pooled connection each, host keys pinned."""
        if self._remote is None:
            from .remote.service import Remote

            self._remote = Remote(self.config.api_url, self.instance)
        return self._remote

    def run(
        self,
        instance: InstanceRef,
        code: str,
        *,
        detach: bool = False,
        put: Mapping[str, Any] | None = None,
        get: Sequence[str] | None = None,
        python: str | None = None,
        timeout: float | str | None = None,
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
        how = RUN.parse({k: v for k, v in locals().items() if k in RUN})
        if isinstance(how["put"], list):
            raise invalid("put", "must be a dict of names to values in Python")
        if how["env"] is not None:
            how["env"] = dict(how["env"])
        return self.remote.run(instance_ref(instance), code, on_output=on_output, **how)

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

    def _target(self, instance: InstanceRef) -> Instance:
        ref = instance_ref(instance)
        return ref if isinstance(ref, Instance) else self.instance(ref)

    def forget_host_key(self, instance: InstanceRef) -> bool:
        """Drop the SSH host key pinned for an instance (after you know why it changed); the
        next connection pins the key it sees. True if one was pinned."""
        return self.remote.forget_host_key(self._target(instance).id)

    def kernel(
        self,
        instance: InstanceRef,
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
        instance: InstanceRef,
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

    def top(self, instance: InstanceRef) -> pd.DataFrame:
        """What the instance's GPUs are doing, read from ``nvidia-smi`` over SSH: one row per
        GPU (name, utilisation, memory used/total, temperature, power, processes) with the
        instance's price and spend so far. ``attrs['source']`` says where it was read."""
        from .frames import cost_so_far

        target = self.instance(instance)
        return self.remote.top(target, cost_so_far(target))

    def push(
        self,
        instance: InstanceRef,
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
        how = FILES.parse({"ignore": ignore, "default_ignore": default_ignore,
                           "checksum": checksum})  # fmt: skip
        target = self._target(instance)
        return self.remote.files.push(
            target.id, target.name or target.id, local, remote, progress=progress, **how
        )

    def pull(
        self,
        instance: InstanceRef,
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
        how = FILES.parse({"ignore": ignore, "default_ignore": default_ignore,
                           "checksum": checksum})  # fmt: skip
        target = self._target(instance)
        return self.remote.files.pull(
            target.id, target.name or target.id, remote, local, progress=progress, **how
        )

    # -- the catalog --------------------------------------------------------------------------
    def cached_products(self, refresh: bool = False) -> list[Product]:
        """The full GPU product listing (all regions, one entry per product × region)."""
        return self.catalog.products(refresh)

    def cached_clusters(self, refresh: bool = False) -> list[Cluster]:
        return self.catalog.clusters(refresh)

    def cached_templates(self, refresh: bool = False) -> list[Template]:
        return self.catalog.templates(refresh)

    def clear_cache(self) -> None:
        """Forget cached products, clusters and templates."""
        self.catalog.clear()

    def to_instance(self, raw: dict[str, Any]) -> Instance:
        """Parse a raw API instance, fill ``price_per_hour`` from the catalog and bind it."""
        return self.lifecycle.to_instance(raw)

    # -- single instances ------------------------------------------------------------------
    def instance(self, instance: InstanceRef) -> Instance:
        """A fresh Instance (an Instance, an id or an exact name), priced, bound to this client."""
        return self.lifecycle.resolve(instance)

    def start(self, instance: InstanceRef) -> Instance:
        """Start a stopped instance (an Instance, id or name); returns it refreshed. One already
        running or starting: nothing is sent (an INFO line says so)."""
        return self.lifecycle.start(instance).instance

    def stop(self, instance: InstanceRef) -> Instance:
        """Stop an instance (billing stops once exited); returns it refreshed. One already
        stopped or stopping: nothing is sent (an INFO line says so)."""
        return self.lifecycle.stop(instance).instance

    def restart(self, instance: InstanceRef) -> Instance:
        """Restart an instance (an Instance, id or name); returns it refreshed."""
        return self.lifecycle.restart(instance).instance

    def delete(self, instance: InstanceRef) -> Instance:
        """Delete an instance; returns it refreshed, or ``removed`` once the API forgot it.
        Idempotent: what is already gone (an id, or a name the ledger or this client knows)
        comes back ``removed``; a name nothing ever knew is a ``NotFoundError``."""
        return self.lifecycle.delete(instance).instance

    def edit(
        self,
        instance: InstanceRef,
        ports: Iterable[Any] | None = None,
        expand_root_disk_gb: int | None = None,
    ) -> Instance:
        """Add ports (``8080``, ``"8080/http"``...) and/or grow the root disk, no restart."""
        return self.lifecycle.edit(instance, ports, expand_root_disk_gb)

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
        """GPU products, one row per product × region, cheapest first. ``gpu`` matches loosely
        ("4090") or is a product id; ``region`` a name or id; ``billing`` lists that method's
        offers; ``max_price`` is USD per GPU-hour; ``gpu_num`` asks which can serve that many.
        A region's stock comes only from its own listing: with ``region``, ``available`` or
        ``detail=True`` the rows' ``available``/``stock`` are their region's; otherwise <NA>,
        with the API's aggregate in ``available_somewhere``/``stock_somewhere``."""
        return self.listings.products(
            gpu, region, gpu_num, billing, max_price, available, refresh, detail
        )

    def regions(self, refresh: bool = False, detail: bool = True) -> pd.DataFrame:
        """Regions with their GPU types, product counts, products in stock and the cheapest GPU
        in stock, each region's stock from its own listing (kept 15 s; ``detail=False`` skips
        them: ``products_available`` is <NA>, ``cheapest_gpu`` the cheapest listed)."""
        return self.listings.regions(refresh, detail)

    def instances(
        self, status: str | Iterable[str] | None = None, refresh: bool = False
    ) -> pd.DataFrame:
        """Every instance (all pages), newest first. ``status``: statuses and/or phases to keep
        (``"running"``, ``["exited", "failed"]``). ``refresh`` also reloads the price catalog."""
        return self.listings.instances(status, refresh)

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
        return self.listings.templates(name, type, channel, refresh)

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
        """Create an instance, falling back across regions; by default on the cheapest offer in
        stock anywhere (``prefer="region"``: the regions in order, ``region`` or
        ``default_region`` first, ``regions`` replacing the default order). Every keyword, what
        it accepts and its flag and cell key: docs/options.md; how offers are judged:
        docs/architecture.md. ``gpu`` matches loosely ("4090", a product id; None: any GPU).
        The result carries ``fallback_report``; with ``wait=True`` it returns once
        ``wait_until`` is reached.

        ``volumes`` (name or id, ``"my-data:/data"``) pin the create to their region;
        ``template`` supplies image, ports, envs, disk, command and registry auth (its id only).
        Names are unique among live instances (``unique_name=True`` adds a suffix); after an
        ambiguous failure the instance is looked up and adopted, so one call makes at most one.
        Over the client's ``spend_limit_per_hour``: ``BudgetExceededError``; no region can
        serve it: ``CapacityError`` (``attempts``, ``alternatives``).

        Guard rules bound its life past the kernel (docs/guard.md): ``stop_after`` and
        ``delete_after`` (deadlines: "2h" from now or "18:00Z"), ``idle_stop`` (below
        ``idle_threshold`` %), ``budget`` (USD total), ``budget_per_hour`` (the newest guarded
        stop first), ``warn_before``, ``on_reclaim`` (spot); they add to NOVITA_GUARD_*
        defaults, ``guard=False`` sets none. Bad arguments fail together, before any request.
        """
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        rules = {GUARD[name].name: given.pop(name) for name in _CREATE_RULES}
        guard_rules = self.guards.rules_for_create(given.pop("guard"), GUARD.parse(rules))
        request = prepare_request(**given)
        try:
            instance = self.provisioner.provision(
                request, guard=self.guards.create_guard(guard_rules)
            )
        except NovitaError as error:
            made = getattr(error, "created_instance", None)
            if isinstance(made, Instance):  # made, then its wait failed: it bills all the same
                self.guards.protect(made, guard_rules)
            raise
        self.guards.protect(instance, guard_rules)
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
        """Create several instances concurrently; one row per spec (name, instance_id, region,
        product, price_per_hour, status, error). ``specs``: a count (``<name_prefix>-1`` …) or
        create() keyword dicts, ``common`` filling what a spec leaves out (guard keywords too).
        One stock listing for the batch; the spend limit checked per create under one lock;
        ``progress(done, total, row)`` after each; ``all_or_nothing=True``: one failure deletes
        every instance the batch made."""
        options = {k: v for k, v in locals().items() if k not in ("self", "specs", "common")}
        return self.batch.create_many(specs, **options, **common)

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
        options = {k: v for k, v in locals().items() if k not in ("self", "name", "image")}
        return self.resources.create_template(name, image, **options)

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
        return self.watch(self.ledger_service.live_ids(), **kwargs)

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
        """Stop or delete the ledger's forgotten instances (a dry run by default;
        ``forget_gone=True`` forgets gone ones at once). See ``LedgerService.cleanup``."""
        options = {k: v for k, v in locals().items() if k != "self"}
        return self.ledger_service.cleanup(**options)

    # -- waiting (waiting/) --------------------------------------------------------------------
    def wait(
        self,
        instance: InstanceRef,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """Block until ``instance`` (an Instance, id or name) is ``until`` (``running``;
        ``reachable``: running and answering, or ``probe(instance)``; ``exited``; ``removed``)
        and return it fresh. Polls on a learned, adaptive schedule (``poll``: a ``Backoff`` or
        a fixed duration; None: the client's ``poll_interval`` when set). Raises
        ``InstanceFailedError`` on a statusError or a vanished instance, ``TimeoutError`` with
        ``last_status``; Ctrl-C stops waiting only. ``progress``: None (live in notebooks),
        ``"text"``, ``"silent"`` or ``progress(instance, elapsed, phase)``."""
        how = WAITING.parse(dict(until=until, timeout=timeout, progress=progress, poll=poll))
        return self.waiting.wait(instance_ref(instance), probe=probe, **how)

    async def wait_async(
        self,
        instance: InstanceRef,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """``await novita.wait_async(...)``: ``wait`` without blocking the event loop (it runs
        on the caller's loop, each call in its executor; cancelling stops the wait)."""
        how = WAITING.parse(dict(until=until, timeout=timeout, progress=progress, poll=poll))
        return await self.waiting.wait_async(instance_ref(instance), probe=probe, **how)

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
        """Watch instances in a daemon thread and return the running Watcher: ``instances``
        None for all of yours, or ids, names (resolved once) or Instances. Each tick makes one
        paginated list call; status changes go to ``callbacks``, ``notify`` (a
        ``webhooks.Notifier``) and ``watcher.events`` (first sightings too). ``interval`` None:
        ``poll_interval``, else 5 s. Each tick also enforces the guard rules and announces spot
        reclaim notices, with no extra call."""
        how = WAITING.parse(
            dict(interval=interval, page_size=page_size, stop_when_terminal=stop_when_terminal)
        )
        watcher = self.waiting.watch(
            instances, callbacks=callbacks, notify=notify, error_backoff=error_backoff, **how
        )
        self.guards.attach(watcher)
        return watcher

    # -- the guard (guard/) --------------------------------------------------------------------
    def guard(self, instance: InstanceRef, *, replace: bool = False, **rules: Any) -> GuardRecord:
        """Guard a running instance (Instance, id or name): ``stop_after``, ``delete_after``,
        ``idle_stop``, ``idle_threshold``, ``budget_per_hour``, ``budget_total``,
        ``warn_before``, ``on_reclaim`` as for ``create``. Merged into its current rules
        (``replace=True`` replaces them). Returns the stored record; starts the guard."""
        typed = GUARD.parse(GUARD.canonical(rules, "guard()"))
        return self.guards.guard(instance_ref(instance), replace=replace, **typed)

    def unguard(self, instance: InstanceRef, *rules: str) -> GuardRecord | None:
        """Remove an instance's guard rules: all, or the named ones ("idle", "budget"...).
        Returns what remains (None: no longer guarded)."""
        return self.guards.unguard(instance_ref(instance), *parse_rule_names(rules))

    def extend(
        self, instance: InstanceRef, duration: Any = "1h", rule: str | None = None
    ) -> GuardRecord:
        """Push a guarded instance's deadlines back by ``duration`` ("1h", "30m", "2 hours",
        seconds); ``rule`` "stop_after" or "delete_after" moves only that one."""
        delta, which = parse_extension(duration, rule)
        return self.guards.extend(instance_ref(instance), delta, which)

    def guard_status(self) -> GuardStatus:
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

    def classroom(self, n: int, gpu: str | None = None, **options: Any) -> Handout:
        """Teaching mode: ``n`` guarded instances named ``<prefix>-1..n`` with one deadline
        for all, returned as a ``Handout`` (name, Jupyter link, SSH command; ``to_csv()``,
        ``to_html()``). See ``teaching.classroom`` for the options."""
        from .teaching import classroom

        return classroom(self, n, gpu, **options)
