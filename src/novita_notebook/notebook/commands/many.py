"""``%novita batch N`` (N instances at once, one row each) and ``%novita classroom N`` (a
class's guarded instances under one deadline, and the handout). Their options are create's
and the guard rules' own flags.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..parser import CREATE_FLAGS, option_values
from .common import Session


def _options(args: argparse.Namespace) -> dict[str, Any]:
    values = option_values(args, CREATE_FLAGS)
    if values.pop("no_guard", False):
        values["guard"] = False
    if "budget_total" in values:  # create()'s keyword for the total cap
        values["budget"] = values.pop("budget_total")
    return values


def batch(magics: Session, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    options = _options(args)
    if "billing" not in options and magics.billing:
        options["billing"] = magics.billing
    return client.create_many(
        args.count,
        name_prefix=args.prefix,
        all_or_nothing=args.all_or_nothing,
        **options,
    )


def classroom(magics: Session, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    options = _options(args)
    if "billing" not in options and magics.billing:
        options["billing"] = magics.billing
    return client.classroom(args.count, prefix=args.prefix, **options)


COMMANDS = {"batch": batch, "classroom": classroom}
