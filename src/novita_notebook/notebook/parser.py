"""The ``%novita`` grammar: an argparse parser whose mistakes raise UsageError (with the
subcommand's own usage) and whose --help prints and returns, so neither ends the kernel.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from IPython.core.error import UsageError

from ..validation import WAIT_TARGETS
from .commands import guard as guard_commands
from .spec import CREATE_OPTIONS, parse_seconds


class ParserExit(Exception):
    """argparse wanted to exit (after --help): end the command quietly, keep the kernel."""


class MagicArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError on bad input and never calls sys.exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, MagicArgumentParser] = {}

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise ParserExit()

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Like argparse, but an unknown option is reported by the subcommand it was given to,
        with that subcommand's usage and the closest option it does have."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            owner = self.commands.get(getattr(parsed, "subcommand", None) or "", self)
            owner.error(owner.unrecognized(extra))
        return parsed

    def unrecognized(self, extra: list[str]) -> str:
        import difflib  # only on a mistake: it costs ~10 ms at %load_ext

        message = f"unrecognized arguments: {' '.join(extra)}"
        known = [o for o in self._option_string_actions if o.startswith("--")]
        for word in extra:
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1)
            if word.startswith("-") and close:
                return f"{message} (did you mean {close[0]}?)"
        return message


def seconds(field: str) -> Any:
    """An argparse ``type`` for durations: validation.py's rule, its words in the usage error."""

    def parse(text: str) -> float:
        try:
            return parse_seconds(text, field)
        except ValueError as error:  # ValidationError is a ValueError
            raise argparse.ArgumentTypeError(getattr(error, "message", str(error))) from None

    return parse


def add_create_options(parser: argparse.ArgumentParser, *, name_required: bool = True) -> None:
    """The one option set of create, for the line magic and the cell magic's first line."""
    if name_required:
        parser.add_argument("name", help="instance name (letters, digits, hyphens)")
    else:
        parser.add_argument("name", nargs="?", help="instance name (or name: in the cell)")
    mode = parser.add_mutually_exclusive_group()
    for option in CREATE_OPTIONS:
        flag = "--" + option.key.replace("_", "-")
        target = mode if option.key in {"wait", "background"} else parser
        if option.kind == "flag":
            target.add_argument(flag, dest=option.key, action="store_true", help=option.help)
        elif option.kind == "list":
            aliases = ["--" + alias.replace("_", "-") for alias in option.aliases]
            target.add_argument(*aliases, flag, dest=option.key, action="append", help=option.help)
        else:
            target.add_argument(flag, dest=option.key, choices=option.choices, help=option.help)


def build_parser() -> MagicArgumentParser:
    """The full ``%novita`` grammar; each subcommand has its own --help."""
    parser = MagicArgumentParser(
        prog="%novita",
        description="Provision and manage Novita GPU instances from the notebook.",
        epilog=(
            "Offline: %novita sandbox start. Real cloud: set NOVITA_API_KEY, then "
            "%novita config --reload. Cell form: %%novita create, then one 'key: value' per "
            "line: name and the options of %novita create (gpu: RTX 4090, max_price: 0.5). "
            "Options: %config NovitaMagics.<default_region|billing|poll_interval|"
            "budget_per_hour|auto_sandbox|short_errors|sandbox_speed>."
        ),
    )
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")

    _add_catalog(sub)
    _add_instance_commands(sub)
    _add_session_commands(sub)
    guard_commands.add_parsers(sub)
    parser.commands = dict(sub.choices)
    return parser


def _add_catalog(sub: Any) -> None:
    """products, browse, regions, instances, templates."""
    p = sub.add_parser("products", help="GPU products by region with price and stock")
    p.add_argument("--gpu", help='GPU model or product name, fuzzy ("4090", "A100")')
    p.add_argument("--region", help="region code, e.g. AS-SGP-02")
    p.add_argument("--max-price", dest="max_price", help="USD per GPU-hour ceiling")
    p.add_argument("--billing", help="onDemand (default), spot or monthly")
    p.add_argument("--gpu-num", dest="gpu_num", type=int, help="GPUs per instance")
    p.add_argument("--available", action="store_true", help="only products in stock")
    p.add_argument("--refresh", action="store_true", help="bypass the product cache")

    p = sub.add_parser("browse", help="interactive product browser with a create form")
    p.add_argument("--gpu", help="initial GPU filter")
    p.add_argument("--region", help="initial region filter")

    sub.add_parser("regions", help="regions (clusters) and their GPU types")

    p = sub.add_parser("instances", help="instances on the account")
    p.add_argument("--status", help="only this status, e.g. running")

    sub.add_parser("templates", help="templates you can create from")

    sub.add_parser("storages", help="network volumes: name, id, region, size, price")


def _add_instance_commands(sub: Any) -> None:
    """create, wait, watch and the lifecycle verbs."""
    p = sub.add_parser("create", help="create an instance (cheapest match, region fallback)")
    add_create_options(p)

    p = sub.add_parser("wait", help="wait for an instance to reach a status")
    p.add_argument("target", metavar="ID_OR_NAME")
    p.add_argument(
        "--until", default="running", choices=WAIT_TARGETS, help="status to reach (default running)"
    )
    p.add_argument("--timeout", type=seconds("timeout"), help="seconds before giving up")

    p = sub.add_parser("watch", help="live panel of instances, updated in the background")
    p.add_argument("targets", nargs="*", metavar="ID_OR_NAME")
    p.add_argument("--interval", type=seconds("interval"), help="seconds between polls")
    p.add_argument(
        "--keep", action="store_true", help="keep the session's other panels running too"
    )

    for action in ("start", "stop", "restart", "delete"):
        p = sub.add_parser(action, help=f"{action} an instance")
        p.add_argument("target", metavar="ID_OR_NAME")


def _add_session_commands(sub: Any) -> None:
    """mine, cleanup, config, sandbox."""
    sub.add_parser("mine", help="instances this notebook created (survives kernel restarts)")

    p = sub.add_parser(
        "cleanup",
        help="stop or delete the instances this notebook created",
        description="Without --stop or --delete: a preview of what each would do, row by row.",
    )
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="only show the plan")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--stop", action="store_true", help="stop the running ones")
    act.add_argument("--delete", action="store_true", help="delete them")

    p = sub.add_parser("config", help="effective settings (API key masked)")
    p.add_argument("--reload", action="store_true", help="rebuild the session client from env/.env")

    p = sub.add_parser("sandbox", help="the offline in-process Novita cloud")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--speed", type=float, help="clock speed-up (default from config)")
    p.add_argument("--seed", type=int, help="catalog seed")

    p = sub.add_parser("doctor", help="check the client's assumptions against the API (read-only)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per call (10)")


def build_cell_parser() -> MagicArgumentParser:
    """The first line of ``%%novita create``: the same options as the line magic; the cell
    body gives the rest, one ``key: value`` per line."""
    parser = MagicArgumentParser(
        prog="%%novita create",
        description="Create an instance from a cell: one 'key: value' per line.",
    )
    add_create_options(parser, name_required=False)
    return parser
