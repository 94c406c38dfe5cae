"""The %novita subcommands, one module per family. Each is ``command(magics, args)``: it parses
nothing itself (the parser and spec did) and calls the library with what the user typed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from . import catalog, create, doctor, guard, ledger, lifecycle, many, session, storages
from .common import Session

Command = Callable[[Session, argparse.Namespace], Any]

COMMANDS: dict[str, Command] = {
    **catalog.COMMANDS,
    **create.COMMANDS,
    **lifecycle.COMMANDS,
    **ledger.COMMANDS,
    **session.COMMANDS,
    **guard.COMMANDS,
    **doctor.COMMANDS,
    **storages.COMMANDS,
    **many.COMMANDS,
}

__all__ = ["COMMANDS", "Command"]
