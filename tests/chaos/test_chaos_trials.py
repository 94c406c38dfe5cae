"""Randomised chaos trials in one process (see harness.py): interrupted and killed creates,
damaged stores and ledgers, extreme values, listings that drop instances or fail, refused stops,
guards killed mid-action, stop/start cycles and extensions across clients. Each trial checks the
invariant against the sandbox's own record; its seed is its id, so a failure replays with
the node id the failure prints (``...[seed=N]``).
"""

from __future__ import annotations

import pytest
from tests.chaos.conftest import FIRST_SEED, TRIALS
from tests.chaos.harness import Trial


@pytest.mark.parametrize(
    "seed", range(FIRST_SEED, FIRST_SEED + TRIALS), ids=lambda seed: f"seed={seed}"
)
def test_no_guarded_instance_outlives_its_bound_and_no_rule_is_lost_silently(
    seed, chaos_sandbox, guards_ticked_by_the_trial, request
):
    report = Trial(seed, chaos_sandbox).run()
    story = "\n  ".join(report.story)
    print(f"chaos trial seed={seed}:\n  {story}")
    for line in report.excused:
        print(f"  announced: {line}")
    assert report.violations == [], (
        f"seed={seed}: {report.violations}\n  {story}\nreplay: pytest '{request.node.nodeid}' -s"
    )
