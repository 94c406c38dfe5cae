"""Read-only subcommands: products, browse, regions, templates and instances (the list view,
without the columns it can never fill).
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import spec as specs
from .common import accepted

#: Columns the list view leaves empty unless the package knows them (the ledger fills
#: created_at/age of the instances it made; SSH and Jupyter need one GET per instance).
SPARSE_COLUMNS = ("created_at", "started_at", "age", "ssh_command", "jupyter_url")


def products(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    kwargs = {
        "gpu": args.gpu,
        "region": args.region,
        "gpu_num": args.gpu_num,
        "billing": specs.parse_billing(args.billing or magics.billing),
        "max_price": specs.parse_price(args.max_price),
        "available": True if args.available else None,
        "refresh": True if args.refresh else None,
    }
    return client.products(**accepted(client.products, kwargs, "products()"))


def browse(magics: Any, args: argparse.Namespace) -> Any:
    from ..display import display_now
    from ..widgets import ProductBrowser

    return display_now(ProductBrowser(magics.get_client(), gpu=args.gpu, region=args.region))


def regions(magics: Any, args: argparse.Namespace) -> Any:
    return magics.get_client().regions()


def templates(magics: Any, args: argparse.Namespace) -> Any:
    return magics.get_client().templates()


def instances(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    frame = client.instances(**accepted(client.instances, {"status": args.status}, "instances()"))
    from ..display import InstancesFrame  # a DataFrame drawn as a compact table

    return InstancesFrame(without_empty_columns(frame, SPARSE_COLUMNS))


def without_empty_columns(frame: Any, columns: tuple[str, ...]) -> Any:
    """``frame`` without those of ``columns`` that hold no value in any row."""
    empty = [c for c in columns if c in frame.columns and frame[c].isna().all()]
    return frame.drop(columns=empty) if empty else frame


COMMANDS = {
    "products": products,
    "browse": browse,
    "regions": regions,
    "templates": templates,
    "instances": instances,
}
