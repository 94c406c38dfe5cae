"""``%novita watch`` (one live panel per session unless --keep) and the lifecycle verbs start,
stop, restart and delete, each one library call on an id or a name that says whether anything
was sent (deleting what is already gone, by name too, is not an error).
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import Session


def watch(magics: Session, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    ids = [client.instance(target).id for target in args.targets] or None
    return magics.open_panel(ids, args.interval, keep=args.keep)


def _verb(verb: str) -> Any:
    """``%novita VERB ID_OR_NAME``: one lifecycle call; "requested" only when it sent one."""

    def command(magics: Session, args: argparse.Namespace) -> Any:
        change = getattr(magics.get_client().lifecycle, verb)(args.target)
        instance = change.instance
        if change.sent:
            print(f"{verb.capitalize()} requested for {instance.name} ({instance.id}).")
        else:
            state = "deleted" if verb == "delete" else instance.status
            print(f"{instance.name} ({instance.id}) is already {state}; nothing was sent.")
        return instance

    return command


COMMANDS = {
    "watch": watch,
    **{verb: _verb(verb) for verb in ("start", "stop", "restart", "delete")},
}
