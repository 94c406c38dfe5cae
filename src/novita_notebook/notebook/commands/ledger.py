"""``%novita mine`` (a sentence when the ledger is empty) and ``%novita cleanup`` (a preview
of what --stop and --delete would do, row by row, until one of them is given).
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

from ...money import format_money
from .common import accepted


def mine(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    frame = client.mine()
    if len(frame) == 0:
        sentence = (
            f"No instances created from here against {client.config.api_url}: the ledger is "
            "empty. %novita create NAME --gpu GPU makes one."
        )
        return explained_when_empty(frame, sentence)
    from ..display import InstancesFrame  # drawn as the compact instance table

    shown = InstancesFrame(frame)
    shown.attrs = dict(frame.attrs)
    shown.caption = f"{len(frame)} instance{'' if len(frame) == 1 else 's'} created from here"
    return shown


@functools.cache
def _explained_frame_class() -> type:
    import pandas as pd

    class ExplainedFrame(pd.DataFrame):
        """An empty DataFrame that shows as a sentence; anything derived is a plain frame."""

        _metadata = ["sentence"]

        @property
        def _constructor(self) -> type:
            return pd.DataFrame

        def __repr__(self) -> str:
            return self.sentence

        def _repr_html_(self) -> str:
            from ... import html

            return f"<p>{html.text(self.sentence)}</p>"

    return ExplainedFrame


def explained_when_empty(frame: Any, sentence: str) -> Any:
    """``frame`` itself (columns kept, so code that filters it still works), shown as
    ``sentence`` instead of pandas' "Empty DataFrame / Columns: [...]"."""
    explained = _explained_frame_class()(frame)
    explained.sentence = sentence
    return explained


def cleanup(magics: Any, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    # --forget-gone (parser: store_true) forgets entries whose instance is gone, at once.
    forget_gone = bool(getattr(args, "forget_gone", False))
    if args.stop or args.delete or forget_gone:
        kwargs = {"stop": args.stop, "delete": args.delete, "dry_run": args.dry_run}
        if forget_gone:
            kwargs["forget_gone"] = True
        return client.cleanup(**accepted(client.cleanup, kwargs, "cleanup()"))
    return _preview(client)


def _preview(client: Any) -> Any:
    """Both plans side by side: what --stop and what --delete would do to each row."""
    stop = client.cleanup(stop=True, dry_run=True)
    delete = client.cleanup(delete=True, dry_run=True)
    would_delete = dict(zip(delete["id"], delete["action"], strict=False))
    frame = stop.drop(columns=["action", "result", "saves_per_hour"], errors="ignore")
    frame.insert(len(frame.columns), "with --stop", list(stop["action"]))
    frame.insert(len(frame.columns), "with --delete", [would_delete.get(i) for i in stop["id"]])
    frame.attrs = {"dry_run": True}
    print(
        f"Preview only, nothing changed. {_summary('--stop', stop)}; "
        f"{_summary('--delete', delete)}."
    )
    return frame


def _summary(flag: str, plan: Any) -> str:
    counts = plan["action"].value_counts()
    verbs = ("stop", "delete", "forget", "keep")
    acts = [f"{verb} {counts[verb]}" for verb in verbs if verb in counts]
    saves = format_money(plan.attrs.get("saves_per_hour") or 0.0, per_hour=True)
    return f"{flag} would {', '.join(acts) or 'change nothing'} (saves {saves})"


COMMANDS = {"mine": mine, "cleanup": cleanup}
