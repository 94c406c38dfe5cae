"""mine() and cleanup() over the ledger (LedgerService): the ledger's entries joined with one
live listing; interrupted creates resolved; money rounded; stale sandbox entries hidden.
"""

from __future__ import annotations

import logging
import socket
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import money
from .config import is_loopback_host
from .errors import NotFoundError, NovitaError, ValidationError
from .ledger import GONE, Ledger, _normalise_url
from .models import BILLED_STATUSES, GONE_STATUSES, Instance, parse_time, phase_of
from .pending import PendingCreates, resolve_from_listing
from .validation import invalid, parse_timedelta

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .api import NovitaAPI

__all__ = ["LedgerService", "MINE_COLUMNS", "CLEANUP_COLUMNS", "HIDE_GONE_SANDBOX_AFTER"]

log = logging.getLogger(__name__)

#: mine() leaves out a sandbox's ``gone`` entries older than this (they only pile up).
HIDE_GONE_SANDBOX_AFTER = timedelta(hours=1)

MINE_COLUMNS = (
    "id",
    "name",
    "status",
    "phase",
    "region",
    "product",
    "gpu_num",
    "price_per_hour",
    "cost_so_far",
    "created_at",
    "age_hours",
    "created_by",
)
CLEANUP_COLUMNS = (
    "id",
    "name",
    "status",
    "region",
    "product",
    "price_per_hour",
    "age_hours",
    "action",
    "saves_per_hour",
    "result",
)


def _hours_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds() / 3600.0)


def _cost_so_far(
    live: Instance | None, price: float | None, now: datetime, recorded: datetime | None
) -> float | None:
    """Estimated compute spend of the current (or last) run: price × hours billed.

    While billed: the hours since the last start (the list view omits it, so the creation time
    the ledger recorded stands in: an upper bound). Once stopped: the last start→stop span when
    the API reports it, else unknown. Not yet pulling: nothing. Earlier runs are not visible.
    """
    if price is None or live is None:
        return None
    started = live.started_at or live.created_at or recorded
    if live.status in BILLED_STATUSES:
        return money.cost_so_far(price, started, now)
    if live.stopped_at is not None and started is not None and live.stopped_at >= started:
        return money.cost_so_far(price, started, live.stopped_at)
    return 0.0 if phase_of(live.status) == "provisioning" else None


def _parse_older_than(value: Any) -> timedelta | None:
    """``older_than``: a duration in the one grammar (``"2h"``, ``"1 day"``, a timedelta) or 0.
    A bare number still means hours, with a DeprecationWarning: everywhere else a bare number is
    seconds, and this one will be too."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value != 0:
        if value < 0:
            raise invalid("older_than", f"must not be negative, got {value!r}")
        warnings.warn(
            f"older_than={value!r} is read as {value!r} hours; write '{value:g}h' (a bare number "
            "will mean seconds, as for every other duration)",
            DeprecationWarning,
            stacklevel=4,
        )
        return timedelta(hours=float(value))
    if value == 0 and not isinstance(value, bool):
        return timedelta(0)
    return parse_timedelta(value, "older_than")


def _name_filter(names: Any) -> set[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    try:
        chosen = {str(n) for n in names}
    except TypeError:
        raise ValidationError(
            "names must be a name or a list of names/ids", field="names"
        ) from None
    if not chosen:
        raise ValidationError("names must not be empty (use None for all)", field="names")
    return chosen


def _is_sandbox_url(url: str | None) -> bool:
    from urllib.parse import urlsplit

    return bool(url) and is_loopback_host(urlsplit(str(url)).hostname)


def _hide_stale_gone(
    rows: list[dict[str, Any]], api_url: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """A sandbox's instances vanish with it: its ``gone`` entries older than
    HIDE_GONE_SANDBOX_AFTER are left out of mine() (``cleanup(forget_gone=True)`` forgets
    them). Real API entries always show: a vanished billed instance is news."""
    if not _is_sandbox_url(api_url):
        return rows, []
    limit = HIDE_GONE_SANDBOX_AFTER.total_seconds() / 3600.0
    kept, hidden = [], []
    for row in rows:
        stale = row["status"] == GONE and (row["age_hours"] or 0.0) > limit
        (hidden if stale else kept).append(row["id"] if stale else row)
    return kept, hidden


def _sandbox_answers(url: str, timeout: float = 0.3) -> bool:
    """Does anything listen at this (loopback) URL's port?"""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class LedgerService:
    """mine() and cleanup() over the ledger: ``ledger`` holds what was made, ``api`` lists and
    acts, ``price_of`` prices a live instance from the cached catalog (no extra call)."""

    def __init__(
        self,
        ledger: Ledger,
        api: NovitaAPI,
        price_of: Callable[[Instance], float | None],
        on_forgotten: Callable[[list[str], str], Any] | None = None,
    ) -> None:
        self.ledger = ledger
        self.api = api
        self.price_of = price_of
        # told which instances cleanup deleted or found gone (the guard drops their rules)
        self.on_forgotten = on_forgotten

    def _entries(self) -> list[dict[str, Any]]:
        return self.ledger.entries(self.ledger.api_url)

    def _rows(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """This api_url's ledger entries and, from ONE list call, the live raw instances.
        Interrupted creates (intents in the ledger) found in that listing become entries."""
        entries = self._entries()
        waiting = PendingCreates(self.ledger).waiting()
        if not entries and not waiting:
            return entries, {}
        raws = self.api.list_instances()
        if waiting and resolve_from_listing(self.ledger, raws):
            entries = self._entries()
        live = {str(raw.get("id")): raw for raw in raws}
        return entries, live

    def _price(self, entry: Mapping[str, Any], raw: dict[str, Any] | None) -> float | None:
        """USD per hour, float noise dropped (shown as is in mine() and cleanup())."""
        if entry.get("price_per_hour") is not None:
            return money.round_usd(float(entry["price_per_hour"]))
        if raw is None:
            return None
        try:
            price = self.price_of(Instance.from_api(raw))
        except NovitaError:
            return None
        return money.round_usd(price) if price is not None else None

    def live_ids(self) -> list[str]:
        """Ids of the ledger's instances that are still live (for watch_mine); NotFoundError
        when there is none."""
        entries, live = self._rows()
        ids = [
            e["id"]
            for e in entries
            if e["id"] in live and str(live[e["id"]].get("status")) not in GONE_STATUSES
        ]
        if not ids:
            raise NotFoundError(
                "no live instance in the ledger for this API; create one or check mine()",
                hint="Novita.mine() lists what the ledger remembers.",
            )
        return ids

    def mine(self, refresh: bool = True, *, prune: bool = False) -> pd.DataFrame:
        """Instances this package created against this API (from the ledger), oldest first.

        ``refresh`` joins live status from one list call (instances the API no longer knows
        show as ``gone``; ``prune=True`` forgets them and ``removed`` ones); ``refresh=False``
        reads only the file.
        Columns: id, name, status, phase, region, product, gpu_num, price_per_hour,
        cost_so_far (USD, current run), created_at, age_hours, created_by.
        """
        import pandas as pd

        if prune and not refresh:
            raise ValidationError("prune=True needs refresh=True (live status)", field="prune")
        if refresh:
            entries, live = self._rows()
        else:
            entries, live = self._entries(), {}
        now = datetime.now(UTC)
        rows, gone = [], []
        for entry in entries:
            raw = live.get(entry["id"])
            inst = Instance.from_api(raw) if raw is not None else None
            price = self._price(entry, raw if refresh else None)
            created = parse_time(entry.get("created_at"))
            if not refresh:
                status, phase = None, "unknown"
            elif inst is None:
                status, phase = GONE, "removed"
                gone.append(entry["id"])
            else:
                status, phase = inst.status, phase_of(inst.status, inst.status_error)
                if status == "removed":  # still listed, but nothing is left to manage
                    gone.append(entry["id"])
            rows.append(
                {
                    "id": entry["id"],
                    "name": (inst.name if inst is not None and inst.name else entry.get("name")),
                    "status": status,
                    "phase": phase,
                    "region": (inst.region if inst is not None else None) or entry.get("region"),
                    "product": (inst.product_name if inst is not None else None)
                    or entry.get("product"),
                    "gpu_num": (inst.gpu_num if inst is not None else None) or entry.get("gpu_num"),
                    "price_per_hour": price,
                    "cost_so_far": _cost_so_far(inst, price, now, created),
                    "created_at": created,
                    "age_hours": round(_hours_between(created, now) or 0.0, 3) if created else None,
                    "created_by": entry.get("created_by"),
                }
            )
        if prune and gone:
            self.ledger.forget_many(gone, self.ledger.api_url)
        rows, hidden = _hide_stale_gone(rows, self.ledger.api_url)
        frame = pd.DataFrame(rows, columns=list(MINE_COLUMNS))
        frame.attrs["hidden_gone"] = hidden
        frame.attrs["pending"] = [p["name"] for p in PendingCreates(self.ledger).waiting()]
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        frame.attrs["pruned"] = list(gone) if prune else []
        return frame

    def cleanup(
        self,
        *,
        stop: bool = False,
        delete: bool = False,
        dry_run: bool = True,
        older_than: Any = None,
        names: Any = None,
        forget_gone: bool = False,
    ) -> pd.DataFrame:
        """Find the ledger's forgotten instances and stop or delete them.

        ``forget_gone=True`` forgets entries whose instance is gone right away, even in a dry
        run (only the local file changes), and the entries of sandboxes that no longer answer
        (``frame.attrs["forgotten_elsewhere"]`` counts those).

        Dry run (the default) only previews: ``action`` says what would happen (``stop`` for
        running ones unless ``delete=True``, ``delete`` for every live one with it, ``forget``
        for those already gone) and ``saves_per_hour`` the hourly spend it saves. With
        ``dry_run=False`` the actions run; deleted and gone instances leave the ledger.
        ``older_than`` (a duration: '2h', '1 day', a timedelta) and ``names`` (names or ids)
        narrow it.
        """
        import pandas as pd

        checks = (("stop", stop), ("delete", delete), ("dry_run", dry_run))
        for field, value in (*checks, ("forget_gone", forget_gone)):
            if not isinstance(value, bool):
                raise ValidationError(f"{field} must be True or False", field=field)
        if stop and delete:
            raise ValidationError("give stop=True or delete=True, not both", field="stop")
        if not dry_run and not (stop or delete or forget_gone):
            raise ValidationError(
                "cleanup(dry_run=False) needs stop=True or delete=True: say what to do",
                field="dry_run",
            )
        min_age = _parse_older_than(older_than)
        wanted = _name_filter(names)
        entries, live = self._rows()
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        to_forget: list[str] = []
        for entry in entries:
            row = self._cleanup_row(entry, live.get(entry["id"]), now, delete)
            if wanted is not None and row["name"] not in wanted and entry["id"] not in wanted:
                continue
            age = row["age_hours"]
            if min_age is not None and (age is None or age * 3600 < min_age.total_seconds()):
                continue
            if forget_gone and row["action"] == "forget":
                row["result"] = self._cleanup_one(row, to_forget)
            else:
                row["result"] = "dry run" if dry_run else self._cleanup_one(row, to_forget)
            rows.append(row)
        if to_forget:
            self.ledger.forget_many(to_forget, self.ledger.api_url)
            if self.on_forgotten is not None:
                self.on_forgotten(to_forget, "deleted or gone (cleanup)")
        elsewhere = self._forget_dead_sandboxes() if forget_gone else 0
        frame = pd.DataFrame(rows, columns=list(CLEANUP_COLUMNS))
        frame.attrs["forgotten_elsewhere"] = elsewhere
        done = frame if dry_run else frame[frame["result"].isin(["stopped", "deleted"])]
        frame.attrs["dry_run"] = dry_run
        frame.attrs["saves_per_hour"] = round(float(done["saves_per_hour"].sum()), 4)
        return frame

    def _forget_dead_sandboxes(self) -> int:
        """Forget the entries of other sandbox URLs that no longer answer; how many."""
        urls = {
            _normalise_url(e.get("api_url"))
            for e in self.ledger.entries(all_urls=True)
            if _normalise_url(e.get("api_url")) != self.ledger.api_url
        }
        dead = {u for u in urls if u and _is_sandbox_url(u) and not _sandbox_answers(u)}
        if not dead:
            return 0
        removed: list[int] = []

        def change(entries: list, pending: list) -> tuple[list, list]:
            kept = [e for e in entries if _normalise_url(e.get("api_url")) not in dead]
            removed.append(len(entries) - len(kept))
            return kept, [p for p in pending if _normalise_url(p.get("api_url")) not in dead]

        self.ledger.update_document(change)
        return removed[0]

    def _cleanup_row(
        self, entry: Mapping[str, Any], raw: dict[str, Any] | None, now: datetime, delete: bool
    ) -> dict[str, Any]:
        """What cleanup would do with one ledger entry, and what it saves per hour."""
        inst = Instance.from_api(raw) if raw is not None else None
        name = inst.name if inst is not None and inst.name else entry.get("name")
        age = _hours_between(parse_time(entry.get("created_at")), now)
        status = inst.status if inst is not None else GONE
        price = self._price(entry, raw)
        if inst is None or status in GONE_STATUSES:
            action = "forget"
        elif delete:
            action = "delete"
        elif status == "running":
            action = "stop"
        else:
            action = "keep"
        billed = inst is not None and status in BILLED_STATUSES
        saves = price if billed and action in {"stop", "delete"} and price else 0.0
        return {
            "id": entry["id"],
            "name": name,
            "status": status,
            "region": (inst.region if inst is not None else None) or entry.get("region"),
            "product": (inst.product_name if inst is not None else None) or entry.get("product"),
            "price_per_hour": price,
            "age_hours": round(age, 3) if age is not None else None,
            "action": action,
            "saves_per_hour": round(saves, 4),
            "result": None,
        }

    def _cleanup_one(self, row: dict[str, Any], to_forget: list[str]) -> str:
        """Carry out one cleanup action; errors are reported in the row, not raised."""
        action, instance_id = row["action"], row["id"]
        try:
            if action == "stop":
                self.api.stop_instance(instance_id)
                return "stopped"
            if action == "delete":
                self.api.delete_instance(instance_id)
                to_forget.append(instance_id)
                return "deleted"
            if action == "forget":
                to_forget.append(instance_id)
                return "forgotten"
            return "kept"
        except NotFoundError:
            to_forget.append(instance_id)  # gone between the listing and the action
            return "forgotten"
        except NovitaError as error:
            log.warning("cleanup could not %s %s: %s", action, instance_id, error.message)
            return f"failed: {error.message}"
