"""The ``%novita`` line magic and ``%%novita`` cell magic: one argparse-driven implementation
whose mistakes raise UsageError or print one short message, and never end the kernel.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope
from IPython.utils.text import DollarFormatter
from traitlets import observe, validate
from traitlets.config.configurable import Configurable

from ..errors import ConfigError, NovitaError, ValidationError
from ..models import Instance
from ..options import SESSION
from . import traits as trait_options
from .commands import CELL_COMMANDS, COMMANDS
from .commands.common import Client, accepted
from .parser import ParserExit, build_parser, strip_comment
from .wording import in_magic_terms

NO_KEY_MESSAGE = (
    "No Novita API key is configured for this session.\n"
    "Offline: run %novita sandbox start (an in-process Novita cloud, no credentials).\n"
    "Real cloud: set NOVITA_API_KEY (environment or .env) and run %novita config --reload."
)


class SessionMagics(Magics, Configurable):
    """``%novita COMMAND ...`` and ``%%novita create`` (see ``%novita --help``).

    Its ``%config NovitaMagics.<option>`` traits are generated from the option families
    (docs/options.md), each checked by its option's rule. ``auto_sandbox`` defaults to False:
    with no API key configured the first command explains how to start the offline sandbox
    instead of silently pretending to be the real cloud (an instance "created" in a simulator
    must never be mistaken for a real one). Teaching setups turn it on with
    ``%config NovitaMagics.auto_sandbox = True`` or by setting ``NOVITA_AUTO_SANDBOX=1``
    before ``%load_ext``; Binder needs neither, as binder/start runs a sandbox and exports
    NOVITA_API_URL and NOVITA_API_KEY for it.
    """

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client: Client | None = None
        self.sandbox_client: Client | None = None  # the client that owns the session's sandbox
        self.panels: list[Any] = []
        self.live_tops: dict[str, Any] = {}
        self.parser = build_parser()

    # -- options -------------------------------------------------------------------------------
    def _check_option(self, proposal: Any) -> Any:
        return trait_options.checked(proposal["trait"].name, proposal["value"])

    def _option_changed(self, change: Any) -> None:
        name = change["name"]
        if name in trait_options.DEPRECATED_TRAITS:  # an old name: set the new one, forget it
            if change["new"] is not None:
                setattr(self, trait_options.renamed(name), change["new"])
                setattr(self, name, None)
            return
        # %config takes effect at once on the session client, not only on the next one.
        client = getattr(self, "_client", None)  # options may arrive during __init__
        if client is not None:
            trait_options.apply_to_client(self, client, name)

    @property
    def client(self) -> Client | None:
        """The session's client (None until the first command builds it)."""
        return self._client

    @client.setter
    def client(self, value: Client | None) -> None:
        self._client = value
        if value is not None:
            trait_options.apply_to_client(self, value)

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
            # An error that renders itself (a run that failed on the instance) fails the cell.
            if not self.short_errors or hasattr(error, "_render_traceback_"):
                raise
            self.show_error(error, fields=cell is None)
            return None

    def show_error(self, error: NovitaError, *, fields: bool = True) -> None:
        """One short message and the hint on stderr (which notebooks tint red), in the
        magic's words: flags and %novita commands, not Python calls."""
        message = getattr(error, "message", None) or str(error)
        text = f"{type(error).__name__}: {in_magic_terms(message, fields=fields)}"
        hint = getattr(error, "hint", None)
        if hint:
            text += f"\nHint: {in_magic_terms(hint, fields=False)}"
        print(text, file=sys.stderr)

    def _run_line(self, line: str) -> Any:
        try:
            argv = shlex.split(strip_comment(line))
        except ValueError as error:
            raise UsageError(f"%novita: cannot parse the line ({error})") from None
        if not argv:
            self.parser.print_help()
            return None
        args = self.parser.parse_args(argv)
        if args.subcommand is None:
            self.parser.print_help()
            return None
        return COMMANDS[args.subcommand](self, args)

    def _run_cell(self, line: str, cell: str, local_ns: dict) -> Any:
        try:
            argv = shlex.split(strip_comment(line))
        except ValueError as error:
            raise UsageError(f"%%novita: cannot parse the line ({error})") from None
        if not argv or argv[0] not in CELL_COMMANDS:
            verbs = ", ".join(f"%%novita {verb}" for verb in CELL_COMMANDS)
            raise UsageError(f"%%novita: the cell forms are {verbs}")
        return CELL_COMMANDS[argv[0]](self, argv[1:], cell, local_ns)

    def expand(self, text: str, local_ns: dict) -> str:
        """``$var`` and ``{expr}`` in a cell body, as IPython does for line magics."""
        namespace = dict(self.shell.user_ns) if self.shell is not None else {}
        namespace.update(local_ns)
        try:
            return DollarFormatter().vformat(text, args=[], kwargs=namespace)
        except Exception:  # same policy as IPython: leave text unexpanded when it cannot
            return text

    # -- the session client --------------------------------------------------------------------
    def get_client(self) -> Any:
        """The session's client, built from env/.env on first use (or the sandbox)."""
        if self.client is not None:
            return self.client
        from ..client import Novita

        try:
            client = Novita()
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
        options = accepted(
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
        self.sandbox_client.close()
        self.sandbox_client.sandbox_server.stop()
        self.sandbox_client = None
        print(f"Sandbox at {url} stopped.")

    def close_client(self) -> None:
        """Stop this session's live panels and GPU views and forget the client (the sandbox
        stays up)."""
        for panel in [*self.panels, *self.live_tops.values()]:
            panel.stop()
        self.panels.clear()
        self.live_tops.clear()
        if self.client is not None and self.client is not self.sandbox_client:
            self.client.close()
        self.client = None

    def shutdown(self) -> None:
        self.close_client()
        if self.sandbox_client is not None:
            self.sandbox_client.close()
            self.sandbox_client.sandbox_server.stop()
            self.sandbox_client = None

    # -- panels ------------------------------------------------------------------------------
    def open_panel(
        self,
        ids: list[str] | None,
        interval: float | None,
        *,
        keep: bool = False,
        seed: list[Any] | None = None,
    ) -> Any:
        """A live panel of ``ids`` (None: all). It replaces the session's earlier panels and
        stops their watchers, unless ``keep``; ``seed`` rows show before the first poll."""
        from .widgets import InstancePanel

        if not keep:
            for panel in self.panels:
                panel.stop()
            self.panels.clear()
        # interval None: the client's poll_interval (which %config NovitaMagics.poll_interval sets).
        panel = InstancePanel(self.get_client(), instances=ids, interval=interval)
        for instance in seed or ():
            panel.apply(instance)
        self.panels.append(panel)
        return panel


_OPTION_TRAITS = trait_options.traits()
NovitaMagics = magics_class(
    type(
        "NovitaMagics",
        (SessionMagics,),
        {
            "__module__": __name__,
            "__doc__": SessionMagics.__doc__,
            **_OPTION_TRAITS,
            "_check_option": validate(*_OPTION_TRAITS)(SessionMagics._check_option),
            "_option_changed": observe(*_OPTION_TRAITS)(SessionMagics._option_changed),
        },
    )
)


def _display_instance(instance: Instance) -> None:
    from .card import display_instance

    display_instance(instance)


#: Results of magics that already said what happened (module, class name).
_QUIET_TYPES = (
    ("novita_notebook.remote.kernel", "RemoteKernel"),
    ("novita_notebook.remote.files", "Transfer"),
)


def _display_unless_said(obj: Any) -> None:
    from IPython.display import display

    from .display import already_shown

    if not already_shown(obj):
        display({"text/plain": repr(obj)}, raw=True)


def _count_products(frame: Any) -> int:
    """Distinct GPU products in a products listing (one row per product and region)."""
    try:
        for column in ("product_id", "id", "product", "name"):
            if column in frame.columns:
                return int(frame[column].nunique())
        return len(frame)
    except AttributeError:
        return len({getattr(p, "id", p) for p in frame})


_LOADED: dict[int, SessionMagics] = {}


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
    ipython.display_formatter.ipython_display_formatter.for_type(Instance, _display_instance)
    # What a magic returns after saying it in one line (a remote kernel, a transfer) shows
    # nothing more in that cell; elsewhere its text (named: importing them costs time here).
    for module, name in _QUIET_TYPES:
        ipython.display_formatter.ipython_display_formatter.for_type_by_name(
            module, name, _display_unless_said
        )
    _LOADED[id(ipython)] = magics
    for option in SESSION:  # the session options the environment sets (NOVITA_AUTO_SANDBOX...)
        text = os.environ.get(option.env or "")
        if option.trait and text and text.strip():
            try:
                setattr(magics, option.trait, option.parse_text(text))
            except ValidationError as error:
                print(f"Ignored {option.env}: {error.problems[0][1]}", file=sys.stderr)
    # Guarded instances left by an earlier kernel: a guard must answer (in the background).
    from ..guard import ensure_guard_in_background

    ensure_guard_in_background()


def unload_ipython_extension(ipython: Any) -> None:
    """Stop panels and the session sandbox, and remove the magics."""
    magics = _LOADED.pop(id(ipython), None)
    if magics is None:
        return
    magics.shutdown()
    formatter = ipython.display_formatter.ipython_display_formatter
    formatter.type_printers.pop(Instance, None)
    for module, name in _QUIET_TYPES:
        formatter.deferred_printers.pop((module, name), None)
        for kind in [
            k for k in formatter.type_printers if (k.__module__, k.__name__) == (module, name)
        ]:
            formatter.type_printers.pop(kind)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    manager = ipython.magics_manager
    manager.magics["line"].pop("novita", None)
    manager.magics["cell"].pop("novita", None)
    manager.registry.pop("NovitaMagics", None)


def get_magics(ipython: Any) -> SessionMagics | None:
    """The loaded NovitaMagics of a shell (tests and the demo use it)."""
    return _LOADED.get(id(ipython))
