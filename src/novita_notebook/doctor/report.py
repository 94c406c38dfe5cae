"""The doctor's result: one ``Line`` per check (ok / differs / unknown / failed) in a
``DoctorReport`` with aligned text, a plain HTML table and a paste-able bug report.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

OK = "ok"
DIFFERS = "differs"
UNKNOWN = "unknown"
FAILED = "failed"  # the doctor could not go on: key rejected, API unreachable
STATUSES = (OK, DIFFERS, UNKNOWN, FAILED)

_ANON = "<anon>"


@dataclass(frozen=True)
class Line:
    """One check: ``name`` (what), ``status`` (one of STATUSES) and ``detail`` (values only)."""

    name: str
    status: str
    detail: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)}")


class DoctorReport:
    """What the doctor found about one API endpoint. ``ok`` is False when any line differs
    or failed; ``unknown`` lines say how to make the doctor tell, and do not count against it.
    """

    def __init__(
        self,
        api_host: str,
        lines: Iterable[Line],
        *,
        calls: int = 0,
        private: Iterable[str] = (),
    ) -> None:
        self.api_host = api_host
        self.lines: list[Line] = list(lines)
        self.calls = calls
        # Instance/template/storage ids and names seen: bug_report() replaces any that slipped
        # into a detail. Longest first so that an id containing another is replaced whole.
        self._private = tuple(sorted({p for p in private if len(p) >= 3}, key=len, reverse=True))

    @property
    def ok(self) -> bool:
        return all(line.status in (OK, UNKNOWN) for line in self.lines)

    def line(self, name: str) -> Line | None:
        """The line named ``name``, if the doctor got that far."""
        return next((line for line in self.lines if line.name == name), None)

    def text(self) -> str:
        width = max((len(line.name) for line in self.lines), default=0)
        head = f"Novita doctor for {self.api_host}: {self.calls} read-only calls, " + (
            "everything as the client assumes" if self.ok else "something differs"
        )
        rows = [
            f"  {line.name.ljust(width)}  {line.status.ljust(7)}  {line.detail}"
            for line in self.lines
        ]
        tail = [] if self.ok else ["Paste report.bug_report() into a bug report (no key, no ids)."]
        return "\n".join([head, *rows, *tail])

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        # The package's table pieces (imported here: the doctor itself needs none of them).
        from .. import html as pieces

        looks = {OK: "running", DIFFERS: "starting", UNKNOWN: "unknown", FAILED: "failed"}
        rows = [
            [pieces.nowrap(line.name), pieces.badge(line.status, looks[line.status]), line.detail]
            for line in self.lines
        ]
        verdict = "everything as the client assumes" if self.ok else "something differs"
        title = f"Novita doctor for {pieces.text(self.api_host)}"
        body = pieces.muted(pieces.text(f"{self.calls} read-only calls, {verdict}"))
        body += pieces.table(("check", "status", "detail"), rows, raw_columns=("check", "status"))
        return pieces.frame(title, body, kind="doctor")

    def bug_report(self) -> str:
        """A short text to paste into a bug report when anything differs or failed ("" when
        all is ok). Values only: never the key, and ids or names seen are anonymised."""
        if self.ok:
            return ""
        try:
            from importlib.metadata import version

            package = version("novita-notebook")
        except Exception:  # noqa: BLE001 - a source checkout without metadata
            package = "unknown"
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            "novita-notebook doctor report",
            f"package {package}, Python {platform.python_version()}, {stamp}",
            f"api host {self.api_host}, {self.calls} read-only calls",
        ]
        for line in self.lines:
            if line.status != OK:
                lines.append(f"- {line.name}: {line.status}: {self._anonymise(line.detail)}")
        as_assumed = [line.name for line in self.lines if line.status == OK]
        if as_assumed:
            lines.append(f"- as assumed: {', '.join(as_assumed)}")
        return "\n".join(lines) + "\n"

    def _anonymise(self, text: str) -> str:
        for value in self._private:
            text = re.sub(re.escape(value), _ANON, text)
        return text
