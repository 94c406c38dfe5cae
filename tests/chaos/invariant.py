"""The chaos trials' invariant, checked against the sandbox's own record (each instance's status
after every step of a trial): every instance with a rule stopped or deleted within one guard
interval of its bound, no busy GPU stopped by the idle rule, no rule that can never act acting,
and no rule gone from the store unless its loss (or a refused stop) was announced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.chaos.harness import GONE, INTERVAL, STOPPED

if TYPE_CHECKING:  # pragma: no cover
    from tests.chaos.harness import Planned, Trial


def check(trial: Trial) -> None:
    """Fill ``trial.report``: its violations, and the problems its announcements excuse."""
    assert trial.store is not None
    actions = trial.store.actions()
    losses = [a for a in actions
              if a["action"] == "quarantine" and a["result"].startswith("rules lost")]  # fmt: skip
    lost_named = {a["instance_id"] or a.get("name") for a in losses}
    unnamed = sum(int(a.get("count") or 1) for a in losses
                  if not a["instance_id"] and not a.get("name"))  # fmt: skip
    failed = {a["instance_id"] for a in actions if a["action"] == "failed"}
    bounds = trial._bounds()
    kept = {r.id for r in trial.store.records()}
    for plan in trial.plans:
        for instance_id in plan.ids:
            problems = [p for p in [_late(trial, plan, instance_id, bounds.get(plan.name))]
                        if p is not None]  # fmt: skip
            final = trial.history.get(instance_id, [(0.0, "gone")])[-1][1]
            if final not in GONE and instance_id not in kept:
                problems.append(f"{plan.name} ({instance_id}): its rules are gone from the store")
            if not problems:
                continue
            if lost_named & {instance_id, plan.name} or instance_id in failed:
                trial.report.excused.extend(f"{p} (announced)" for p in problems)
            elif unnamed > 0:  # a loss the store announced without a name to give
                unnamed -= 1
                trial.report.excused.extend(f"{p} (announced, unnamed)" for p in problems)
            else:
                trial.report.violations.extend(problems)


def _late(trial: Trial, plan: Planned, instance_id: str, bound: float | None) -> str | None:
    history = trial.history.get(instance_id, [])
    if plan.extreme:
        stopped = [t for t, s in history if s in STOPPED]
        return (
            f"{plan.name} ({instance_id}): stopped by a rule that cannot act" if stopped else None
        )
    if plan.busy and "idle_stop" in plan.rules and bound is not None:
        early = [t for t, s in history if s in STOPPED and t < bound]
        if early:
            return f"{plan.name} ({instance_id}): a busy GPU stopped by the idle rule"
    if bound is None:
        return None
    if "idle_stop" in plan.rules and not plan.busy:
        bound = max(bound, trial.running_at.get(instance_id, 0.0) + 120.0 + INTERVAL)
    wanted = GONE if "delete_after" in plan.rules else STOPPED
    late = [(t, s) for t, s in history if t >= bound + INTERVAL and s not in wanted]
    if late:
        t, status = late[0]
        return (f"{plan.name} ({instance_id}): still {status} {t - bound:.0f} s after its bound "
                f"(one interval is {INTERVAL:g} s)")  # fmt: skip
    return None
