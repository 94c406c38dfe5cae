"""`python -m benchmarks --quick` runs end to end and prints every figure line in the
documented format. Timings are not asserted: quick samples are far too small for that.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIGURE_LINE = re.compile(
    r"^(?P<name>[^:]+(?::[^:(]+)?): (?P<value>[\d,.]+|inf|nan)\b.* "
    r"\(baseline: (?P<baseline>[\d,.]+|inf|nan)\b.*, ratio: (?P<ratio>[\d,.]+|inf|nan)x\)$"
)
#: The start of every figure's name, in the order the run prints them.
EXPECTED = (
    "client overhead per call",
    "pooled call time",
    "HTTP calls for 10 cached products() calls",
    "products calls for an 8-region fallback",
    "create_many 8 instances",
    "readiness calls, 10 s provisioning",
    "readiness detection lag, 10 s provisioning",
    "readiness calls, 30 s provisioning",
    "readiness detection lag, 30 s provisioning",
    "readiness calls, 90 s provisioning",
    "readiness detection lag, 90 s provisioning",
    "watcher calls per tick (100 instances)",
    "sandbox requests per second",
    "500 instances paged into a DataFrame",
    "extension load time",
    "watcher CPU, 20 instances",
)


def test_quick_benchmark_prints_every_figure(tmp_path):
    results = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("novita-notebook benchmarks")
    assert any(
        line.startswith("machine: ") and "CPUs" in line and "Python" in line for line in lines
    )

    figures = [line for line in lines if FIGURE_LINE.match(line)]
    names = [FIGURE_LINE.match(line)["name"] for line in figures]
    for expected, name in zip(EXPECTED, names, strict=True):
        assert name.startswith(expected), f"expected {expected!r}, got {name!r}"
    for line in figures:
        match = FIGURE_LINE.match(line)
        assert match["ratio"] not in {"nan"}, line

    written = results.read_text()
    assert "machine:" in written
    for line in figures:
        assert line in written
