"""``%novita guard`` (set rules, ``--no-guard``, ``status``) and ``%novita extend``. Their
flags are the guard rules' own (options/guard.py); the session's defaults are the
``%config NovitaMagics.guard_*`` traits (notebook/traits.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from ...options import GUARD
from ..parser import option_values
from .common import Client, Session


def guard(magics: Session, args: argparse.Namespace) -> Any:
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
    record = client.guard(args.target, replace=args.replace, **option_values(args, GUARD))
    print(f"Guarding {record.name or args.target} ({record.id}): {record.rules.describe()}.")
    _say_process(client)
    return None


def extend(magics: Session, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    record = client.extend(args.target, args.duration, args.rule)
    print(f"{record.name or args.target} ({record.id}): {record.rules.describe()}.")
    return None


def _say_process(client: Client) -> None:
    process = client.guards.process or {}
    if process.get("running"):
        print(f"Guard process running (pid {process.get('pid')}); it outlives this kernel.")
    else:
        reason = process.get("reason") or "not started"
        print(f"Guard process: {reason}. The in-kernel guard enforces the rules meanwhile.")


COMMANDS = {"guard": guard, "extend": extend}
