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


def _action(magics: Any, verb: str, target: str) -> Any:
    client = magics.get_client()
    instance = client.instance(target)
    result = getattr(client, verb)(instance.id)
    print(f"{verb.capitalize()} requested for {instance.name} ({instance.id}).")
    return result


def start(magics: Any, args: argparse.Namespace) -> Any:
    return _action(magics, "start", args.target)


def stop(magics: Any, args: argparse.Namespace) -> Any:
    return _action(magics, "stop", args.target)


def restart(magics: Any, args: argparse.Namespace) -> Any:
    return _action(magics, "restart", args.target)


def delete(magics: Any, args: argparse.Namespace) -> Any:
    return _action(magics, "delete", args.target)


COMMANDS = {
    "watch": watch,
    "start": start,
    "stop": stop,
    "restart": restart,
    "delete": delete,
}
