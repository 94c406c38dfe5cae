"""The notebook session's own options, declared once: ``%config NovitaMagics`` traits that are
no setting of the client (how errors show, the sandbox's speed, the offline fallback, whether
the guard process starts by itself).
"""

from __future__ import annotations

from . import kinds
from .schema import Family, Option

__all__ = ["SESSION", "SANDBOX_SPEED"]

#: How much faster than real time an in-process sandbox runs unless told otherwise (by
#: ``Novita.sandbox(speed=...)`` and ``%novita sandbox start``, alike): a create that takes a
#: minute on Novita takes about a second, so a newcomer following the README waits seconds.
SANDBOX_SPEED = 50.0

SESSION = Family(
    "session",
    "The notebook session: %config NovitaMagics options of the magics themselves",
    (
        Option(
            "auto_sandbox",
            kinds.SWITCH,
            "start the offline sandbox by itself when no API key is configured",
            default=False,
            env="NOVITA_AUTO_SANDBOX",
            trait="auto_sandbox",
            python=False,
        ),
        Option(
            "short_errors",
            kinds.SWITCH,
            "show user and API errors as one short message with a hint (no traceback)",
            default=True,
            trait="short_errors",
            python=False,
        ),
        Option(
            "sandbox_speed",
            kinds.number("must be a number > 0 (1 = real time, 60 = a minute a second)"),
            "clock speed-up of the sandbox %novita sandbox start runs",
            default=SANDBOX_SPEED,
            trait="sandbox_speed",
            python=False,
        ),
        Option(
            "guard_autostart",
            kinds.SWITCH,
            "start the guard process by itself when an instance is guarded",
            default=True,
            env="NOVITA_GUARD_AUTOSTART",
            trait="guard_autostart",
            python=False,
        ),
    ),
)
