"""The ``%novita`` grammar: an argparse parser whose mistakes raise UsageError and whose
--help prints and returns, so neither ever ends the kernel.
"""

from __future__ import annotations

import argparse
import sys

from IPython.core.error import UsageError


class ParserExit(Exception):
    """argparse wanted to exit (after --help): end the command quietly, keep the kernel."""


class MagicArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError on bad input and never calls sys.exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise ParserExit()


def build_parser() -> MagicArgumentParser:
    """The full ``%novita`` grammar; each subcommand has its own --help."""
    parser = MagicArgumentParser(
        prog="%novita",
        description="Provision and manage Novita GPU instances from the notebook.",
        epilog=(
            "Offline: %novita sandbox start. Real cloud: set NOVITA_API_KEY, then "
            "%novita config --reload. Cell form: %%novita create, then one 'key: value' per "
            "line (name, gpu, region, regions, template, image, billing, max_price, envs, "
            "ports, wait, gpu_num, rootfs_gb, command, entrypoint, image_auth_id, timeout). "
            "Options: %config NovitaMagics.<default_region|billing|poll_interval|"
            "budget_per_hour|auto_sandbox|short_errors|sandbox_speed>."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("products", help="GPU products by region with price and stock")
    p.add_argument("--gpu", help='GPU model or product name, fuzzy ("4090", "A100")')
    p.add_argument("--region", help="region code, e.g. AS-SGP-02")
    p.add_argument("--max-price", dest="max_price", help="USD per hour ceiling")
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

    p = sub.add_parser("create", help="create an instance (cheapest match, region fallback)")
    p.add_argument("name", help="instance name (letters, digits, hyphens)")
    p.add_argument("--gpu", required=True, help='GPU model or product, e.g. "RTX 4090"')
    p.add_argument("--template", help="template id or name")
    p.add_argument("--region", help="preferred region")
    p.add_argument("--regions", help="regions to try in order, comma-separated")
    p.add_argument("--image", help="container image (overrides the template's)")
    p.add_argument("--billing", help="onDemand, spot or monthly")
    p.add_argument("--max-price", dest="max_price", help="USD per hour ceiling")
    p.add_argument("--gpu-num", dest="gpu_num", type=int, help="GPUs (default 1)")
    p.add_argument("--envs", help='environment, e.g. "A=1, B=2"')
    p.add_argument("--ports", help='ports, e.g. "8888/http, 22/tcp"')
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--wait", action="store_true", help="block until running, with progress")
    mode.add_argument(
        "--background", action="store_true", help="return at once and show a live panel"
    )

    p = sub.add_parser("wait", help="wait for an instance to reach a status")
    p.add_argument("target", metavar="ID_OR_NAME")
    p.add_argument("--until", default="running", help="status to reach (default running)")
    p.add_argument("--timeout", type=float, help="seconds before giving up")

    p = sub.add_parser("watch", help="live panel of instances, updated in the background")
    p.add_argument("targets", nargs="*", metavar="ID_OR_NAME")
    p.add_argument("--interval", type=float, help="seconds between polls")

    for action in ("start", "stop", "restart", "delete"):
        p = sub.add_parser(action, help=f"{action} an instance")
        p.add_argument("target", metavar="ID_OR_NAME")

    sub.add_parser("mine", help="instances this notebook created (survives kernel restarts)")

    p = sub.add_parser("cleanup", help="stop or delete the instances this notebook created")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="only show the plan")
    p.add_argument("--stop", action="store_true", help="stop them")
    p.add_argument("--delete", action="store_true", help="delete them")

    p = sub.add_parser("config", help="effective settings (API key masked)")
    p.add_argument("--reload", action="store_true", help="rebuild the session client from env/.env")

    p = sub.add_parser("sandbox", help="the offline in-process Novita cloud")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--speed", type=float, help="clock speed-up (default from config)")
    p.add_argument("--seed", type=int, help="catalog seed")
    return parser
