"""The unit of the metrics endpoint's utilisation values, decided from evidence: no public source
says whether ``value`` is a percentage (0-100) or a fraction (0-1), and guessing wrong would
stop every busy GPU. A value above 1 in any utilisation series proves percentages; until one
is seen (or the user says which) the unit is unknown and the idle rule does not stop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from .records import InstanceState

__all__ = ["UNITS", "UNIT_ENV", "LEARNED_KEY", "unit_from_env", "utilisation_peak", "evidence"]

UNITS = ("percent", "fraction")
#: The user's word on the unit, when they know it (e.g. from the GPU's own report).
UNIT_ENV = "NOVITA_GUARD_METRICS_UNIT"
#: Where the store keeps what was learned (per API URL).
LEARNED_KEY = "metrics_unit"


def unit_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``NOVITA_GUARD_METRICS_UNIT`` (``percent`` or ``fraction``), or None when unset."""
    raw = (os.environ if environ is None else environ).get(UNIT_ENV)
    if raw is None or not raw.strip():
        return None
    unit = raw.strip().lower()
    if unit not in UNITS:
        raise ValidationError(f"{UNIT_ENV} must be percent or fraction, got {raw!r}",
                              field=UNIT_ENV)  # fmt: skip
    return unit


def _values(series: Any) -> Iterable[float]:
    items = series if isinstance(series, list) else ()
    for item in items:
        if isinstance(item, Mapping):
            try:
                value = float(item.get("value"))
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                yield value


def utilisation_peak(payload: Any) -> float | None:
    """The largest value of every ``*Utilization`` series in a metrics answer (flat series
    and ``{avg, gpuIds: [{items}]}`` ones alike), or None when there is none."""
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), Mapping):
        payload = payload["data"]
    if not isinstance(payload, Mapping):
        return None
    values: list[float] = []
    for key, series in payload.items():
        if not str(key).endswith("Utilization"):
            continue
        if isinstance(series, Mapping):
            values.extend(_values(series.get("avg")))
            for entry in series.get("gpuIds") or ():
                if isinstance(entry, Mapping):
                    values.extend(_values(entry.get("items")))
        else:
            values.extend(_values(series))
    return max(values, default=None)


def evidence(states: Iterable[InstanceState]) -> dict[str, Any] | None:
    """``{unit: "percent", evidence, at}`` when some instance's metrics hold a value above
    1 (a fraction never does), else None: the unit stays unknown."""
    for state in states:
        peak = state.utilisation_peak
        if peak is not None and peak > 1.0:
            return {
                "unit": "percent",
                "evidence": f"a utilisation value of {peak:g} for instance {state.id} "
                "(fractions never exceed 1)",
                "at": datetime.now(UTC).isoformat(),
            }
    return None
