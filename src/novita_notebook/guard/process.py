"""The guard process (``python -m novita_notebook.guard``): one per ledger and API URL, holding a
lock, enforcing the stored rules until no guarded live instance remains; started detached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import CircuitBreakerError, NetworkError, NovitaError, ValidationError
from ..ledger import HOME_ENV, ledger_dir
from .enforcer import Enforcer
from .policy import Plan
from .rules import autostart_enabled
from .store import GuardStore, scope_url

__all__ = [
    "run_guard",
    "ensure_guard_running",
    "ensure_guard_for_environment",
    "guard_status",
    "guard_paths",
    "DEFAULT_INTERVAL",
    "INTERVAL_ENV",
]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0
INTERVAL_ENV = "NOVITA_GUARD_INTERVAL"
#: Never sleep less than this between ticks (a due time in the past must not spin).
MIN_SLEEP = 0.2
EXIT_ALREADY_RUNNING = 0


def _scope(api_url: str) -> str:
    return hashlib.sha256(str(scope_url(api_url)).encode("utf-8")).hexdigest()[:10]


def guard_paths(api_url: str, directory: Path | None = None) -> dict[str, Path]:
    """Lock, status and log file of the guard of ``api_url`` in the ledger directory."""
    base = directory or ledger_dir()
    scope = _scope(api_url)
    return {
        "lock": base / f"guard-{scope}.lock",
        "status": base / f"guard-{scope}.status.json",
        "log": base / f"guard-{scope}.log",
    }


def interval_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``NOVITA_GUARD_INTERVAL`` seconds (default 30); a bad value is a ValidationError."""
    raw = (os.environ if environ is None else environ).get(INTERVAL_ENV)
    if raw is None or not str(raw).strip():
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValidationError(
            f"{INTERVAL_ENV} must be a positive number of seconds, got {raw!r}", field=INTERVAL_ENV
        )
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1, sort_keys=True)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _is_loopback(url: str | None) -> bool:
    """A loopback API is a local sandbox: once it is gone for good, nothing is left to guard
    (a real API being unreachable is retried for ever: the laptop may just be offline)."""
    from urllib.parse import urlsplit

    host = urlsplit(str(url or "")).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (and its escaped spellings) masked: no error text, log line or
    status file ever carries the API key, whatever characters it holds."""
    if not secret:
        return text
    for form in {secret, repr(secret)[1:-1], secret.encode("unicode_escape").decode("ascii"),
                 json.dumps(secret)[1:-1]}:  # fmt: skip
        if form:
            text = text.replace(form, "***")
    return text


class _ScrubKey(logging.Filter):
    """Masks the API key in every log record of the guard process (defence in depth: the
    config check already refuses keys an error text could echo)."""

    def __init__(self, secret: str | None) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            record.msg = scrub(record.getMessage(), self.secret)
            record.args = None
        return True


class _Guard:
    """One running guard: the loop and its status file."""

    def __init__(self, store: GuardStore, enforcer: Enforcer, paths: dict[str, Path],
                 interval: float, secret: str | None = None) -> None:  # fmt: skip
        self.store = store
        self.enforcer = enforcer
        self.paths = paths
        self.interval = interval
        self.secret = secret
        self.stopping = threading.Event()
        self.started = datetime.now(UTC)
        self.ticks = 0

    def status(self, state: str, plan: Plan | None = None, error: str | None = None) -> None:
        upcoming = plan.actions if plan is not None else ()
        nxt = min(upcoming, key=lambda a: a.due, default=None)
        _write_json(
            self.paths["status"],
            {
                "pid": os.getpid(),
                "state": state,
                "api_url": self.store.api_url,
                "started": self.started.isoformat(),
                "last_tick": datetime.now(UTC).isoformat(),
                "ticks": self.ticks,
                "interval": self.interval,
                "guarded": len(plan.live) if plan is not None else None,
                "next_action": nxt.to_dict() if nxt is not None else None,
                "next_wake": plan.next_wake.isoformat() if plan and plan.next_wake else None,
                "notes": [scrub(n, self.secret) for n in plan.notes] if plan is not None else [],
                "intents": [i.name for i in self.store.intents()],
                "metrics_unit": self.enforcer.unit,
                "error": scrub(error, self.secret) if error else None,
            },
        )

    def tick(self) -> Plan | None:
        """One pass; None when nothing is guarded any more (no rules, no create in flight)."""
        now = datetime.now(UTC)
        records = self.store.records()
        if not records and not self.store.intents():
            return None
        plan = self.enforcer.plan(now, records)
        self.enforcer.execute(plan)
        self.ticks += 1
        return plan

    def pause(self, plan: Plan) -> float:
        """Seconds until the next tick: the plan's next wake-up (bounded by the interval),
        less what gathering took last time, so that the decision falls on the due time
        (the enforcer decides after gathering). Never a busy loop."""
        if plan.next_wake is None:
            return self.interval
        ahead = (plan.next_wake - datetime.now(UTC)).total_seconds()
        if ahead <= 0:
            return MIN_SLEEP
        lead = min(self.enforcer.gather_seconds, self.interval / 2)
        return max(min(ahead, self.interval) - lead, lead / 4, 0.01)

    def run(self) -> str:
        """Loop until nothing guarded is live (or a signal); returns why it ended."""
        unreachable_since: float | None = None
        failures = 0
        while not self.stopping.is_set():
            try:
                plan = self.tick()
            except Exception as error:  # the API, network or disk failed: retry next interval
                message = error.message if isinstance(error, NovitaError) else repr(error)
                message = scrub(message, self.secret)
                log.warning("guard tick failed: %s", message)
                self.status("running", error=message)
                gone = isinstance(error, NetworkError | CircuitBreakerError)
                if gone and _is_loopback(self.store.api_url):
                    unreachable_since = unreachable_since or time.monotonic()
                    if time.monotonic() - unreachable_since > max(10 * self.interval, 5.0):
                        self.status("exited", error=message)
                        return "the local API (a sandbox) is gone"
                failures += 1  # once soon (a blip), then every interval (an outage)
                self.stopping.wait(self.interval / 4 if failures == 1 else self.interval)
                continue
            unreachable_since, failures = None, 0
            if plan is None or (not plan.live and not plan.upcoming() and not self.store.intents()):
                self.status("exited", plan)
                return "no guarded instance remains that could bill"
            self.status("running", plan)
            self.stopping.wait(self.pause(plan))
        self.status("exited")
        return "stopped by a signal"


def run_guard(
    *,
    interval: float | None = None,
    env_file: str | os.PathLike[str] | bool | None = None,
    once: bool = False,
) -> int:
    """Run the guard in this process until it has nothing left to guard. The API key and URL
    come from the environment or .env (``load_config``), never from arguments on a command
    line. Returns the exit code (0; also 0 when another guard already holds the lock)."""
    from filelock import FileLock, Timeout

    from ..config import load_config
    from .backend import HttpGuardBackend, metrics_step

    config, key = load_config(env_file=env_file)
    interval = interval_from_env() if interval is None else interval
    paths = guard_paths(config.api_url)
    paths["lock"].parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths["lock"]), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = _read_status(paths["status"])
        print(
            f"novita-notebook guard: already running for {config.api_url} "
            f"(pid {holder.get('pid')}, started {holder.get('started')}); exiting",
            file=sys.stderr,
        )
        return EXIT_ALREADY_RUNNING
    backend = HttpGuardBackend(
        config.api_url,
        lambda: key,
        webhook_url=config.webhook_url,
        webhook_secret=config.webhook_secret,
        transport_options=transport_pacing(interval),
        metrics_step=metrics_step(interval),
    )
    store = GuardStore(api_url=config.api_url)
    grace = timedelta(seconds=interval)
    enforcer = Enforcer(
        backend, store, actor=f"guard pid {os.getpid()}", grace=grace,
        claim_ttl=max(120.0, 4 * interval), clock=lambda: datetime.now(UTC),
    )  # fmt: skip
    guard = _Guard(store, enforcer, paths, interval, secret=key)
    root = logging.getLogger()
    if not root.handlers:  # the process's own output (its log file when started detached)
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    masking = _ScrubKey(key)
    for handler in root.handlers:
        handler.addFilter(masking)
    previous = _install_signals(guard.stopping)
    try:
        guard.status("running")  # visible to ensure_guard_running before the first tick
        if once:
            guard.status("running", guard.tick())
            reason = "one tick"
        else:
            reason = guard.run()
        print(f"novita-notebook guard: exiting: {reason}", file=sys.stderr)
        return 0
    finally:
        _restore_signals(previous)
        backend.close()
        lock.release()


def transport_pacing(interval: float) -> dict[str, float]:
    """Retry pacing scaled to the guard's interval: a failed call is retried well within one
    interval, and an open breaker blinds the guard for at most one (0.5 s and 30 s at the
    default 30-s interval)."""
    return {
        "retry_backoff": min(0.5, interval / 60.0),
        "retry_backoff_max": min(60.0, interval / 4.0),
        "breaker_reset_timeout": min(30.0, interval),
    }


def _install_signals(stopping: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda *_: stopping.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _read_status(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


#: Guards this process spawned: polled so that finished ones are reaped, not left as zombies.
_CHILDREN: list[subprocess.Popen] = []


def guard_status(api_url: str) -> dict[str, Any]:
    """The guard of ``api_url``: ``running``, its pid, last tick, next action and time,
    and the stored rules (what ``%novita guard status`` shows)."""
    _CHILDREN[:] = [child for child in _CHILDREN if child.poll() is None]
    paths = guard_paths(api_url)
    status = _read_status(paths["status"])
    running = status.get("state") == "running" and _pid_alive(status.get("pid"))
    store = GuardStore(api_url=api_url)
    return {
        **status,
        "running": running,
        "log_file": str(paths["log"]),
        "rules": {r.id: r.rules.describe() for r in store.records()},
    }


def ensure_guard_running(
    api_url: str,
    api_key: str | None = None,
    *,
    interval: float | None = None,
    environ: Mapping[str, str] | None = None,
    wait: float = 2.0,
) -> dict[str, Any]:
    """Start the guard process for ``api_url`` detached, unless it runs already or the user
    opted out (``NOVITA_GUARD_AUTOSTART=0``). The key reaches the child only through its
    environment. Returns :func:`guard_status` (with ``started``: whether this call spawned it)."""
    environ = os.environ if environ is None else environ
    if not autostart_enabled(environ):
        return {"running": False, "started_now": False, "reason": "NOVITA_GUARD_AUTOSTART=0"}
    current = guard_status(api_url)
    if current["running"]:
        return {**current, "started_now": False}
    paths = guard_paths(api_url)
    child_env = dict(environ)
    child_env.update({"NOVITA_API_URL": str(scope_url(api_url)), HOME_ENV: str(ledger_dir())})
    if api_key is not None:
        child_env["NOVITA_API_KEY"] = api_key
    if interval is not None:
        child_env[INTERVAL_ENV] = str(interval)
    paths["log"].parent.mkdir(parents=True, exist_ok=True)
    with open(paths["log"], "ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "novita_notebook.guard"],
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN.append(child)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and child.poll() is None:
        status = guard_status(api_url)
        if status["running"]:
            return {**status, "started_now": True}
        time.sleep(0.05)
    return {**guard_status(api_url), "started_now": child.poll() is None, "spawned_pid": child.pid}


def ensure_guard_for_environment(
    env_file: str | os.PathLike[str] | bool | None = None,
) -> dict | None:
    """``%load_ext``'s check: with a key in the environment or .env, start the guard process of
    its API URL when guarded instances (or creates in flight) exist and no guard answers.
    None when there is nothing to do; never raises (a notebook must load regardless)."""
    from ..config import load_config

    try:
        config, _ = load_config(env_file=env_file)
        store = GuardStore(api_url=config.api_url)
        if not store.records() and not store.intents():
            return None
        return ensure_guard_running(config.api_url)
    except Exception as error:  # noqa: BLE001 - no key, no ledger: nothing to guard here
        log.debug("no guard started at load: %s", type(error).__name__)
        return None
