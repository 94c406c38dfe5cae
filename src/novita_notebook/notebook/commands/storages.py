"""``%novita storages``: the account's network volumes as a table (name, id, region, size,
price per hour and per month), or a sentence when there are none.
"""

from __future__ import annotations

import argparse
from typing import Any


def storages(magics: Any, args: argparse.Namespace) -> Any:
    frame = magics.get_client().storages()
    if frame.empty:
        print(
            "No network volumes. Make one with novita.create_storage(name, region, size_gb); "
            "mount it with %novita create NAME --gpu ... --volume NAME."
        )
        return None
    return frame


COMMANDS = {"storages": storages}
