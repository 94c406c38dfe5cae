"""The ``%novita`` line magic and ``%%novita`` cell magic: one argparse-driven implementation
whose mistakes raise UsageError or print one short message, and never end the kernel.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope
from IPython.utils.text import DollarFormatter
from traitlets import Bool, Float, TraitError, Unicode, observe, validate
from traitlets.config.configurable import Configurable

from ..errors import ConfigError, NovitaError, ValidationError
from ..models import Instance
from . import spec as specs
from .parser import ParserExit, build_parser

NO_KEY_MESSAGE = (
    "No Novita API key is configured for this session.\n"
    "Offline: run %novita sandbox start (an in-process Novita cloud, no credentials).\n"
    "Real cloud: set NOVITA_API_KEY (environment or .env) and run %novita config --reload."
)


def _accepted(fn: Callable[..., Any], kwargs: dict[str, Any], what: str) -> dict[str, Any]:
    """Drop None values; refuse keywords ``fn`` does not take, naming them (not a TypeError)."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins or C callables: trust the caller
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValidationError(f"{what} does not accept {', '.join(unknown)}", field=unknown[0])
    return kwargs


@magics_class
class NovitaMagics(Magics, Configurable):
    """``%novita COMMAND ...`` and ``%%novita create`` (see ``%novita --help``).

    ``auto_sandbox`` defaults to False: with no API key configured the first command explains
    how to start the offline sandbox instead of silently pretending to be the real cloud (an
    instance "created" in a simulator must never be mistaken for a real one). Teaching setups
    turn it on with ``%config NovitaMagics.auto_sandbox = True`` or by setting
    ``NOVITA_AUTO_SANDBOX=1`` before ``%load_ext``; Binder needs neither, as binder/start runs
    a sandbox and exports NOVITA_API_URL and NOVITA_API_KEY for it.
    """

    default_region = Unicode(
        None, allow_none=True, help="Region preferred by create when none is given."
    ).tag(config=True)
    billing = Unicode(
        None, allow_none=True, help="Billing method for products/create: onDemand, spot, monthly."
    ).tag(config=True)
    poll_interval = Float(
        None, allow_none=True, help="Seconds between polls for watch and wait."
    ).tag(config=True)
    budget_per_hour = Float(
        None, allow_none=True, help="Refuse creates that push live spend above this USD/hour."
    ).tag(config=True)
    auto_sandbox = Bool(
        False, help="Start the offline sandbox automatically when no API key is configured."
    ).tag(config=True)
    short_errors = Bool(
        True, help="Show user and API errors as one short message with a hint (no traceback)."
    ).tag(config=True)
    sandbox_speed = Float(
        50.0, help="Clock speed-up of the sandbox started by %novita sandbox start."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client: Any = None
        self._base_configs: dict[int, Any] = {}  # each client's config before our overrides
        self.sandbox_client: Any = None  # the client that owns the session's sandbox
        self.panels: list[Any] = []
        self.parser = build_parser()

    # -- options -------------------------------------------------------------------------------
    @validate("billing")
    def _check_billing(self, proposal: Any) -> Any:
        try:
            return specs.parse_billing(proposal["value"])
        except ValidationError as error:
            raise TraitError(f"NovitaMagics.billing: {error.message}") from None

    @validate("poll_interval", "budget_per_hour", "sandbox_speed")
    def _check_positive(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value <= 0:
            name = proposal["trait"].name
            raise TraitError(f"NovitaMagics.{name} must be greater than 0, got {value}")
        return value

    @observe("default_region", "budget_per_hour", "poll_interval")
    def _options_changed(self, change: Any) -> None:
        # %config takes effect at once on the session client, not only on the next one.
        client = getattr(self, "_client", None)  # options may arrive during __init__
        if client is not None:
            self._apply_options(client)

    @property
    def client(self) -> Any:
        """The session's client (None until the first command builds it)."""
        return self._client

    @client.setter
    def client(self, value: Any) -> None:
        self._client = value
        if value is not None:
            self._apply_options(value)

    def _apply_options(self, client: Any) -> None:
        """Overlay the magic's options on the client's own config (env/.env/arguments)."""
        config = getattr(client, "config", None)
        if config is None or not dataclasses.is_dataclass(config):
            return
        base = self._base_configs.setdefault(id(client), config)
        overrides = {k: v for k, v in self.client_options().items() if v is not None}
        client.config = dataclasses.replace(base, **overrides)

    # -- entry point ---------------------------------------------------------------------------
    @needs_local_scope
    @line_cell_magic
    def novita(self, line: str, cell: str | None = None, local_ns: dict | None = None) -> Any:
        """Run a %novita subcommand; see ``%novita --help``."""
        try:
            if cell is not None:
                return self._run_cell(line, cell, local_ns or {})
            return self._run_line(line)
        except ParserExit:
            return None
        except NovitaError as error:
            if not self.short_errors:
                raise
            self.show_error(error)
            return None

    def show_error(self, error: NovitaError) -> None:
        """One short message and the hint on stderr (which notebooks tint red)."""
        message = getattr(error, "message", None) or str(error)
        text = f"{type(error).__name__}: {message}"
        hint = getattr(error, "hint", None)
        if hint:
            text += f"\nHint: {hint}"
        print(text, file=sys.stderr)

    def _run_line(self, line: str) -> Any:
        try:
            argv = shlex.split(line)
        except ValueError as error:
            raise UsageError(f"%novita: cannot parse the line ({error})") from None
        if not argv:
            self.parser.print_help()
            return None
        args = self.parser.parse_args(argv)
        return getattr(self, f"cmd_{args.command}")(args)

    def _run_cell(self, line: str, cell: str, local_ns: dict) -> Any:
        try:
            argv = shlex.split(line)
        except ValueError as error:
            raise UsageError(f"%%novita: cannot parse the line ({error})") from None
        if argv and argv[0] != "create":
            raise UsageError("%%novita: the cell form takes a create spec; use %%novita create")
        flags = set(argv[1:])
        unknown = flags - {"--wait", "--background"}
        if unknown:
            raise UsageError(f"%%novita create: unknown option(s) {', '.join(sorted(unknown))}")
        body = self.expand(cell, local_ns)
        kwargs = specs.parse_cell_spec(body)
        wait = bool(kwargs.pop("wait", False)) or "--wait" in flags
        return self.create_instance(kwargs, wait=wait, background="--background" in flags)

    def expand(self, text: str, local_ns: dict) -> str:
        """``$var`` and ``{expr}`` in a cell body, as IPython does for line magics."""
        namespace = dict(self.shell.user_ns) if self.shell is not None else {}
        namespace.update(local_ns)
        try:
            return DollarFormatter().vformat(text, args=[], kwargs=namespace)
        except Exception:  # same policy as IPython: leave text unexpanded when it cannot
            return text

    # -- the session client --------------------------------------------------------------------
    def client_options(self) -> dict[str, Any]:
        return {
            "default_region": self.default_region,
            "budget_per_hour": self.budget_per_hour,
            "poll_interval": self.poll_interval,
        }

    def get_client(self) -> Any:
        """The session's client, built from env/.env on first use (or the sandbox)."""
        if self.client is not None:
            return self.client
        from ..client import Novita

        try:
            client = Novita(**_accepted(Novita, self.client_options(), "Novita()"))
        except ConfigError as error:
            # Only a missing key means "no credentials": other config mistakes are shown.
            fields = {field for field, _rule in error.problems} or {error.field}
            if fields != {"api_key"} or os.environ.get("NOVITA_API_KEY"):
                raise
            client = None
        if client is None:
            if not self.auto_sandbox:
                raise ConfigError(NO_KEY_MESSAGE, field="NOVITA_API_KEY", hint="")
            self.start_sandbox()
            return self.client
        self.client = client
        return client

    def start_sandbox(self, speed: float | None = None, seed: int | None = None) -> Any:
        from ..client import Novita

        if self.sandbox_client is not None:
            server = self.sandbox_client.sandbox_server
            print(f"Sandbox already running at {server.url}. This session talks to it.")
            self.client = self.sandbox_client
            return server
        self.close_client()
        options = _accepted(
            Novita.sandbox, {"speed": speed or self.sandbox_speed, "seed": seed}, "sandbox"
        )
        client = Novita.sandbox(**options)
        self.sandbox_client = self.client = client
        server = client.sandbox_server
        regions = len(client.regions())
        products = _count_products(client.products())
        print(
            f"Sandbox running at {server.url} ({regions} regions, {products} GPU products). "
            "This session now talks to it.\n"
            "Switch to the real cloud any time: set NOVITA_API_KEY and run %novita config --reload."
        )
        return server

    def stop_sandbox(self) -> None:
        if self.sandbox_client is None:
            print("No sandbox is running in this session.")
            return
        url = self.sandbox_client.sandbox_server.url
        if self.client is self.sandbox_client:
            self.close_client()
        self._base_configs.pop(id(self.sandbox_client), None)
        self.sandbox_client.close()
        self.sandbox_client.sandbox_server.stop()
        self.sandbox_client = None
        print(f"Sandbox at {url} stopped.")

    def close_client(self) -> None:
        """Stop this session's live panels and forget the client (the sandbox stays up)."""
        for panel in self.panels:
            panel.stop()
        self.panels.clear()
        if self.client is not None and self.client is not self.sandbox_client:
            self._base_configs.pop(id(self.client), None)
            self.client.close()
        self.client = None

    def shutdown(self) -> None:
        self.close_client()
        if self.sandbox_client is not None:
            self.sandbox_client.close()
            self.sandbox_client.sandbox_server.stop()
            self.sandbox_client = None

    # -- commands ------------------------------------------------------------------------------
    def cmd_None(self, args: argparse.Namespace) -> None:  # noqa: N802 - dispatch name
        self.parser.print_help()

    def cmd_products(self, args: argparse.Namespace) -> Any:
        client = self.get_client()
        kwargs = {
            "gpu": args.gpu,
            "region": args.region,
            "gpu_num": args.gpu_num,
            "billing": specs.parse_billing(args.billing or self.billing),
            "max_price": specs.parse_price(args.max_price),
            "available": True if args.available else None,
            "refresh": True if args.refresh else None,
        }
        return client.products(**_accepted(client.products, kwargs, "products()"))

    def cmd_browse(self, args: argparse.Namespace) -> Any:
        from .widgets import ProductBrowser

        return ProductBrowser(self.get_client(), gpu=args.gpu, region=args.region)

    def cmd_regions(self, args: argparse.Namespace) -> Any:
        return self.get_client().regions()

    def cmd_instances(self, args: argparse.Namespace) -> Any:
        client = self.get_client()
        return client.instances(
            **_accepted(client.instances, {"status": args.status}, "instances()")
        )

    def cmd_templates(self, args: argparse.Namespace) -> Any:
        return self.get_client().templates()

    def cmd_create(self, args: argparse.Namespace) -> Any:
        raw = {
            "name": args.name,
            "gpu": args.gpu,
            "template": args.template,
            "region": args.region,
            "regions": args.regions,
            "image": args.image,
            "billing": args.billing,
            "max_price": args.max_price,
            "gpu_num": args.gpu_num,
            "envs": args.envs,
            "ports": args.ports,
        }
        kwargs = specs.normalise_create_kwargs(raw)
        return self.create_instance(kwargs, wait=args.wait, background=args.background)

    def create_instance(self, kwargs: dict[str, Any], *, wait: bool, background: bool) -> Any:
        """Create, show the fallback report, then wait with progress or hand back a panel."""
        from IPython.display import display

        client = self.get_client()
        timeout = kwargs.pop("timeout", None)
        if "region" not in kwargs and "regions" not in kwargs and self.default_region:
            kwargs["region"] = self.default_region
        if "billing" not in kwargs and self.billing:
            kwargs["billing"] = specs.parse_billing(self.billing)
        kwargs["wait"] = False
        instance = client.create(**_accepted(client.create, kwargs, "create()"))
        report = getattr(instance, "fallback_report", None)
        if report is not None:
            display(report)
        if background:
            return self.open_panel([instance.id], None)
        if wait:
            return self.wait_for(instance, "running", timeout)
        return instance

    def wait_for(self, instance: Any, until: str, timeout: float | None) -> Any:
        from .widgets import WaitProgress

        client = self.get_client()
        progress = WaitProgress(instance.name, until=until).display()
        kwargs = {"until": until, "timeout": timeout, "progress": progress.update}
        try:
            final = client.wait(instance, **_accepted(client.wait, kwargs, "wait()"))
        except KeyboardInterrupt:
            # Ctrl-C ends the waiting, not the instance: say so and hand back what we know.
            print(
                f"Stopped waiting; {instance.name} keeps going in the cloud. "
                f"Resume with %novita wait {instance.name}, or %novita stop {instance.name}.",
                file=sys.stderr,
            )
            return instance
        finally:
            progress.finish()
        if getattr(final, "fallback_report", None) is None and hasattr(final, "fallback_report"):
            final.fallback_report = getattr(instance, "fallback_report", None)
        return final

    def cmd_wait(self, args: argparse.Namespace) -> Any:
        instance = self.get_client().instance(args.target)
        return self.wait_for(instance, args.until, args.timeout)

    def cmd_watch(self, args: argparse.Namespace) -> Any:
        client = self.get_client()
        ids = [client.instance(target).id for target in args.targets] or None
        return self.open_panel(ids, args.interval)

    def open_panel(self, ids: list[str] | None, interval: float | None) -> Any:
        from .widgets import InstancePanel

        panel = InstancePanel(
            self.get_client(), instances=ids, interval=interval or self.poll_interval
        )
        self.panels.append(panel)
        return panel

    def _action(self, verb: str, target: str) -> Any:
        client = self.get_client()
        instance = client.instance(target)
        result = getattr(client, verb)(instance.id)
        print(f"{verb.capitalize()} requested for {instance.name} ({instance.id}).")
        return result if result is not None else None

    def cmd_start(self, args: argparse.Namespace) -> Any:
        return self._action("start", args.target)

    def cmd_stop(self, args: argparse.Namespace) -> Any:
        return self._action("stop", args.target)

    def cmd_restart(self, args: argparse.Namespace) -> Any:
        return self._action("restart", args.target)

    def cmd_delete(self, args: argparse.Namespace) -> Any:
        return self._action("delete", args.target)

    def cmd_mine(self, args: argparse.Namespace) -> Any:
        return self.get_client().mine()

    def cmd_cleanup(self, args: argparse.Namespace) -> Any:
        client = self.get_client()
        dry_run = args.dry_run or not (args.stop or args.delete)
        if dry_run and not args.dry_run:
            print("Showing the plan only; add --stop or --delete to act on it.")
        kwargs = {"stop": args.stop, "delete": args.delete, "dry_run": dry_run}
        return client.cleanup(**_accepted(client.cleanup, kwargs, "cleanup()"))

    def cmd_config(self, args: argparse.Namespace) -> Any:
        if args.reload:
            if self.sandbox_client is not None:
                self.stop_sandbox()
            self.close_client()
            client = self.get_client()
            print(f"Session client rebuilt; talking to {client.config.api_url}.")
        client = self.get_client()
        settings = dict(client.config.to_dict())
        settings["session"] = "sandbox" if client is self.sandbox_client else "api"
        settings["magics"] = {
            name: getattr(self, name)
            for name in (
                "default_region",
                "billing",
                "poll_interval",
                "budget_per_hour",
                "auto_sandbox",
                "short_errors",
                "sandbox_speed",
            )
        }
        return settings

    def cmd_sandbox(self, args: argparse.Namespace) -> Any:
        if args.action == "start":
            self.start_sandbox(args.speed, args.seed)
            return None
        if args.action == "stop":
            self.stop_sandbox()
            return None
        running = self.sandbox_client is not None
        status = {
            "running": running,
            "url": self.sandbox_client.sandbox_server.url if running else None,
            "session_uses_sandbox": running and self.client is self.sandbox_client,
        }
        print(f"Sandbox running at {status['url']}." if running else "No sandbox in this session.")
        return status


def _instance_mimebundle(instance: Instance) -> dict[str, Any] | None:
    from .widgets import instance_mimebundle

    return instance_mimebundle(instance)


def _count_products(frame: Any) -> int:
    """Distinct GPU products in a products listing (one row per product and region)."""
    try:
        for column in ("product_id", "id", "product", "name"):
            if column in frame.columns:
                return int(frame[column].nunique())
        return len(frame)
    except AttributeError:
        return len({getattr(p, "id", p) for p in frame})


_LOADED: dict[int, NovitaMagics] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%novita``/``%%novita`` on this shell (idempotent)."""
    if id(ipython) in _LOADED:
        return
    magics = NovitaMagics(shell=ipython, config=ipython.config)
    ipython.register_magics(magics)
    # %config NovitaMagics.<option> only reaches configurables the shell knows about.
    ipython.configurables.append(magics)
    # Bound Instances display as a card with Start/Stop/Delete buttons (ipywidgets is only
    # imported when the first Instance is displayed).
    ipython.display_formatter.mimebundle_formatter.for_type(Instance, _instance_mimebundle)
    _LOADED[id(ipython)] = magics
    if os.environ.get("NOVITA_AUTO_SANDBOX", "").lower() in {"1", "true", "yes"}:
        magics.auto_sandbox = True


def unload_ipython_extension(ipython: Any) -> None:
    """Stop panels and the session sandbox, and remove the magics."""
    magics = _LOADED.pop(id(ipython), None)
    if magics is None:
        return
    magics.shutdown()
    ipython.display_formatter.mimebundle_formatter.type_printers.pop(Instance, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    manager = ipython.magics_manager
    manager.magics["line"].pop("novita", None)
    manager.magics["cell"].pop("novita", None)
    manager.registry.pop("NovitaMagics", None)


def get_magics(ipython: Any) -> NovitaMagics | None:
    """The loaded NovitaMagics of a shell (tests and the demo use it)."""
    return _LOADED.get(id(ipython))
