"""The %novita subcommands, one module per family. Each is ``command(magics, args)``: it parses
nothing itself (the parser and spec did) and calls the library with what the user typed.

Cell forms (``%%novita VERB ...``) are ``cell_command(magics, argv, body, local_ns)``: ``argv``
is the first line after the verb, ``body`` the cell as typed (each verb decides whether ``$var``
is expanded: a create spec is, code sent to a GPU is not).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from . import (
    catalog,
    create,
    doctor,
    guard,
    ledger,
    lifecycle,
    many,
    remote_work,
    runs,
    session,
    storages,
)
from .common import Session

Command = Callable[[Session, argparse.Namespace], Any]
CellCommand = Callable[[Session, list[str], str, dict[str, Any]], Any]

COMMANDS: dict[str, Command] = {
    **catalog.COMMANDS,
    **create.COMMANDS,
    **lifecycle.COMMANDS,
    **ledger.COMMANDS,
    **session.COMMANDS,
    **guard.COMMANDS,
    **remote_work.COMMANDS,
    **doctor.COMMANDS,
    **storages.COMMANDS,
    **many.COMMANDS,
    **runs.COMMANDS,
}

#: ``%%novita VERB``: every cell form, by its verb.
CELL_COMMANDS: dict[str, CellCommand] = {
    **create.CELL_COMMANDS,
    **runs.CELL_COMMANDS,
    **remote_work.CELL_COMMANDS,
}

__all__ = ["CELL_COMMANDS", "COMMANDS", "CellCommand", "Command"]
