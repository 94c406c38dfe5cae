"""The doctor: read-only calls against a Novita API that check what the client assumes about
it (key, latency, paging base, catalog shape, region join, filters, price units, template
parameters, field shapes, timestamps, statuses, metrics, spot fields, error statuses, unknown
fields). Each line is ok, differs, unverified (nothing to look at: never ok) or failed (no usable
answer: a refused key, or an answer that is not JSON from the API host).

Use: ``run_doctor(api_url, api_key)`` returns a ``DoctorReport``; print it, show it in a
notebook, and paste ``report.bug_report()`` (never the key, ids anonymised) when it differs.
``novita-notebook doctor`` (``main``) exits with ``report.exit_code``: 0 everything verified,
1 something differs or failed, 3 nothing differs but something the package relies on is
unverified (2: bad input). Also ``Novita().doctor()`` and ``%novita doctor``.
docs/assumptions.md says, guess by guess, what each line checks.
"""

from __future__ import annotations

from .command import main
from .report import DoctorReport, Line
from .run import run_doctor

__all__ = ["DoctorReport", "Line", "run_doctor", "main"]
