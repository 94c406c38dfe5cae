"""Every input declared once, one family per call: the client's settings (client.py), create
(create.py), the guard rules (guard.py), waiting and watching (waiting.py), remote runs (run.py),
files to and from an instance (files.py) and the notebook session's own options (session.py). Each entry carries its name, aliases,
grammar, default, environment variable, magic flag, cell key, ``%config`` trait, form field and
help line; the surfaces are generated from them and docs/options.md is written from them.
"""

from __future__ import annotations

from .client import CLIENT
from .create import CREATE
from .files import FILES
from .guard import GUARD
from .run import RUN
from .schema import NOT_GIVEN, Family, FormField, Kind, Option, raise_problems
from .session import SESSION
from .waiting import WAITING

#: Every family, in the order the docs list them.
FAMILIES: tuple[Family, ...] = (CLIENT, CREATE, GUARD, WAITING, RUN, FILES, SESSION)

__all__ = [
    "CLIENT",
    "CREATE",
    "FAMILIES",
    "FILES",
    "GUARD",
    "NOT_GIVEN",
    "RUN",
    "SESSION",
    "WAITING",
    "Family",
    "FormField",
    "Kind",
    "Option",
    "raise_problems",
]
