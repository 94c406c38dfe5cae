"""The benchmark harness: the Figure record, its one-line format, the machine header and timers.
Figures print as ``name: value (baseline: value, ratio: x)``, always from measurements.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    """One measured figure and the baseline it is compared against.

    ``ratio`` is ``value / baseline`` unless ``ratio_of`` says ``"baseline/value"`` (for
    figures where bigger baselines are worse, such as a speedup or "x fewer calls").
    ``target`` describes the goal in words and ``met`` whether this run reached it.
    """

    name: str
    value: float
    unit: str
    baseline: float
    ratio_of: str = "value/baseline"
    target: str = ""
    met: bool | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        numerator, denominator = (
            (self.baseline, self.value)
            if self.ratio_of == "baseline/value"
            else (self.value, self.baseline)
        )
        if denominator == 0:
            return math.inf if numerator else 1.0
        return numerator / denominator

    def line(self) -> str:
        """The figure as the one line the README and the smoke test expect."""
        return (
            f"{self.name}: {format_quantity(self.value, self.unit)} "
            f"(baseline: {format_quantity(self.baseline, self.unit)}, "
            f"ratio: {format_number(self.ratio)}x)"
        )


def format_number(value: float) -> str:
    """Three significant digits, no scientific notation for the ranges benchmarks produce."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    magnitude = abs(value)
    if magnitude >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_quantity(value: float, unit: str) -> str:
    number = format_number(value)
    return f"{number} {unit}" if unit else number


def machine_header() -> list[str]:
    """Where the figures were measured: platform, CPU count and Python."""
    return [
        "novita-notebook benchmarks",
        f"machine: {platform.platform()} ({platform.machine()}), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()})",
        f"executable: {sys.executable}",
    ]


def median(values: list[float]) -> float:
    if not values:
        raise ValueError("median of no measurements")
    return statistics.median(values)


def time_per_call(call: Callable[[], object], repeats: int) -> list[float]:
    """Wall time of each of ``repeats`` calls, in seconds."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def interleaved_per_call(
    first: Callable[[], object], second: Callable[[], object], repeats: int, rounds: int = 5
) -> tuple[float, float]:
    """Median per-call times of two calls measured in alternating rounds.

    Alternating (ABAB...) spreads the machine's noise evenly over both sides of a comparison,
    and the median of the round medians discards the rounds a neighbour process disturbed.
    """
    first_medians: list[float] = []
    second_medians: list[float] = []
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        first_medians.append(median(time_per_call(first, per_round)))
        second_medians.append(median(time_per_call(second, per_round)))
    return median(first_medians), median(second_medians)
