"""The doctor's result: one ``Line`` per check (ok / differs / unverified / failed) in a
``DoctorReport`` with aligned text, a plain HTML table, a paste-able bug report and the exit
code: 0 everything verified, 1 something differs or failed, 3 nothing differs but something
the package relies on could not be verified.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

OK = "ok"  # checked, and as the package assumes
DIFFERS = "differs"  # checked, and not as the package assumes
UNVERIFIED = "unverified"  # could not be checked (nothing to look at): never ok
FAILED = "failed"  # no usable answer: key rejected, API unreachable, not JSON, another host
STATUSES = (OK, DIFFERS, UNVERIFIED, FAILED)

EXIT_OK = 0  # every line verified and as assumed
EXIT_DIFFERS = 1  # something differs or failed
EXIT_UNVERIFIED = 3  # nothing differs, but something the package relies on is unverified

_ANON = "<anon>"


@dataclass(frozen=True)
class Line:
    """One check: ``name`` (what), ``status`` (one of STATUSES), ``detail`` (values only) and
    ``relied_on`` (False for a check of something the package never depends on: its being
    unverified does not count against the exit code)."""

    name: str
    status: str
    detail: str
    relied_on: bool = True

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)}")


class DoctorReport:
    """What the doctor found about one API endpoint. ``ok`` is False when any line differs
    or failed; ``verified`` is True only when every line the package relies on is ok
    (``unverified`` lines say how to make the doctor tell). ``exit_code``: 0, 1 or 3."""

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
        """Nothing differs and nothing failed (some lines may be unverified)."""
        return all(line.status in (OK, UNVERIFIED) for line in self.lines)

    @property
    def unverified(self) -> list[Line]:
        """The lines the package relies on that the doctor could not verify."""
        return [line for line in self.lines if line.status == UNVERIFIED and line.relied_on]

    @property
    def verified(self) -> bool:
        return self.ok and bool(self.lines) and not self.unverified

    @property
    def exit_code(self) -> int:
        """0 all verified, 1 something differs or failed, 3 nothing differs but something the
        package relies on is unverified (``novita-notebook doctor`` exits with it)."""
        if not self.ok or not self.lines:
            return EXIT_DIFFERS
        return EXIT_UNVERIFIED if self.unverified else EXIT_OK

    def verdict(self) -> str:
        """The report's one-line verdict."""
        if not self.ok:
            return "something differs"
        names = ", ".join(line.name for line in self.unverified)
        if names:
            return f"nothing differs, but not verified: {names}"
        return "everything as the client assumes"

    def line(self, name: str) -> Line | None:
        """The line named ``name``, if the doctor got that far."""
        return next((line for line in self.lines if line.name == name), None)

    def text(self) -> str:
        width = max((len(line.name) for line in self.lines), default=0)
        head = f"Novita doctor for {self.api_host}: {self.calls} read-only calls, {self.verdict()}"
        rows = [
            f"  {line.name.ljust(width)}  {line.status.ljust(10)}  {line.detail}"
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

        looks = {OK: "running", DIFFERS: "starting", UNVERIFIED: "unknown", FAILED: "failed"}
        rows = [
            [pieces.nowrap(line.name), pieces.badge(line.status, looks[line.status]), line.detail]
            for line in self.lines
        ]
        title = f"Novita doctor for {pieces.text(self.api_host)}"
        body = pieces.muted(pieces.text(f"{self.calls} read-only calls, {self.verdict()}"))
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
