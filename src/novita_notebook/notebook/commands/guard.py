"""``%novita guard`` (set rules, ``--no-guard``, ``status``) and ``%novita extend``, and the
session's guard defaults from ``%config NovitaMagics.guard_*``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import ValidationError

#: ``%config NovitaMagics.<trait>`` → the guard rule it sets for the session's creates.
SESSION_TRAITS = {
    "guard_stop_after": "stop_after",
    "guard_idle_stop": "idle_stop",
    "guard_budget_total": "budget_total",
    "guard_on_reclaim": "on_reclaim",
}
#: ``%novita guard`` option dest → rule keyword.
OPTION_RULES = {
    "stop_after": "stop_after",
    "delete_after": "delete_after",
    "idle": "idle_stop",
    "idle_threshold": "idle_threshold",
    "budget_hour": "budget_per_hour",
    "budget_total": "budget_total",
    "on_reclaim": "on_reclaim",
    "warn_before": "warn_before",
}


def add_parsers(sub: Any) -> None:
    """The ``guard`` and ``extend`` subcommands (called from parser.py)."""
    p = sub.add_parser(
        "guard",
        help="bound an instance's life: deadline, idle stop, budget, spot policy; or status",
        description="%novita guard NAME --stop-after 2h --idle 30m | NAME --no-guard | status",
    )
    p.add_argument("target", metavar="NAME_OR_ID|status")
    p.add_argument("--stop-after", dest="stop_after", help="stop at a deadline: 2h, 90m, a time")
    p.add_argument("--delete-after", dest="delete_after", help="delete at a deadline")
    p.add_argument("--idle", help="stop after GPU use stays low this long, e.g. 30m")
    p.add_argument("--idle-threshold", dest="idle_threshold", help="idle below this %% (5)")
    p.add_argument("--budget-hour", dest="budget_hour", help="USD/h cap (newest stop first)")
    p.add_argument("--budget-total", dest="budget_total", help="USD cap since now")
    p.add_argument("--on-reclaim", dest="on_reclaim", choices=("notify", "migrate", "recreate"))
    p.add_argument("--warn-before", dest="warn_before", help="warning lead, e.g. 5m")
    p.add_argument("--replace", action="store_true", help="replace the rules, not merge")
    p.add_argument(
        "--no-guard", dest="no_guard", nargs="*", metavar="RULE",
        help="remove all rules, or the named ones (stop_after, idle, budget...)",
    )  # fmt: skip

    p = sub.add_parser("extend", help="push a guarded instance's deadline back, e.g. 1h")
    p.add_argument("target", metavar="NAME_OR_ID")
    p.add_argument("duration", nargs="?", default="1h", help="how much later (default 1h)")
    p.add_argument("--rule", choices=("stop_after", "delete_after"), help="only this deadline")


def guard(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    if args.target == "status":
        from IPython.display import display

        display(client.guard_status())  # a table in notebooks, the text lines elsewhere
        return None
    if args.no_guard is not None:
        remaining = client.unguard(args.target, *args.no_guard)
        print(
            f"{args.target}: no longer guarded."
            if remaining is None
            else f"{args.target}: {remaining.rules.describe()}"
        )
        return None
    rules = {rule: getattr(args, dest) for dest, rule in OPTION_RULES.items()}
    rules = {k: v for k, v in rules.items() if v is not None}
    record = client.guard(args.target, replace=args.replace, **rules)
    print(f"Guarding {record.name or args.target} ({record.id}): {record.rules.describe()}.")
    _say_process(client)
    return None


def extend(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    record = client.extend(args.target, args.duration, args.rule)
    print(f"{record.name or args.target} ({record.id}): {record.rules.describe()}.")
    return None


def _say_process(client: Any) -> None:
    process = client.guards.process or {}
    if process.get("running"):
        print(f"Guard process running (pid {process.get('pid')}); it outlives this kernel.")
    else:
        reason = process.get("reason") or "not started"
        print(f"Guard process: {reason}. The in-kernel guard enforces the rules meanwhile.")


def check_default(trait: str, value: Any) -> Any:
    """Validate a ``%config NovitaMagics.guard_*`` value by the rule it sets."""
    if value is None or trait not in SESSION_TRAITS:
        return value
    from ...guard.rules import GuardRules

    try:
        GuardRules.parse(**{SESSION_TRAITS[trait]: value})
    except ValidationError as error:
        from traitlets import TraitError

        raise TraitError(f"NovitaMagics.{trait}: {error.message}") from None
    return value


def apply_session(magics: Any, client: Any) -> None:
    """Give the client the session's guard defaults and show guard events in the notebook."""
    guards = getattr(client, "guards", None)
    if guards is None:
        return
    guards.session_defaults = {
        rule: getattr(magics, trait)
        for trait, rule in SESSION_TRAITS.items()
        if getattr(magics, trait, None) is not None
    }
    guards.autostart = None if getattr(magics, "guard_autostart", True) else False


COMMANDS = {"guard": guard, "extend": extend}
#: The traits whose change reaches the session client at once.
TRAITS = (*SESSION_TRAITS, "guard_autostart")
