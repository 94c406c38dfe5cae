"""Safe when a guess about Novita is wrong: every switch that serves the other plausible
answer to an unverified guess (docs/assumptions.md) × the lifecycle, the doctor and the guard.
The package either works or fails with a clear message; the doctor flags every switch that
changes something the package relies on (and stays verified for the others); no instance is
lost, created twice or wrongly stopped. Each test runs on a fresh fast sandbox.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from novita_notebook import Novita
from novita_notebook.doctor import run_doctor
from novita_notebook.doctor.report import DIFFERS, EXIT_OK, OK
from novita_notebook.errors import APIError
from novita_notebook.guard.backend import HttpGuardBackend
from novita_notebook.guard.enforcer import Enforcer
from novita_notebook.guard.rules import GuardRules
from novita_notebook.sandbox import Sandbox
from novita_notebook.sandbox import faults as sandbox_faults
from tests.assumptions.cases import CASES, Case
from tests.doctor.doctor_helpers import AGE_SECONDS, verifiable_account

SPEED = 600.0
IMAGE = "ubuntu:22.04"
GONE = ("toRemove", "removing", "removed")


def _params(column: str) -> list:
    marks = []
    for case in CASES:
        extra = []
        if column == "guard" and case.guard_pending:
            extra.append(pytest.mark.xfail(reason=case.guard_pending, strict=False))
        marks.append(pytest.param(case, id=case.id, marks=extra))
    return marks


@pytest.fixture
def world(request, monkeypatch) -> Iterator[tuple[Sandbox, Novita]]:
    """A sandbox with the case's switches and a fast client (no guard process)."""
    case: Case = request.getfixturevalue("case")
    monkeypatch.setenv("NOVITA_GUARD_AUTOSTART", "0")
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 1.0)
    with Sandbox(speed=SPEED, seed=7, switches=case.switches) as sandbox:
        novita = Novita(
            api_key=sandbox.api_key,
            api_url=sandbox.url,
            poll_interval=0.02,
            retry_backoff=0.25,
            retry_backoff_max=5.0,
        )
        try:
            yield sandbox, novita
        finally:
            novita.close()


def _held(sandbox: Sandbox) -> dict[str, dict]:
    """The sandbox's own records of live instances: id → {name, status, restarts, actions}."""
    with sandbox.world.lock:
        sandbox.world.settle_all()
        return {
            r.id: {"name": r.name, "status": r.status, "restarts": r.restarts, "actions": r.actions}
            for r in sandbox.world.instances.values()
            if r.status not in GONE
        }


def _posts(sandbox: Sandbox, action: str) -> Counter:
    """instanceId → how many POSTs of ``action`` reached the sandbox."""
    return Counter(
        json.loads(r["body"])["instanceId"]
        for r in sandbox.requests()
        if r["method"] == "POST" and r["path"].endswith(f"/gpu/instance/{action}")
    )


def _nothing_lost_or_doubled(sandbox: Sandbox, novita: Novita) -> None:
    held = _held(sandbox)
    names = Counter(record["name"] for record in held.values())
    assert all(count == 1 for count in names.values()), f"created twice: {names}"
    known = set(novita.mine()["id"]) if held else set()
    assert set(held) <= known, f"lost (not in mine()): {set(held) - known}"


# -- lifecycle ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", _params("lifecycle"))
def test_lifecycle(case: Case, world) -> None:
    sandbox, novita = world
    available = novita.products(available=True)
    assert len(available) > 0 and available["cluster_id"].notna().all()
    assert not available.duplicated(["product_id", "region"]).any(), "duplicate rows"
    detail = novita.products(detail=True)
    regions = novita.regions().set_index("name")
    for name, rows in detail.groupby("region"):  # counts match the rows: nothing inflated
        assert regions.loc[name, "products"] == rows["product_id"].nunique()
        assert regions.loc[name, "products_available"] == rows["available"].sum()
    inst = novita.create("life", gpu="RTX 3090", image=IMAGE, wait=True, timeout=60)
    assert inst.status == "running" and not inst.failed
    if case.faults:
        sandbox.clear_requests()
        sandbox.set_faults(**case.faults)
    restarted = novita.restart(inst.id)
    assert novita.wait(restarted, timeout=60).status == "running"
    sandbox.clear_faults()
    if case.faults:  # the faults really met the calls: lost answers, or 429s to wait out
        statuses = {r["status"] for r in sandbox.requests()}
        assert statuses & {0, 429}, statuses
    assert _held(sandbox)[inst.id]["restarts"] == 1, "restarted once, whatever the answers"
    novita.stop(inst.id)
    assert novita.wait(inst.id, until="exited", timeout=60).status == "exited"
    novita.start(inst.id)
    assert novita.wait(inst.id, timeout=60).status == "running"
    _nothing_lost_or_doubled(sandbox, novita)
    if case.switches.get("walletNotFound"):
        with pytest.raises(APIError) as refused:
            novita.delete(inst.id)
        assert refused.value.reason == "WALLET_NOT_FOUND" and "nothing was changed" in (
            refused.value.hint or ""
        )
        assert inst.id in _held(sandbox) and inst.id in set(novita.mine()["id"])  # not lost
        sandbox.configure(walletNotFound=False)
    novita.delete(inst.id)
    assert novita.wait(inst.id, until="removed", timeout=60).status == "removed"
    assert _held(sandbox) == {}


# -- doctor ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", _params("doctor"))
def test_doctor(case: Case, world) -> None:
    sandbox, _ = world
    verifiable_account(sandbox)
    before = {r["method"] for r in sandbox.requests()}
    sandbox.clear_requests()
    report = run_doctor(sandbox.api_url, sandbox.api_key, timeout=5)
    assert {r["method"] for r in sandbox.requests()} == {"GET"}, before  # read-only
    if case.doctor is None:
        assert report.exit_code == EXIT_OK, report.text()
    else:
        line = report.line(case.doctor)
        assert line is not None and line.status == DIFFERS, report.text()
        assert report.exit_code != EXIT_OK
        others = [n.name for n in report.lines if n.status not in (OK, "unverified")]
        assert others, report.text()


# -- guard ----------------------------------------------------------------------------------------
def _aged(sandbox: Sandbox, novita: Novita, names: list[str], gpu_busy: dict[str, float]) -> dict:
    """Running instances created AGE_SECONDS ago (their metrics hold history), by name."""
    world = sandbox.world
    real = world.clock
    world.clock = lambda: real() - AGE_SECONDS
    try:
        made = {
            name: novita.create(name, gpu="RTX 3090", image=IMAGE, guard=False) for name in names
        }
        for name, percent in gpu_busy.items():
            sandbox.set_utilization(made[name].id, percent)
    finally:
        world.clock = real
    for inst in made.values():
        novita.wait(inst.id, timeout=30)
    return made


@pytest.mark.parametrize("case", _params("guard"))
def test_guard(case: Case, world) -> None:
    sandbox, novita = world
    made = _aged(
        sandbox,
        novita,
        ["deadline", "busy", "idle", "doomed", "free"],
        {"busy": 90.0, "idle": 1.0},
    )
    store = novita.guards.store
    rules = {
        "deadline": {"stop_after": 60},
        "busy": {"idle_stop": 60},
        "idle": {"idle_stop": 60},
        "doomed": {"delete_after": 60},
    }
    for name, rule in rules.items():
        store.set_rules(made[name].id, GuardRules.parse(**rule), name=name)
    backend = HttpGuardBackend(sandbox.url, lambda: sandbox.api_key)
    enforcer = Enforcer(backend, store, grace=timedelta(seconds=5))
    start = datetime.now(UTC)
    try:
        for offset in (0, 30, 56, 61, 63, 68, 75, 90, 110):
            enforcer.tick(start + timedelta(seconds=offset))
    finally:
        backend.close()
    held = _held(sandbox)
    stops, deletes = _posts(sandbox, "stop"), _posts(sandbox, "delete")
    ids = {name: inst.id for name, inst in made.items()}
    assert stops[ids["deadline"]] >= 1 and held[ids["deadline"]]["status"] != "running"
    assert stops[ids["busy"]] == 0, "a busy GPU was stopped"
    assert stops[ids["free"]] == 0 and deletes[ids["free"]] == 0, "an unguarded one was touched"
    assert all(not record["actions"] for record in held.values())  # nothing acted twice
    if case.switches.get("walletNotFound"):
        # The delete was refused: the instance is still there, still guarded, logged as failed.
        assert ids["doomed"] in held and store.get(ids["doomed"]) is not None
        outcomes = [a["result"] for a in store.actions(ids["doomed"]) if a["action"] == "delete"]
        assert outcomes and all(o.startswith("failed") for o in outcomes), outcomes
    else:
        assert ids["doomed"] not in held and deletes[ids["doomed"]] >= 1
    _nothing_lost_or_doubled(sandbox, novita)
