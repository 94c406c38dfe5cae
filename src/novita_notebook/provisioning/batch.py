"""Batches: create_many validates every spec first, creates concurrently over one listing per
GPU count, reports one row per spec, and with all_or_nothing rolls back what it made.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from ..api import NovitaAPI
from ..errors import NotFoundError, NovitaError, ValidationError
from ..models import Instance, Product
from ..validation import Problems, check_int_range
from .create import Provisioner
from .idempotency import resend_delay
from .request import CreateRequest, prepare_request

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

logger = logging.getLogger(__name__)

# Rolling back a batch: deletes are retried so nothing is left behind on a flaky network.
DELETE_ATTEMPTS = 5


#: Characters at most in a batch frame's ``error`` cell.
ERROR_CELL_MAX = 120


class Batch:
    """create_many over a Provisioner, never more threads than ``max_concurrency``."""

    def __init__(
        self, provisioner: Provisioner, max_concurrency: int, guards: Any | None = None
    ) -> None:
        self.provisioner = provisioner
        self.max_concurrency = max_concurrency
        # GuardService (rules_for_create, protect): each instance gets create()'s rules
        self.guards = guards

    def create_many(
        self,
        specs: int | Sequence[Mapping[str, Any]],
        *,
        concurrency: int = 4,
        name_prefix: str = "batch",
        gpu: str | None = None,
        all_or_nothing: bool = False,
        progress: Callable[[int, int, dict[str, Any]], Any] | None = None,
        **common: Any,
    ) -> pd.DataFrame:
        """See ``Novita.create_many``: one row per spec, rolled back when all_or_nothing."""
        requests_, rules = self._batch_requests(
            specs, name_prefix=name_prefix, gpu=gpu, common=common
        )
        problems = Problems()
        workers = check_int_range(concurrency, 1, 64, problems, "concurrency")
        if progress is not None and not callable(progress):
            problems.add("progress", "must be callable")
        if not isinstance(all_or_nothing, bool):
            problems.add("all_or_nothing", f"must be True or False, got {all_or_nothing!r}")
        problems.raise_if_any()
        total = len(requests_)
        rows: list[dict[str, Any]] = [_batch_row(r.name) for r in requests_]
        if not requests_:
            return _batch_frame(rows)
        # Never more threads than the client's connection pool serves, nor than creates.
        pool_size = min(workers or 1, self.max_concurrency, total)
        protect = self._protector(rules)
        run = _Run(self.provisioner, requests_, rows, all_or_nothing, progress, protect)
        if self.guards is not None:  # each create's rules are stored before its request
            run.guard_for = lambda index: self.guards.create_guard(rules[index])
        pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="novita-create")
        try:
            futures = [pool.submit(run.one, i) for i in range(total)]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            # Ctrl-C: creates not started are dropped; those in flight finish (and are in the
            # ledger) so nothing is left half-known.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if all_or_nothing and run.failed.is_set():
            self._roll_back(rows)
        return _batch_frame(rows)

    def _batch_requests(
        self,
        specs: int | Sequence[Mapping[str, Any]],
        *,
        name_prefix: str,
        gpu: str | None,
        common: Mapping[str, Any],
    ) -> tuple[list[CreateRequest], list[Any]]:
        """Validate every spec (and its guard rules) before any call; names must be distinct
        within the batch. Returns the requests and each one's guard rules (or None)."""
        if isinstance(specs, bool) or not isinstance(specs, int | list | tuple):
            raise ValidationError(
                f"specs: must be a count or a list of dicts of create() arguments, got {specs!r}",
                field="specs",
            )
        if isinstance(specs, int):
            if not 1 <= specs <= 500:
                raise ValidationError(
                    f"specs: count must be between 1 and 500, got {specs}", field="specs"
                )
            specs = [{"name": f"{name_prefix}-{n}"} for n in range(1, specs + 1)]
        requests_: list[CreateRequest] = []
        rules: list[Any] = []
        for index, spec in enumerate(specs):
            if not isinstance(spec, Mapping):
                raise ValidationError(
                    f"specs[{index}]: must be a dict, got {spec!r}", field=f"specs[{index}]"
                )
            merged = {"gpu": gpu, **common, **spec}
            merged.setdefault("name", f"{name_prefix}-{index + 1}")
            # ``progress`` is the batch's; several live wait displays at once would be noise.
            merged["progress"] = "silent"
            try:
                rules.append(self._rules_of(merged))
                requests_.append(prepare_request(**merged))
            except TypeError as error:
                raise ValidationError(f"specs[{index}]: {error}", field=f"specs[{index}]") from None
            except ValidationError as error:
                raise ValidationError(
                    f"specs[{index}] ({merged.get('name')!r}): {error.message}",
                    field=error.field,
                    problems=error.problems,
                ) from None
        names = [r.name for r in requests_ if not r.unique_name]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValidationError(
                f"specs: names must be distinct within a batch; repeated: {', '.join(duplicates)}",
                field="name",
            )
        return requests_, rules

    def _rules_of(self, spec: dict[str, Any]) -> Any:
        """Take the guard keywords out of one spec and make its rules as create() does."""
        if self.guards is None:
            return None
        return self.guards.take_create_rules(spec)

    def _protector(self, rules: list[Any]) -> Callable[[int, Instance], None]:
        """Store each made instance's rules at once; start the enforcement once per batch
        (not once per thread: they would race to spawn the guard process)."""
        lock = threading.Lock()
        started: list[bool] = []

        def protect(index: int, instance: Instance) -> None:
            if self.guards is None or rules[index] is None:
                return
            self.guards.protect(instance, rules[index], start=False)
            with lock:
                if not started:
                    self.guards.start()
                    started.append(True)

        return protect

    def _roll_back(self, rows: list[dict[str, Any]]) -> None:
        """Delete every instance a failed all-or-nothing batch created (including one whose
        wait failed); say so in each row."""
        for row in rows:
            instance_id = row.get("instance_id")
            if not instance_id:
                continue
            own_failure = row.get("error") if row.get("status") == "failed" else None
            error = _delete_with_retries(self.provisioner.api, instance_id)
            if error is None:
                reason = own_failure or "another create of the batch failed"
                row.update(status="deleted", error=_one_line(f"rolled back: {reason}"))
                try:
                    self.provisioner.ledger.forget(instance_id)
                except Exception:  # the ledger is a convenience; the instance is gone anyway
                    logger.exception("could not forget %s in the ledger", instance_id)
            else:
                row.update(
                    status="rollback failed",
                    error=_one_line(f"delete it by hand: {_short_error(error)}"),
                    error_detail=_detail(error),
                )


class _Run:
    """One batch in flight: one listing per GPU count, the rows, the failure flag, progress."""

    def __init__(
        self,
        provisioner: Provisioner,
        requests_: list[CreateRequest],
        rows: list[dict[str, Any]],
        all_or_nothing: bool,
        progress: Callable[[int, int, dict[str, Any]], Any] | None,
        protect: Callable[[int, Instance], None],
    ) -> None:
        self.provisioner = provisioner
        self.protect = protect  # guards request ``index``'s made instance
        # the guard of request ``index`` (its rules stored before the create request is sent)
        self.guard_for: Callable[[int], Any] = lambda index: None
        self.requests = requests_
        self.rows = rows
        self.all_or_nothing = all_or_nothing
        self.progress = progress
        self.failed = threading.Event()
        self._lock = threading.Lock()
        self._listing: list[Product] | None = None
        self._done = 0

    def listing(self) -> list[Product]:
        # One listing for the whole batch; stock raced away is handled by falling back to the
        # next candidate, as in create().
        with self._lock:
            if self._listing is None:
                self._listing = self.provisioner.fresh_listing()
            return self._listing

    def _guard(self, index: int, instance: Instance, row: dict[str, Any]) -> None:
        """Guard a made instance; a guard store that cannot be written is said in its row
        (the instance exists and bills: the batch must not lose it)."""
        try:
            self.protect(index, instance)
        except (OSError, TimeoutError, NovitaError) as error:
            logger.warning("could not guard %s: %s", instance.id, error)
            row["error"] = _one_line(f"not guarded: {error}")

    def one(self, index: int) -> None:
        request, row = self.requests[index], self.rows[index]
        if self.all_or_nothing and self.failed.is_set():
            row.update(status="skipped", error="not attempted: another create of the batch failed")
        else:
            try:
                listing = self.listing()
                instance = self.provisioner.provision(
                    request, listing=listing, guard=self.guard_for(index)
                )
            except NovitaError as error:
                self.failed.set()
                row.update(status="failed", error=_short_error(error), error_detail=_detail(error))
                created = getattr(error, "created_instance", None)
                if isinstance(created, Instance):  # made, then its wait failed
                    row.update(_row_of(created), status="failed")
                    self._guard(index, created, row)
            except Exception as error:  # a bug must not hide the created siblings
                self.failed.set()
                row.update(
                    status="failed",
                    error=_one_line(f"{type(error).__name__}: {error}"),
                    error_detail=f"{type(error).__name__}: {error}",
                )
            else:
                row.update(_row_of(instance))
                self._guard(index, instance, row)
        with self._lock:
            self._done += 1
            finished = self._done
        if self.progress is not None:
            try:
                self.progress(finished, len(self.requests), dict(row))
            except Exception:  # the user's callback must not abort the batch
                logger.exception("create_many progress callback failed")


def _delete_with_retries(api: NovitaAPI, instance_id: str) -> NovitaError | None:
    last: NovitaError | None = None
    for attempt in range(DELETE_ATTEMPTS):
        try:
            api.delete_instance(instance_id)
            return None
        except NotFoundError:
            return None
        except NovitaError as error:
            if "NOT_FOUND" in (error.reason or ""):
                return None
            last = error
            time.sleep(resend_delay(error, attempt + 1))
    return last


def _one_line(text: str, limit: int = ERROR_CELL_MAX) -> str:
    """The first line of ``text``, at most ``limit`` characters (a table cell)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _detail(error: NovitaError) -> str:
    """The whole error, for ``frame.attrs["errors"]``."""
    return f"{type(error).__name__}: {error}"


def _short_error(error: NovitaError) -> str:
    """One short line for the ``error`` cell; the full text goes to ``attrs["errors"]``."""
    kind = type(error).__name__
    reason = f" {error.reason}" if error.reason else ""
    return _one_line(f"{kind}{reason}: {error.message}")


def _row_of(instance: Instance) -> dict[str, Any]:
    return {
        "name": instance.name,
        "instance_id": instance.id,
        "region": instance.region,
        "product": instance.product_name,
        "price_per_hour": instance.price_per_hour,
        "status": instance.status,
    }


def _batch_row(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "instance_id": None,
        "region": None,
        "product": None,
        "price_per_hour": None,
        "status": "pending",
        "error": None,
    }


BATCH_COLUMNS = ["name", "instance_id", "region", "product", "price_per_hour", "status", "error"]


def _batch_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The outcome table; ``frame.attrs["errors"]`` maps each failed name to its full error
    (the ``error`` cells hold one short line each)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=BATCH_COLUMNS)
    frame.attrs["errors"] = {
        row["name"]: row["error_detail"] for row in rows if row.get("error_detail")
    }
    return frame
