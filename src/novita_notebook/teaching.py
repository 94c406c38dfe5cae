"""Teaching mode: one call creates a class's guarded GPU instances under one deadline and
returns a handout (name, Jupyter link, SSH command) exportable to CSV and HTML; another pushes
the same course folder to every seat at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from . import html
from .errors import ValidationError
from .guard.rules import GuardRules
from .options import CREATE, GUARD
from .validation import invalid
from .vocabulary import status_word

__all__ = ["Handout", "Seat", "classroom", "push_to_class"]


class ClassroomClient(Protocol):
    """What teaching mode asks of a client: a batch, one instance, its guard and SSH work."""

    guards: Any

    @property
    def remote(self) -> Any: ...

    def create_many(self, specs: int | Sequence[Mapping[str, Any]], **options: Any) -> Any: ...

    def instance(self, instance: Any) -> Any: ...


_COLUMNS = ("name", "status", "jupyter_url", "ssh_command", "instance_id", "error")


@dataclass(frozen=True)
class Seat:
    """One student's instance on the handout (``error`` when it could not be created)."""

    name: str
    instance_id: str | None = None
    status: str | None = None
    jupyter_url: str | None = None
    ssh_command: str | None = None
    error: str | None = None


@dataclass
class Handout:
    """The class list: one ``Seat`` per student, the shared deadline and the spend cap.
    Iterable; ``to_frame()``, ``to_csv(path=None)``, ``to_html()`` and a notebook table."""

    seats: list[Seat] = field(default_factory=list)
    deadline: datetime | None = None
    budget_total: float | None = None
    price_per_hour: float | None = None

    def __iter__(self) -> Iterator[Seat]:
        return iter(self.seats)

    def __len__(self) -> int:
        return len(self.seats)

    @property
    def ok(self) -> list[Seat]:
        return [s for s in self.seats if s.error is None]

    def rows(self) -> list[dict[str, Any]]:
        return [{c: getattr(seat, c) for c in _COLUMNS} for seat in self.seats]

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(_COLUMNS))

    def to_csv(self, path: str | None = None) -> str:
        """The handout as CSV text (also written to ``path`` when given)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in self.rows())
        text = buffer.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as file:
                file.write(text)
        return text

    def summary(self) -> str:
        """``12 seats; all stop at 2026-12-01 18:00 UTC; budget $40.00 for the whole class``."""
        deadline = f"all stop at {self.deadline:%Y-%m-%d %H:%M} UTC" if self.deadline else ""
        cap = (
            f"; budget {html.format_money(self.budget_total)} for the whole class "
            "(all seats together)"
            if self.budget_total
            else ""
        )
        failed = len(self.seats) - len(self.ok)
        fail = f", {failed} failed" if failed else ""
        seats = f"{len(self.ok)} seat{'' if len(self.ok) == 1 else 's'}"
        return f"{seats}{fail}" + (f"; {deadline}" if deadline else "") + cap

    def to_html(self) -> str:
        """A standalone table to paste into a course page: Jupyter links (http(s) only)
        clickable, SSH commands in code, status in words."""
        rows = []
        for seat in self.seats:
            jupyter = html.link(seat.jupyter_url, "open") if seat.jupyter_url else "&mdash;"
            ssh = f"<code>{html.text(seat.ssh_command)}</code>" if seat.ssh_command else "&mdash;"
            state = html.text(seat.error) if seat.error else html.text(status_word(seat.status))
            rows.append([html.nowrap(seat.name), jupyter, ssh, state])
        columns = ("name", "Jupyter", "SSH", "status")
        body = html.table(columns, rows, raw_columns=columns)
        return html.frame(html.text(self.summary()), body, kind="handout")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        lines = [f"<Handout {self.summary()}>"]
        lines += [f"  {s.name}: {s.jupyter_url or s.error or '-'}" for s in self.seats]
        return "\n".join(lines)


def classroom(
    client: ClassroomClient,
    n: int,
    gpu: str | None = None,
    *,
    prefix: str = "student",
    stop_after: Any = "3h",
    budget: float | None = None,
    concurrency: int = 4,
    wait: bool = True,
    all_or_nothing: bool = False,
    **options: Any,
) -> Handout:
    """Create ``n`` instances ``<prefix>-1``..``<prefix>-n`` (a batch), guard them all with
    ONE deadline (``stop_after``, fixed now) and an optional total ``budget`` (USD for the
    whole class, all seats together: not per seat), and return the handout. Other rule keywords (``idle_stop``...) apply to every
    seat; the rest (``image``, ``template``, ``region``...) go to each create."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 200:
        raise ValidationError(f"n must be an integer from 1 to 200, got {n!r}", field="n")
    if not isinstance(prefix, str) or not prefix.strip():
        raise invalid(
            "prefix", f"must be the start of the seats' names, like 'student', got {prefix!r}"
        )
    CREATE["name"].parse(f"{prefix.strip()}-{n}", "prefix")  # every seat's name must be valid
    prefix = prefix.strip()
    extra = {k: options.pop(k) for k in list(options) if k in GUARD}
    # One parse: every seat gets the same absolute deadline, validated before any request.
    typed = GUARD.parse(
        GUARD.canonical({"stop_after": stop_after, "budget_total": budget, **extra})
    )
    rules = GuardRules.parse(**{k: v for k, v in typed.items() if v is not None})
    if not rules.active:
        raise ValidationError("a class needs a deadline or a budget", field="stop_after")
    # The rules go with each create: stored before its request, so a seat made by a batch
    # that is interrupted, or whose wait fails, is guarded all the same.
    frame = client.create_many(
        n,
        name_prefix=prefix,
        gpu=gpu,
        concurrency=concurrency,
        all_or_nothing=all_or_nothing,
        wait=wait,
        guard=rules,
        **options,
    )
    seats, prices = [], []
    for row in frame.to_dict("records"):
        instance_id, error = row.get("instance_id"), row.get("error")
        if not instance_id or (isinstance(error, str) and error):
            seats.append(Seat(str(row.get("name")), instance_id or None, error=str(error)))
            continue
        instance = client.instance(instance_id)
        client.guards.store.set_rules(
            instance.id,
            rules,
            name=instance.name,
            created_at=instance.created_at,
            price_per_hour=row.get("price_per_hour") or instance.price_per_hour,
        )
        prices.append(row.get("price_per_hour") or instance.price_per_hour or 0.0)
        seats.append(
            Seat(
                instance.name,
                instance.id,
                instance.status,
                instance.jupyter_url,
                instance.ssh_command,
            )
        )
    if any(s.instance_id for s in seats):
        client.guards.start()
    return Handout(seats, rules.stop_after, rules.budget_total, sum(prices) or None)


def push_to_class(
    client: ClassroomClient,
    seats: Iterable[Any],
    local: Any,
    remote: str | None = None,
    **options: Any,
) -> Any:
    """Push ``local`` to every seat (a Handout, or Seats, Instances, ids or names) at once;
    one row per seat: ``name``, ``instance_id``, ``ok``, ``files``, ``unchanged``, ``mb_sent``,
    ``seconds``, ``error``. Options as for ``Novita.push`` (``progress`` excepted)."""
    import pandas as pd

    targets, rows = [], []
    for seat in seats:
        if isinstance(seat, Seat) and (seat.error or not seat.instance_id):
            rows.append({"name": seat.name, "instance_id": seat.instance_id, "ok": False,
                         "error": seat.error or "no instance"})  # fmt: skip
            continue
        ref = seat.instance_id if isinstance(seat, Seat) else seat
        instance = client.instance(ref)
        targets.append((instance.id, instance.name or instance.id))
    results = client.remote.files.push_many(targets, local, remote, **options)
    for (instance_id, name), result in zip(targets, results, strict=True):
        row: dict[str, Any] = {"name": name, "instance_id": instance_id}
        if isinstance(result, BaseException):
            row.update(ok=False, error=str(getattr(result, "message", "") or result))
        else:
            row.update(ok=True, files=len(result.files), unchanged=len(result.unchanged),
                       mb_sent=round(result.bytes_sent / 1e6, 3),
                       seconds=round(result.seconds, 3), error=None)  # fmt: skip
        rows.append(row)
    columns = ["name", "instance_id", "ok", "files", "unchanged", "mb_sent", "seconds", "error"]
    return pd.DataFrame(rows, columns=columns)
