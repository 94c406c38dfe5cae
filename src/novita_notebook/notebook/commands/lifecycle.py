"""``%novita watch`` (one live panel per session unless --keep) and the lifecycle verbs start,
stop, restart and delete, each one library call on an id or a name.
"""

from __future__ import annotations

import argparse
from typing import Any


def watch(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    ids = [client.instance(target).id for target in args.targets] or None
    return magics.open_panel(ids, args.interval, keep=args.keep)


def _verb(verb: str) -> Any:
    """``%novita VERB ID_OR_NAME``: one library call on the resolved instance."""

    def command(magics: Any, args: argparse.Namespace) -> Any:
        client = magics.get_client()
        instance = client.instance(args.target)
        result = getattr(client, verb)(instance.id)
        print(f"{verb.capitalize()} requested for {instance.name} ({instance.id}).")
        return result

    return command


COMMANDS = {
    "watch": watch,
    **{verb: _verb(verb) for verb in ("start", "stop", "restart", "delete")},
}
