"""One chaos trial in one process, replayable from its seed: a sandbox on a virtual clock, guards
ticked on a grid of guard intervals, and a random mix of interrupted and killed creates, damaged
stores and ledgers, extreme rule values, listings that drop instances or fail, refused stops,
guards killed mid-action, stop/start cycles across clients and extended deadlines.

The invariant (invariant.py) is checked against the sandbox's own record (each instance's status
after every step): every instance with a rule is stopped or deleted within one guard interval
of its bound, a busy GPU is never stopped by the idle rule, and every lost rule was announced.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from novita_notebook import Novita
from novita_notebook.errors import NovitaError
from novita_notebook.guard.backend import HttpGuardBackend
from novita_notebook.guard.enforcer import Enforcer
from novita_notebook.guard.store import GuardStore
from novita_notebook.sandbox.faults import Faults

#: Virtual seconds between two ticks of every guard (the guard interval).
INTERVAL = 30.0
#: Statuses that show a stop or a delete took.
STOPPED = frozenset({"toStop", "stopping", "exited", "toRemove", "removing", "removed", "gone"})
GONE = frozenset({"toRemove", "removing", "removed", "gone"})
IMAGE = "ubuntu:22.04"
FAST = {"retry_backoff": 0.001, "retry_backoff_max": 0.01, "breaker_reset_timeout": 0.05}
DAMAGE = (
    "truncate store",
    "bad bytes in store",
    "invalid record",
    "delete store",
    "truncate ledger",
    "bad bytes in ledger",
    "bad bytes in action log",
    "store and ledger",
)
INTERRUPTS = ("none", "none", "none", "ctrl-c after post", "kill before post",
              "kill after post", "kill during read")  # fmt: skip


class VirtualClock:
    """Wall time plus an offset that only grows: the sandbox and the guards share it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self(), UTC)


class Frozen(BaseException):
    """Never raised while a trial runs: a frozen thread stays frozen, like a killed process."""


class Freezer:
    """Freezes threads for good (kill -9: nothing after that point runs, no finally block)."""

    def __init__(self) -> None:
        self.forever = threading.Event()

    def freeze(self, reached: threading.Event) -> None:
        reached.set()
        self.forever.wait()
        raise Frozen


@dataclass
class Planned:
    """An instance a trial creates: its rules (create() keywords) and how the create ends."""

    name: str
    rules: dict[str, Any]
    interrupt: str = "none"
    busy: bool = True
    extreme: bool = False
    extended: float = 0.0
    created_at: float = 0.0  # when its rules were set (virtual unix seconds)
    idle_from: float | None = None  # when its GPU went idle
    ids: list[str] = field(default_factory=list)


class _KillableBackend:
    """A guard's backend that freezes its thread at call number ``at`` (its process killed)."""

    def __init__(self, inner: HttpGuardBackend, freezer: Freezer) -> None:
        self.inner = inner
        self.freezer = freezer
        self.at: int | None = None
        self.calls = 0
        self.reached = threading.Event()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method) or name in ("close",):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.at is not None and self.calls >= self.at:
                self.freezer.freeze(self.reached)
            return method(*args, **kwargs)

        return call


@dataclass
class Guard:
    """One guard (the process, or a kernel's watcher): its enforcer and whether it lives."""

    name: str
    enforcer: Enforcer
    backend: _KillableBackend
    helper: subprocess.Popen | None = None
    alive: bool = True


@dataclass
class Report:
    seed: int
    story: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)


class Trial:
    """A trial of one seed on ``sandbox`` (shared, reset here) in the current ledger home."""

    def __init__(self, seed: int, sandbox: Any) -> None:
        self.seed = seed
        self.rng = random.Random(f"chaos-{seed}")
        self.sandbox = sandbox
        self.clock = VirtualClock()
        self.freezer = Freezer()
        self.report = Report(seed)
        self.plans: list[Planned] = []
        self.guards: list[Guard] = []
        self.history: dict[str, list[tuple[float, str]]] = {}
        self.running_at: dict[str, float] = {}
        self.store: GuardStore | None = None

    # -- set-up ----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.report.story.append(f"t+{self.clock.offset:.0f}s {text}")

    def client(self) -> Novita:
        """A fresh kernel's client (every call below comes from a new kernel)."""
        return Novita(api_key=self.sandbox.api_key, api_url=self.sandbox.url, timeout=(2, 5),
                      **FAST)  # fmt: skip

    def _guard(self, name: str, helper: bool) -> Guard:
        proc = None
        if helper:  # a real pid for its claims, killed with SIGKILL when the guard dies
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        inner = HttpGuardBackend(self.sandbox.api_url, lambda: self.sandbox.api_key,
                                 transport_options=FAST, timeout=(2, 5))  # fmt: skip
        backend = _KillableBackend(inner, self.freezer)
        enforcer = Enforcer(backend, GuardStore(api_url=self.sandbox.api_url),  # type: ignore[arg-type]
                            actor=f"{name} ({self.seed})", grace=timedelta(seconds=INTERVAL),
                            confirm_pause=0.0, pid=proc.pid if proc else None)  # fmt: skip
        return Guard(name, enforcer, backend, proc)

    def _plan(self) -> None:
        rng = self.rng
        for index in range(rng.randint(1, 4)):
            minutes = rng.uniform(2.5, 8.0)
            kind = rng.random()
            if kind < 0.2:
                rules: dict[str, Any] = {"delete_after": f"{minutes * 60:.0f}s"}
            elif kind < 0.4:
                rules = {"idle_stop": "2m", "stop_after": f"{minutes * 60 + 300:.0f}s"}
            else:
                rules = {"stop_after": f"{minutes * 60:.0f}s"}
            plan = Planned(f"c{self.seed}-{index}", rules, rng.choice(INTERRUPTS))
            plan.busy = "idle_stop" not in rules or rng.random() < 0.4
            self.plans.append(plan)
        if rng.random() < 0.3:  # the largest values a rule takes: they never act here
            self.plans.append(Planned(f"c{self.seed}-x", {"budget": 1_000_000, "idle_stop": "366d",
                                      "budget_per_hour": 100_000}, extreme=True))  # fmt: skip

    def _create(self, plan: Planned) -> None:
        client = self.client()
        reached = threading.Event()
        send, read = client.api.create_instance, client.provisioner.fetch
        mode = plan.interrupt

        def create_instance(body: dict[str, Any]) -> str:
            if mode == "kill before post":
                self.freezer.freeze(reached)
            made = send(body)
            if mode == "kill after post":
                self.freezer.freeze(reached)
            if mode == "ctrl-c after post":
                raise KeyboardInterrupt
            return made

        def instance(ref: str) -> Any:
            if mode == "kill during read":
                self.freezer.freeze(reached)
            return read(ref)

        client.api.create_instance = create_instance  # type: ignore[method-assign]
        client.provisioner.fetch = instance  # the read back after the create answered
        outcome: list[Any] = []
        plan.created_at = self.clock()

        def run() -> None:
            try:
                outcome.append(client.create(plan.name, gpu="RTX 3090", image=IMAGE, wait=False,
                                             **plan.rules))  # fmt: skip
            except KeyboardInterrupt as interrupt:
                outcome.append(interrupt)

        worker = threading.Thread(target=run, daemon=True, name=f"chaos-create-{plan.name}")
        worker.start()
        while worker.is_alive() and not reached.wait(0.01):
            pass
        worker.join(0 if reached.is_set() else 30)
        if not reached.is_set():
            client.close()  # a frozen kernel keeps its connections, as a dead one would
        result = outcome[0] if outcome else None
        if isinstance(result, KeyboardInterrupt) and self._exists(plan.name):
            assert "guarded" in str(result), f"Ctrl-C message without the guard: {result}"
        self.say(f"create {plan.name} {plan.rules} ended by {mode}")

    def _exists(self, name: str) -> list[str]:
        with self.sandbox.world.lock:
            return [r.id for r in self.sandbox.world.instances.values() if r.name == name]

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> Report:
        sandbox = self.sandbox
        sandbox.reset()
        sandbox.faults = Faults(self.seed)  # the faults' own dice, from this trial's seed
        sandbox.world.clock = self.clock
        sandbox.clear_requests()
        self.store = GuardStore(api_url=sandbox.api_url)
        self._plan()
        for plan in self.plans:
            self._create(plan)
        with_kernel = self.rng.random() < 0.6
        self.guards = [self._guard("guard", helper=True)]
        if with_kernel:
            self.guards.append(self._guard("kernel", helper=False))
        events = self._schedule()
        faults = self._faults()
        step = 0
        # (bounds move when a deadline is extended: the horizon is looked at every step)
        while self.clock() <= max(self._bounds().values(), default=self.clock()) + 3 * INTERVAL:
            self.clock.offset += INTERVAL if step else 20.0
            step += 1
            if step == 1:
                self._pin_utilisation()
                sandbox.set_faults(**faults)
                self.say(f"faults {faults}; guards {[g.name for g in self.guards]}")
            for action in events.get(step, ()):
                action()
            self._tick_all()
            self._snapshot()
        sandbox.clear_faults()
        self._finish()
        return self.report

    def _faults(self) -> dict[str, float]:
        rng = self.rng
        return {
            "errorRate": rng.choice((0.0, 0.05, 0.15)),
            "dropRate": rng.choice((0.0, 0.0, 0.05)),
            "listDropRate": rng.choice((0.0, 0.2, 0.5)),
            "stopIgnoreRate": rng.choice((0.0, 0.0, 0.1, 0.3)),
        }

    def _schedule(self) -> dict[int, list[Callable[[], None]]]:
        """What happens at which step: damage, a guard killed, a stop/start cycle, an extend."""
        rng, events = self.rng, {}
        spans = [self._span(p) for p in self.plans if not p.extreme]
        last = max(2, int(min(spans, default=300.0) // INTERVAL))
        if rng.random() < 0.5:
            events.setdefault(rng.randint(1, last), []).append(
                lambda kind=rng.choice(DAMAGE): self._damage(kind)
            )
        if rng.random() < 0.4:
            events.setdefault(rng.randint(1, last), []).append(self._kill_guard)
        deadlines = [
            p for p in self.plans
            if "stop_after" in p.rules and "idle_stop" not in p.rules and not p.extreme
        ]  # fmt: skip
        if deadlines and rng.random() < 0.5:
            plan = rng.choice(deadlines)
            if self._span(plan) // INTERVAL >= 5:
                events.setdefault(2, []).append(lambda p=plan: self._user("stop", p))
                events.setdefault(3, []).append(lambda p=plan: self._user("start", p))
        if deadlines and rng.random() < 0.3:
            plan = rng.choice(deadlines)
            events.setdefault(rng.randint(1, 3), []).append(lambda p=plan: self._user("extend", p))
        return events

    def _bounds(self) -> dict[str, float]:
        """Each planned instance's bound, in virtual unix seconds: its deadline, or for an
        idle GPU the idle window plus the warning's grace after it went idle."""
        out = {}
        for plan in self.plans:
            if plan.extreme:
                continue
            rules = plan.rules
            if "idle_stop" in rules and not plan.busy:
                idle_from = plan.idle_from or plan.created_at + 20.0
                out[plan.name] = max(idle_from, plan.created_at) + 120.0 + INTERVAL
            else:
                key = "delete_after" if "delete_after" in rules else "stop_after"
                out[plan.name] = plan.created_at + float(rules[key].rstrip("s")) + plan.extended
        return out

    def _span(self, plan: Planned) -> float:
        """Seconds from the start of the trial to a plan's bound."""
        return self._bounds().get(plan.name, self.clock()) - self.clock()

    # -- events ----------------------------------------------------------------------------------
    def _pin_utilisation(self) -> None:
        for plan in self.plans:
            for instance_id in self._exists(plan.name):
                with contextlib.suppress(ValueError):
                    self.sandbox.set_utilization(instance_id, 90.0 if plan.busy else 1.0)
                    plan.idle_from = None if plan.busy else self.clock()

    def _damage(self, kind: str) -> None:
        store = self.store
        assert store is not None
        ledger = store.directory / "ledger.json"
        paths = {
            "truncate ledger": [ledger],
            "bad bytes in ledger": [ledger],
            "bad bytes in action log": [store.log_path],
            "store and ledger": [store.path, ledger],
        }.get(kind, [store.path])
        for path in paths:
            if not path.exists():
                continue
            data = path.read_bytes()
            if kind.startswith("truncate") or kind == "store and ledger":
                path.write_bytes(data[: self.rng.randrange(max(1, len(data)))])
            elif kind.startswith("bad bytes"):
                at = self.rng.randrange(max(1, len(data)))
                path.write_bytes(data[:at] + b"\xff\xfe\x80" + data[at:])
            elif kind == "delete store":
                path.unlink()
            elif kind == "invalid record":
                doc = json.loads(data)
                if doc.get("instances"):
                    self.rng.choice(doc["instances"])["rules"]["budget_total"] = 1e12
                path.write_text(json.dumps(doc))
        self.say(f"damage: {kind}")

    def _kill_guard(self) -> None:
        """The guard process is killed with SIGKILL in the middle of its next tick; a later
        call starts another at once (or, with a kernel watching, a few intervals later)."""
        guard = self.guards[0]
        guard.backend.at = guard.backend.calls + self.rng.randint(1, 4)
        self.say("guard process: killed during its next tick")

    def _user(self, what: str, plan: Planned) -> None:
        client = self.client()
        try:
            if what == "stop":
                client.stop(plan.name)
            elif what == "start":
                record = next(iter(self._records(plan.name)), None)
                if record is not None and record.status == "exited":
                    client.start(plan.name)
            elif what == "extend":
                client.extend(plan.name, "2m")
                plan.extended += 120.0
            self.say(f"a new kernel: {what} {plan.name}")
        except (NovitaError, ValueError) as error:  # e.g. unknown yet, or the API failing
            self.say(f"a new kernel: {what} {plan.name} failed ({type(error).__name__})")
        finally:
            client.close()

    def _records(self, name: str) -> list[Any]:
        with self.sandbox.world.lock:
            return [r for r in self.sandbox.world.instances.values() if r.name == name]

    # -- ticking and watching --------------------------------------------------------------------
    def _tick_all(self) -> None:
        now = self.clock.now()
        for guard in list(self.guards):
            if not guard.alive:
                continue
            done = threading.Event()

            def tick(g: Guard = guard, finished: threading.Event = done) -> None:
                with contextlib.suppress(Exception):  # a tick failing is retried next interval
                    g.enforcer.tick(now)
                finished.set()

            worker = threading.Thread(target=tick, daemon=True, name=f"chaos-{guard.name}")
            worker.start()
            while not done.wait(0.01):
                if guard.backend.reached.is_set():  # frozen: the process is dead
                    guard.alive = False
                    if guard.helper is not None:
                        guard.helper.kill()
                        guard.helper.wait()
                    self._restart(guard)
                    break

    def _restart(self, dead: Guard) -> None:
        """A later call starts a guard again: at once when no kernel watches."""
        fresh = self._guard("guard", helper=True)
        self.guards = [fresh, *[g for g in self.guards if g is not dead]]
        self.say("guard process started again by a later call")
        fresh.enforcer.tick(self.clock.now())

    def _snapshot(self) -> None:
        now = self.clock()
        with self.sandbox.world.lock:
            self.sandbox.world.settle_all()
            seen = {r.id: r for r in self.sandbox.world.instances.values()}
            for record in seen.values():
                if record.running_since is not None:
                    self.running_at.setdefault(record.id, record.running_since)
            for plan in self.plans:
                for record in seen.values():
                    if record.name == plan.name and record.id not in plan.ids:
                        plan.ids.append(record.id)
                for instance_id in plan.ids:
                    status = seen[instance_id].status if instance_id in seen else "gone"
                    self.history.setdefault(instance_id, []).append((now, status))

    # -- the end ---------------------------------------------------------------------------------
    def _finish(self) -> None:
        for guard in self.guards:
            if guard.helper is not None and guard.helper.poll() is None:
                guard.helper.kill()
                guard.helper.wait()
            if guard.alive:
                guard.backend.inner.close()
        from tests.chaos.invariant import check

        check(self)
