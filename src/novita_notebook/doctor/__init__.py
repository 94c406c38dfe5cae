"""The doctor: read-only calls against a Novita API that check the client's assumptions
(key, latency, paging base, catalog shape, template parameters, field shapes, unknown fields).

Use: ``run_doctor(api_url, api_key)`` returns a ``DoctorReport``; print it, show it in a
notebook, and paste ``report.bug_report()`` (never the key, ids anonymised) when it differs.

Wiring (for the helper who connects it; nothing else needs to change here):

- ``cli.py``: add ``doctor`` to USAGE ("check the client's assumptions against the API your
  key reaches (read-only)") and ``elif command == "doctor": from .doctor import main as run``.
  ``main(argv)`` (doctor/command.py) reads ``--api-url``/``--timeout``/``--bug-report``, the
  key from NOVITA_API_KEY or .env via ``config.load_config``, prints the report and exits 0
  when ok, 1 when something differs, 2 on bad input.
- ``Novita.doctor(self, timeout: float = 10.0) -> DoctorReport`` in client.py:
  ``from .doctor import run_doctor`` (lazily), then
  ``return run_doctor(self.config.api_url, self.transport.api_key, timeout=timeout)``.
- ``%novita doctor`` in notebook/: ``sub.add_parser("doctor", help="check the client's
  assumptions against the real API (read-only)")`` plus ``--timeout``, and
  ``def cmd_doctor(self, args): return self.get_client().doctor(timeout=args.timeout or 10)``
  (the returned report renders itself: ``_repr_html_`` and a text repr).
"""

from __future__ import annotations

from .command import main
from .report import DoctorReport, Line
from .run import run_doctor

__all__ = ["DoctorReport", "Line", "run_doctor", "main"]
