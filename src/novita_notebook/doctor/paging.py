"""Doctor check of the paging base: reads pages 0 and 1 (pageSize=1) of instances, or of
templates when the account has no instance, and compares the ids they hold.
"""

from __future__ import annotations

from typing import Any

from .context import Context, describe, item_id, items
from .probe import Reply
from .report import DIFFERS, OK, UNVERIFIED

Listing = tuple[str, str, dict[str, Any]]  # (path, key of the item list, extra parameters)
Page = tuple[Reply, list[str]]  # the answer and the de-duplicated ids it holds

NAME = "paging base"
HOW_TO_TELL = (
    "no instance or template is visible, so the paging base cannot be told; create one "
    "private template (or instance) and run the doctor again"
)


def _page(ctx: Context, path: str, key: str, params: dict[str, Any], number: int) -> Page:
    reply = ctx.get(path, {**params, "pageNum": number, "pageSize": 1})
    found = items(reply.data, key) if reply.status == 200 else []
    ids = [i for i in (item_id(item) for item in found) if i is not None]
    return reply, list(dict.fromkeys(ids))  # de-duplicated, in order


def _source(ctx: Context) -> tuple[Listing, str, Reply, list[str]] | None:
    """(listing, what it lists, page 0's answer and ids) of the first listing that holds an
    item (or refuses page 0, which is news too)."""
    sources: list[tuple[Listing, str]] = [
        (("/gpu/instances", "instances", {}), "instances"),
        (
            ("/templates", "template", {"channel": "official", "isMyCommunity": "false"}),
            "templates",
        ),
        (("/templates", "template", {}), "templates"),
    ]
    for listing, what in sources:
        reply, ids = _page(ctx, *listing, 0)
        total = _total(reply)
        # Instances come first and take no extra parameter: any refusal there is news. A
        # template listing may refuse for its parameters, so only its items count.
        refused = what == "instances" and reply.status != 200
        if ids or (total or 0) > 0 or refused:
            return listing, what, reply, ids
    return None


def check_paging(ctx: Context) -> str | None:
    """Line ``paging base``. Returns the id of one instance seen (for the detail checks)."""
    source = _source(ctx)
    if source is None:
        ctx.add(NAME, UNVERIFIED, HOW_TO_TELL)
        return None
    listing, what, first, ids0 = source
    second, ids1 = _page(ctx, *listing, 1)
    instance_id = (ids0 or ids1 or [None])[0] if what == "instances" else None
    status, detail = _verdict(ctx, listing, first, ids0, second, ids1)
    ctx.add(NAME, status, f"{what}: {detail}")
    return instance_id


def _verdict(
    ctx: Context, listing: Listing, first: Reply, ids0: list[str], second: Reply, ids1: list[str]
) -> tuple[str, str]:
    path, key, params = listing
    if first.status != 200:
        return DIFFERS, f"pageNum=0 answered {describe(first)}; page 1 holds {len(ids1)} item(s)"
    if second.status != 200:
        return DIFFERS, f"pageNum=1 answered {describe(second)}"
    if len(ids0) > 1:
        return DIFFERS, f"pageSize=1 ignored: page 0 held {len(ids0)} items"
    if not ids0 and ids1:
        return DIFFERS, (
            "1-based: page 0 is empty and page 1 holds the first item (a client that starts "
            "at 0 and stops on an empty page lists nothing)"
        )
    if ids0 and ids0 == ids1:
        _, again = _page(ctx, path, key, params, 0)
        if again != ids0:
            return UNVERIFIED, "the listing changed while it was read; run the doctor again"
        return DIFFERS, (
            "1-based with 0 also the first page: pages 0 and 1 hold the same item (the "
            "client de-duplicates by id, so it lists correctly)"
        )
    if ids0:
        total = _total(first)
        if not ids1 and (total or 0) > 1:
            return DIFFERS, f"page 1 is empty although total={total}"
        if not ids1:
            return OK, "0-based: page 0 holds the only item, page 1 is empty"
        return OK, "0-based: page 0 holds the first item, page 1 the next"
    return UNVERIFIED, HOW_TO_TELL


def _total(reply: Reply) -> int | None:
    """The answer's ``total`` (a number or a digit string), if it has one."""
    total = reply.data.get("total") if isinstance(reply.data, dict) else None
    if isinstance(total, str) and total.isdigit():
        return int(total)
    return total if isinstance(total, int) and not isinstance(total, bool) else None
