"""``%novita volumes`` (also ``%novita storages``): the account's network volumes as a table,
``volumes create NAME --region R --size GB`` and ``volumes delete NAME``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import ValidationError
from ...validation import size_from_text
from .common import Session


def volumes(magics: Session, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    action = getattr(args, "action", "list") or "list"
    if action == "list":
        frame = client.storages()
        if frame.empty:
            print(
                "No network volumes. Make one with %novita volumes create NAME --region REGION "
                "--size GB; mount it with %novita create NAME --gpu ... --volume NAME."
            )
            return None
        return frame
    if not args.name:
        raise ValidationError(f"volumes {action}: give the volume's NAME", field="name")
    if action == "delete":
        gone = client.delete_storage(args.name)
        if gone is None:
            print(f"No volume is named {args.name}; nothing was sent.")
        else:
            print(f"Volume {gone.name} ({gone.id}) deleted.")
        return gone
    if args.region is None or args.size is None:
        missing = "--region" if args.region is None else "--size"
        raise ValidationError(
            f"volumes create: give {missing} (e.g. --region EU-DE-01 --size 100)",
            field=missing.lstrip("-"),
        )
    made = client.create_storage(args.name, args.region, size_from_text(args.size, "GB"))
    print(f"Volume {made.name} ({made.id}) created in {made.region}, {made.size_gb} GB.")
    return made


COMMANDS = {"storages": volumes, "volumes": volumes}
