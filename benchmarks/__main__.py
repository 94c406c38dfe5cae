"""`python -m benchmarks [--quick] [--results PATH]`: measure every figure on the sandbox.
Prints the machine, then one ``name: value (baseline: value, ratio: x)`` line per figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .harness import Figure, machine_header

RATIO_NOTE = "ratio: value/baseline, or baseline/value where the name says (speedup, x fewer)"

#: (section title, module, function) in the order they run; imported lazily so one broken
#: piece of the package costs its own figures, not the whole run.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("client overhead vs bare requests", "figures_http", "client_overhead"),
    ("pooled vs unpooled", "figures_http", "pooling"),
    ("cached products", "figures_http", "cached_products"),
    ("fallback calls vs per-region fetching", "figures_provision", "fallback_calls"),
    ("batch speedup vs sequential", "figures_provision", "batch_speedup"),
    ("readiness vs fixed 1-s polling", "figures_wait", "readiness"),
    ("learned waits (simulated)", "figures_learned", "simulate"),
    ("learned waits (sandbox)", "figures_learned", "sandbox"),
    ("watcher calls per tick", "figures_wait", "watcher_calls_per_tick"),
    ("sandbox throughput", "figures_sandbox", "requests_per_second"),
    ("instances() vs the raw list call", "figures_http", "frames_overhead"),
    ("5,000 instances into a DataFrame", "figures_sandbox", "many_instances_frame"),
    ("extension load time", "figures_extension", "extension_load_time"),
    ("watcher CPU", "figures_wait", "watcher_cpu"),
    ("guard process CPU", "figures_guard", "guard_cpu"),
    ("guard soak", "figures_guard_soak", "guard_soak"),
    ("doctor vs catalog size", "figures_doctor", "linear_in_catalog_size"),
    ("runs over SSH vs OpenSSH", "figures_remote", "run_over_ssh"),
    ("push and pull vs OpenSSH's sftp", "figures_remote_files", "push_pull_throughput"),
)


def _load(module: str, function: str) -> Callable[[bool], list[Figure]]:
    from importlib import import_module

    return getattr(import_module(f"benchmarks.{module}"), function)


def run(quick: bool, only: list[str] | None = None) -> tuple[list[Figure], list[str]]:
    """Run every section; return the figures and the titles of the sections that failed."""
    figures: list[Figure] = []
    failed: list[str] = []
    for title, module, function in SECTIONS:
        if only and not any(word in f"{title} {function}" for word in only):
            continue
        started = time.perf_counter()
        try:
            section_figures = _load(module, function)(quick)
        except Exception:  # a failed section is reported and the run goes on
            failed.append(title)
            print(f"FAILED {title}:", file=sys.stderr)
            traceback.print_exc()
            continue
        for figure in section_figures:
            print(figure.line(), flush=True)
            for key, value in figure.notes.items():
                print(f"    {key}: {value}", flush=True)
        print(f"    [{title}: measured in {time.perf_counter() - started:.1f} s]", flush=True)
        figures.extend(section_figures)
    return figures, failed


def methods() -> list[tuple[str, str]]:
    """(section title, how it is measured): each measuring function's docstring, so the
    description printed next to the figures is the one kept next to the code."""
    import inspect

    return [
        (title, " ".join(inspect.getdoc(_load(module, function)).split()))
        for title, module, function in SECTIONS
    ]


def _targets_summary(figures: list[Figure]) -> list[str]:
    judged = [f for f in figures if f.met is not None]
    missed = [f"{f.name} (target {f.target})" for f in judged if not f.met]
    lines = [f"targets met: {len(judged) - len(missed)}/{len(judged)}"]
    lines += [f"  missed: {item}" for item in missed]
    return lines


def write_results(path: Path, header: list[str], figures: list[Figure], total: float) -> None:
    """The figures as Markdown, for the README."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Measured {stamp} by `python -m benchmarks` in {total:.0f} s.",
        "",
    ]
    lines += [f"- {line}" for line in header[1:]]
    lines += [f"- {RATIO_NOTE}"]
    lines += ["", "```"]
    for figure in figures:
        lines.append(figure.line())
        lines += [f"    {key}: {value}" for key, value in figure.notes.items()]
    lines += ["```", ""]
    lines += ["| figure | target | met |", "|---|---|---|"]
    lines += [
        f"| {f.name} | {f.target or '-'} | {'yes' if f.met else 'no'} |"
        for f in figures
        if f.met is not None
    ]
    lines += ["", "How each figure is measured:", ""]
    lines += [f"- **{title}**: {text}" for title, text in methods()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sample sizes")
    parser.add_argument("--results", type=Path, help="also write the figures as Markdown here")
    parser.add_argument("--only", nargs="*", help="run only sections whose title has a word")
    args = parser.parse_args(argv)

    # Thousands of sandbox instances are created: keep them out of the user's real ledger.
    ledger_home = tempfile.TemporaryDirectory(prefix="novita-bench-")
    os.environ["NOVITA_NOTEBOOK_HOME"] = ledger_home.name
    header = machine_header()
    if args.quick:
        header[0] += " (quick smoke run: sample sizes too small for real figures)"
    print("\n".join(header), flush=True)
    print(RATIO_NOTE, flush=True)
    started = time.perf_counter()
    figures, failed = run(args.quick, args.only)
    total = time.perf_counter() - started
    print(f"total: {total:.1f} s", flush=True)
    for line in _targets_summary(figures):
        print(line)
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    if args.results:
        write_results(args.results, header, figures, total)
    ledger_home.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
