"""`python -m benchmarks --quick` runs end to end and prints every figure line in the
documented format. Timings are not asserted: quick samples are far too small for that.
"""

from __future__ import annotations

import re
import shutil
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
    "client overhead per call vs bare requests",
    "pooled vs unpooled call time",
    "HTTP calls for 10 cached products() calls vs uncached listings",
    "round trips from create() to its POST for an 8-region fallback",
    "products calls before that POST",
    "batch create of 8 instances at concurrency 4 vs sequential",
    "readiness calls vs fixed 1-s polling, 10 s provisioning",
    "readiness detection lag vs the provisioning time, 10 s provisioning",
    "readiness calls vs fixed 1-s polling, 30 s provisioning",
    "readiness detection lag vs the provisioning time, 30 s provisioning",
    "readiness calls vs fixed 1-s polling, 90 s provisioning",
    "readiness detection lag vs the provisioning time, 90 s provisioning",
    "learned readiness calls vs fixed 1-s polling, 10 s, with history (simulated",
    "learned readiness lag in % of provisioning, 10 s, with history (simulated",
    "learned readiness calls without history vs today's schedule, 10 s (simulated",
    "ETA median absolute error in % of provisioning, 10 s, with history (simulated",
    "learned readiness calls vs fixed 1-s polling, 30 s, with history (simulated",
    "learned readiness lag in % of provisioning, 30 s, with history (simulated",
    "learned readiness calls without history vs today's schedule, 30 s (simulated",
    "ETA median absolute error in % of provisioning, 30 s, with history (simulated",
    "learned readiness calls vs fixed 1-s polling, 90 s, with history (simulated",
    "learned readiness lag in % of provisioning, 90 s, with history (simulated",
    "learned readiness calls without history vs today's schedule, 90 s (simulated",
    "ETA median absolute error in % of provisioning, 90 s, with history (simulated",
    "learned readiness calls vs fixed 1-s polling, 10 s, with history (sandbox",
    "learned readiness lag in % of provisioning, 10 s, with history (sandbox",
    "learned readiness calls without history vs today's schedule, 10 s (sandbox",
    "ETA median absolute error in % of provisioning, 10 s, with history (sandbox",
    "learned readiness calls vs fixed 1-s polling, 30 s, with history (sandbox",
    "learned readiness lag in % of provisioning, 30 s, with history (sandbox",
    "learned readiness calls without history vs today's schedule, 30 s (sandbox",
    "ETA median absolute error in % of provisioning, 30 s, with history (sandbox",
    "learned readiness calls vs fixed 1-s polling, 90 s, with history (sandbox",
    "learned readiness lag in % of provisioning, 90 s, with history (sandbox",
    "learned readiness calls without history vs today's schedule, 90 s (sandbox",
    "ETA median absolute error in % of provisioning, 90 s, with history (sandbox",
    "watcher calls per tick vs per-instance polling (100 instances)",
    "sandbox requests per second vs the 1,000 target",
    "instances() vs api.list_instances() for 40 instances",
    "instances() vs api.list_instances() for 100 instances",
    "500 instances paged into a DataFrame vs the 2-s budget",
    "extension load time vs import pandas",
    "watcher CPU in % of a core vs the 2 % budget",
    "guard process CPU in % of a core vs the 0.5 % budget",
    "guard soak max overrun in guard intervals",
    "guard soak p99 overrun in guard intervals",
    "guard soak guard-process memory at the end vs the start",
    "guard soak guard-process threads at the end vs the start",
    "doctor with 6,000 catalog items vs 600",
)
#: The runs-over-SSH figures need OpenSSH's client as their baseline.
if shutil.which("ssh") and shutil.which("sshpass"):
    EXPECTED += (
        "first output of a cold run() (new connection) vs OpenSSH's ssh, same command",
        "first output of a warm run() (open connection) vs OpenSSH's ssh cold",
        "largest lag of a consumer of 1 MB of run output vs the 1-s budget",
    )
if shutil.which("sftp") and shutil.which("sshpass"):
    EXPECTED += (
        "push() throughput of a 20 MB folder vs OpenSSH's sftp put -r",
        "pull() throughput of a 20 MB folder vs OpenSSH's sftp get -r",
    )


def test_quick_benchmark_prints_every_figure(tmp_path):
    results = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
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
