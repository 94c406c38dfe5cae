"""create and create_many under faults: ambiguous creates, 5xx storms, dropped connections and
latency past the read timeout. The sandbox holds exactly what the caller was told it holds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sandbox_truth import live_instances, outcome, requests_to

from novita_notebook import Novita
from novita_notebook.errors import NovitaError
from novita_notebook.provisioning import idempotency
from novita_notebook.sandbox import faults as sandbox_faults

IMAGE = "ubuntu:22.04"


def _names(sandbox, prefix: str) -> Counter:
    return Counter(item["name"] for item in live_instances(sandbox, prefix))


def test_every_create_ambiguous_still_makes_exactly_one_instance(sandbox, fast_client):
    sandbox.set_faults(ambiguousCreateRate=1.0)
    results = {
        f"amb-{i}": outcome(lambda i=i: fast_client.create(f"amb-{i}", gpu="4090", image=IMAGE))
        for i in range(4)
    }
    sandbox.clear_faults()
    held = _names(sandbox, "amb-")
    assert all(count == 1 for count in held.values()), f"duplicates: {held}"
    for name, result in results.items():
        if isinstance(result, NovitaError):
            assert held.get(name, 0) == 0, f"{name} failed for the caller but exists: {result}"
        else:
            assert held[name] == 1
            live_ids = {i["id"] for i in live_instances(sandbox, name)}
            assert result.id in live_ids, f"{name}: returned an id the sandbox does not hold"
    adopted = [r for r in results.values() if not isinstance(r, NovitaError)]
    assert adopted, "no ambiguous create was adopted"
    # the ambiguous creates were each sent once per attempt: never blindly resent
    creates = requests_to(sandbox, "POST", "/gpu/instance/create")
    assert len(creates) == len(results)


@pytest.mark.parametrize(
    "faults",
    [
        {"errorRate": 0.3},
        {"dropRate": 0.25},
        {"errorRate": 0.15, "dropRate": 0.1, "ambiguousCreateRate": 0.3},
    ],
    ids=["5xx", "drops", "mixed"],
)
def test_creates_under_faults_leave_exactly_what_the_caller_holds(sandbox, fast_client, faults):
    sandbox.set_faults(**faults)
    results = {
        f"flaky-{i}": outcome(lambda i=i: fast_client.create(f"flaky-{i}", gpu="4090", image=IMAGE))
        for i in range(6)
    }
    sandbox.clear_faults()
    held = _names(sandbox, "flaky-")
    assert all(count == 1 for count in held.values()), f"duplicates: {held}"
    kept = {name for name, r in results.items() if not isinstance(r, NovitaError)}
    assert set(held) == kept, f"sandbox holds {sorted(held)}, the caller was told {sorted(kept)}"
    assert kept, "every create failed: the retries did not help at all"


@pytest.mark.parametrize("faults", [{"errorRate": 0.3}, {"dropRate": 0.2}], ids=["5xx", "drops"])
def test_create_many_under_faults_matches_its_report(sandbox, fast_client, faults):
    sandbox.set_faults(**faults)
    frame = outcome(
        lambda: fast_client.create_many(
            8, name_prefix="batch", gpu="4090", image=IMAGE, concurrency=4
        )
    )
    sandbox.clear_faults()
    assert not isinstance(frame, NovitaError), frame
    assert len(frame) == 8
    held = _names(sandbox, "batch-")
    assert all(count == 1 for count in held.values()), f"duplicates: {held}"
    ok = frame[frame["instance_id"].notna() & frame["error"].isna()]
    assert set(ok["name"]) == set(held), f"report says {sorted(ok['name'])}, sandbox {sorted(held)}"
    live_ids = {item["id"] for item in live_instances(sandbox, "batch-")}
    assert set(ok["instance_id"]) == live_ids


def test_all_or_nothing_batch_leaves_nothing_running_when_one_fails(sandbox, fast_client):
    # Only three RTX 3090s exist anywhere: a batch of five cannot all succeed.
    sandbox.set_stock(0, product_id="3090.12c46g")
    sandbox.set_stock(3, cluster_id="as-sgp-2", product_id="3090.12c46g")
    sandbox.set_faults(errorRate=0.1)
    frame = outcome(
        lambda: fast_client.create_many(
            5, name_prefix="all", gpu="RTX 3090", image=IMAGE, concurrency=3, all_or_nothing=True
        )
    )
    sandbox.clear_faults()
    assert not isinstance(frame, NovitaError), frame
    assert (frame["status"] == "failed").any(), frame
    assert live_instances(sandbox, "all-") == [], "a failed all-or-nothing batch left instances"
    assert not (frame["status"] == "rollback failed").any(), frame


def test_create_past_the_read_timeout_never_duplicates(sandbox, slow_creates):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        timeout=(2.0, 0.3),
        max_retries=1,
        retry_backoff=0.01,
    )
    try:
        slow_creates(0.7)  # the create lands 0.7 s after it arrives; the client waits 0.3 s
        result = outcome(lambda: client.create("slow-1", gpu="4090", image=IMAGE))
    finally:
        client.close()
    time.sleep(2.0)  # let every create the client sent land
    sandbox.clear_faults()
    held = _names(sandbox, "slow-")
    assert held["slow-1"] <= 1, (
        f"{held['slow-1']} instances named slow-1 after one create() call "
        f"({len(requests_to(sandbox, 'POST', '/gpu/instance/create'))} POSTs sent)"
    )
    if isinstance(result, NovitaError):
        assert held["slow-1"] == 0 or "slow-1" in (result.hint or ""), (
            "the create failed, the instance exists, and the error does not say so"
        )
    else:
        assert held["slow-1"] == 1
        assert result.id in {item["id"] for item in live_instances(sandbox, "slow-1")}


def test_create_many_through_a_429_storm_creates_each_instance_once(sandbox, monkeypatch):
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 2.0)  # Retry-After of 1-2 s
    client = Novita(
        api_key=sandbox.api_key, api_url=sandbox.url, retry_backoff=0.01, retry_backoff_max=5.0
    )
    try:
        client.cached_clusters()
        sandbox.set_faults(rateLimitPerMinute=6)
        frame = outcome(
            lambda: client.create_many(
                5, name_prefix="storm", gpu="4090", image=IMAGE, concurrency=3
            )
        )
    finally:
        client.close()
    sandbox.clear_faults()
    assert not isinstance(frame, NovitaError), frame
    assert frame["error"].isna().all(), frame[["name", "status", "error"]]
    assert any(r["status"] == 429 for r in sandbox.requests()), "no 429 was produced"
    held = _names(sandbox, "storm-")
    assert held == Counter({f"storm-{i}": 1 for i in range(1, 6)})


def test_create_many_across_a_sandbox_restart_matches_its_report(sandbox):
    client = Novita(
        api_key=sandbox.api_key,
        api_url=sandbox.url,
        max_retries=6,
        retry_backoff=0.05,
        retry_backoff_max=1.0,
        breaker_threshold=1000,
        timeout=(0.5, 2.0),
    )
    try:
        client.cached_clusters()
        sandbox.set_faults(latencyMs=60)  # spread the batch so the restart lands inside it
        restarted = threading.Event()
        marks: dict[str, float] = {}

        def restart_soon() -> None:
            time.sleep(0.3)
            marks["down"] = time.monotonic()
            sandbox.restart(downtime=0.4)
            restarted.set()

        threading.Thread(target=restart_soon, daemon=True).start()
        marks["start"] = time.monotonic()
        frame = outcome(
            lambda: client.create_many(
                8, name_prefix="reboot", gpu="4090", image=IMAGE, concurrency=4
            )
        )
        marks["end"] = time.monotonic()
        assert restarted.wait(10), "the sandbox never came back"
        assert marks["start"] < marks["down"] < marks["end"], "the restart missed the batch"
    finally:
        client.close()
    sandbox.clear_faults()
    assert not isinstance(frame, NovitaError), frame
    held = _names(sandbox, "reboot-")
    assert all(count == 1 for count in held.values()), f"duplicates: {held}"
    ok = frame[frame["instance_id"].notna() & frame["error"].isna()]
    assert set(ok["name"]) == set(held), frame[["name", "status", "error"]]


@pytest.mark.parametrize("faults", [{"errorRate": 0.3}, {"dropRate": 0.2}], ids=["5xx", "drops"])
def test_cleanup_under_faults_deletes_everything_it_reports_deleted(sandbox, fast_client, faults):
    frame = fast_client.create_many(5, name_prefix="tidy", gpu="4090", image=IMAGE)
    assert frame["error"].isna().all(), frame
    sandbox.set_faults(**faults)
    report = outcome(lambda: fast_client.cleanup(delete=True, dry_run=False))
    sandbox.clear_faults()
    assert not isinstance(report, NovitaError), report
    deleted = set(report.loc[report["result"] == "deleted", "id"])
    live = {item["id"] for item in live_instances(sandbox, "tidy-")}
    assert not deleted & live, "cleanup reported deletes that did not happen"
    assert deleted, report
    # whatever failed says so, and a second pass (faults gone) leaves nothing behind
    assert set(report["id"]) == set(frame["instance_id"])
    second = fast_client.cleanup(delete=True, dry_run=False)
    assert not second["result"].astype(str).str.startswith("failed").any(), second
    assert live_instances(sandbox, "tidy-") == []


def test_create_never_resends_before_a_long_retry_after(sandbox, monkeypatch, retry_after_log):
    # Scaled down 30x: a 2-s rate window (Retry-After 1-2 s) against a 0.5-s resend cap
    # stands for Novita's 60-s window against the 30-s cap.
    monkeypatch.setattr(sandbox_faults, "RATE_WINDOW_SECONDS", 2.0)
    monkeypatch.setattr(idempotency, "MAX_NOT_SENT_WAIT", 0.5)
    client = Novita(
        api_key=sandbox.api_key, api_url=sandbox.url, retry_backoff=0.01, retry_backoff_max=5.0
    )
    try:
        client.cached_clusters()
        client.cached_products()
        sandbox.clear_requests()
        sandbox.set_faults(rateLimitPerMinute=2)
        result = outcome(lambda: client.create("patient", gpu="4090", image=IMAGE))
    finally:
        client.close()
    sandbox.clear_faults()
    time.sleep(0.05)
    log = [r for r in sandbox.requests() if r["path"].startswith("/gpu-instance")]
    limited = [r for r in log if r["status"] == 429]
    assert limited, "no 429 was produced"
    assert len(limited) == len(retry_after_log)
    shortest = min(seconds for _, seconds in retry_after_log)
    for entry in limited:
        # The same request again (a resend); region listings sent side by side with it are
        # other requests, already on their way when the 429 came back.
        same = (entry["method"], entry["path"], entry["query"])
        later = [
            r
            for r in log
            if r["time"] > entry["time"] and (r["method"], r["path"], r["query"]) == same
        ]
        if later:
            gap = later[0]["time"] - entry["time"]
            assert gap >= shortest - 0.01, f"resent {gap:.3f} s after Retry-After: {shortest}"
    assert not isinstance(result, NovitaError) or _names(sandbox, "patient")["patient"] == 0
