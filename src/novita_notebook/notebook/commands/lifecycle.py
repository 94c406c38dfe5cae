"""``%novita watch`` (one live panel per session unless --keep; shown even when assigned) and the
lifecycle verbs start, stop, restart and delete: one library call each, and one line said.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..display import display_now, quiet


def watch(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    ids = [client.instance(target).id for target in args.targets] or None
    # `panel = %novita watch` assigns it, and an assigned result is not displayed by itself
    return display_now(magics.open_panel(ids, args.interval, keep=args.keep))


def _verb(verb: str) -> Any:
    """``%novita VERB ID_OR_NAME``: one library call on the resolved instance."""

    def command(magics: Any, args: argparse.Namespace) -> Any:
        client = magics.get_client()
        instance = client.instance(args.target)
        result = getattr(client, verb)(instance.id)
        print(f"{verb.capitalize()} requested for {instance.name} ({instance.id}).")
        return quiet(result)  # the line says it: no card under it each time

    return command


COMMANDS = {
    "watch": watch,
    **{verb: _verb(verb) for verb in ("start", "stop", "restart", "delete")},
}
