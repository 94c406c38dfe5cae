"""``%novita config`` (effective settings, key masked; --reload rebuilds the client) and
``%novita sandbox start|stop|status`` (the offline cloud of this session).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..traits import TRAIT_OPTIONS
from .common import Session

#: The magic's own %config options, shown by %novita config (from the option families).
MAGIC_OPTIONS = tuple(TRAIT_OPTIONS)


def config(magics: Session, args: argparse.Namespace) -> Any:
    if args.reload:
        if magics.sandbox_client is not None:
            magics.stop_sandbox()
        magics.close_client()
        client = magics.get_client()
        print(f"Session client rebuilt; talking to {client.config.api_url}.")
    client = magics.get_client()
    settings = dict(client.config.to_dict())
    settings["session"] = "sandbox" if client is magics.sandbox_client else "api"
    settings["magics"] = {name: getattr(magics, name) for name in MAGIC_OPTIONS}
    return settings


def sandbox(magics: Session, args: argparse.Namespace) -> Any:
    if args.action == "start":
        magics.start_sandbox(args.speed, args.seed)
        return None
    if args.action == "stop":
        magics.stop_sandbox()
        return None
    running = magics.sandbox_client is not None
    status = {
        "running": running,
        "url": magics.sandbox_client.sandbox_server.url if running else None,
        "session_uses_sandbox": running and magics.client is magics.sandbox_client,
    }
    print(f"Sandbox running at {status['url']}." if running else "No sandbox in this session.")
    return status


COMMANDS = {"config": config, "sandbox": sandbox}
