"""``%novita doctor``: the client's assumptions checked against the API the session talks to,
with read-only calls; the report renders itself (HTML table in Jupyter, aligned text)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Session


def doctor(magics: Session, args: argparse.Namespace) -> Any:
    return magics.get_client().doctor(timeout=args.timeout)


COMMANDS = {"doctor": doctor}
