"""``%novita watch`` (one live panel per session unless --keep; shown even when assigned) and the
lifecycle verbs start, stop, restart and delete: one library call each on an id or a name, and
one line saying whether anything was sent (deleting what is already gone, by name too, is fine).
"""

from __future__ import annotations

import argparse
from typing import Any

from ...vocabulary import status_word
from ..display import display_now, quiet
from .common import Session


def watch(magics: Session, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    ids = [client.instance(target).id for target in args.targets] or None
    # `panel = %novita watch` assigns it, and an assigned result is not displayed by itself
    return display_now(magics.open_panel(ids, args.interval, keep=args.keep))


def _verb(verb: str) -> Any:
    """``%novita VERB ID_OR_NAME``: one lifecycle call; "requested" only when it sent one."""

    def command(magics: Session, args: argparse.Namespace) -> Any:
        change = getattr(magics.get_client().lifecycle, verb)(args.target)
        instance = change.instance
        if change.sent:
            print(f"{verb.capitalize()} requested for {instance.name} ({instance.id}).")
        else:
            state = "deleted" if verb == "delete" else status_word(instance.status)
            print(f"{instance.name} ({instance.id}) is already {state}; nothing was sent.")
        return quiet(instance)  # the line says it: no card under it each time

    return command


COMMANDS = {
    "watch": watch,
    **{verb: _verb(verb) for verb in ("start", "stop", "restart", "delete")},
}
