"""Remote: the client's service for working on instances over SSH. It finds an instance's SSH
server and password through the API each time a connection is opened, owns the pool, and
starts, attaches to and lists runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import (
    NotFoundError,
    NovitaError,
    RemoteError,
    SSHConnectionError,
    ValidationError,
)
from ..models import Instance
from . import launch
from .output import DEFAULT_MAX_OUTPUT, OutputSink
from .runs import Run
from .ssh import NOT_RUNNING, Endpoint, SSHPool
from .store import RunRecord, RunStore

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger(__name__)

RUNS_COLUMNS = ("run", "instance", "started", "duration", "state", "exit_code", "cost")

#: Statuses from which the instance comes back to "running" by itself: keep trying.
COMING_BACK = frozenset(
    {"toStart", "starting", "toRestart", "restarting", "migrating", "toReset", "resetting"}
)


class Remote:
    """SSH access to the instances of one API. ``fetch(id) -> Instance`` reads the instance
    (with its connection details) from the API."""

    def __init__(self, api_url: str, fetch: Callable[[str], Instance]) -> None:
        self.api_url = api_url
        self._fetch = fetch
        self._pool: SSHPool | None = None
        self.store = RunStore(api_url)

    @property
    def pool(self) -> SSHPool:
        if self._pool is None:
            self._pool = SSHPool(self.api_url, self.credentials)
        return self._pool

    def credentials(self, instance_id: str) -> tuple[Endpoint, str]:
        """Where the instance's SSH server is and its password, read from the API now."""
        try:
            instance = self._fetch(instance_id)
        except NotFoundError:
            raise RemoteError(
                f"instance {instance_id} no longer exists",
                instance_id=instance_id,
                reason=NOT_RUNNING,
            ) from None
        where = f"instance {instance.name or instance.id} ({instance.id})"
        if instance.status in COMING_BACK:
            raise SSHConnectionError(
                f"{where} is {instance.status}; waiting for it to run", instance_id=instance.id
            )
        if instance.status != "running":
            raise RemoteError(
                f"{where} is {instance.status}, not running: nothing to connect to",
                instance_id=instance.id,
                reason=NOT_RUNNING,
                hint=f"novita.start({instance.id!r}) starts a stopped instance.",
            )
        if not instance.ssh_host or not instance.ssh_port or not instance.ssh_password:
            raise SSHConnectionError(
                f"the API gives no SSH command and password for {where} yet",
                instance_id=instance.id,
            )
        return Endpoint(instance.ssh_host, instance.ssh_port), instance.ssh_password

    def forget_host_key(self, instance_id: str) -> bool:
        """Drop the host key pinned for the instance; the next connection pins what it sees."""
        if self._pool is not None:
            self._pool.close(instance_id)
        from .known_hosts import HostKeys

        return HostKeys(self.api_url).forget(instance_id)

    # -- runs --------------------------------------------------------------------------------
    def run(
        self,
        instance: Instance,
        code: str,
        *,
        detach: bool = False,
        on_output: OutputSink | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
        **options: Any,
    ) -> Run:
        """Start ``code`` on the instance as a durable run (see ``Novita.run``); ``options``
        are ``RunOptions.checked``'s (put, get, python, timeout, env, shell)."""
        checked = launch.RunOptions.checked(code, **options)
        _check_max_output(max_output)
        record, remote = launch.start(self.pool, self.store, instance, checked)
        run = Run(
            record,
            self.pool,
            self.store,
            on_output=on_output,
            max_output=max_output,
            remote_python=remote,
        )
        return run if detach else run.wait()

    def attach(
        self,
        run: Run | str,
        *,
        wait: bool = True,
        on_output: OutputSink | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> Run:
        """A remembered run, its output replayed from the start (see ``Novita.attach``)."""
        run_id = run.id if isinstance(run, Run) else run
        if not isinstance(run_id, str) or not run_id.strip():
            raise ValidationError("run must be a Run or a run id", field="run")
        _check_max_output(max_output)
        record = self.store.get(run_id.strip())
        if record is None:
            raise NotFoundError(
                f"no run {run_id!r} is remembered for {self.api_url}",
                hint="novita.runs() lists the runs this machine remembers.",
            )
        attached = Run(record, self.pool, self.store, on_output=on_output, max_output=max_output)
        return attached.wait() if wait else attached

    def runs(self, refresh: bool = True) -> pd.DataFrame:
        """Every remembered run, newest first (see ``Novita.runs``)."""
        import pandas as pd

        now = datetime.now(UTC)
        rows = []
        statuses: dict[str, str | None] = {}  # one look per instance
        for record in reversed(self.store.all()):
            if refresh and record.active:
                record = self._settled(record, statuses)
            end = record.finished or now
            duration = max(end - record.started, end - end)
            hours = duration.total_seconds() / 3600
            price = record.price_per_hour
            rows.append(
                {
                    "run": record.id,
                    "instance": record.instance_name or record.instance_id,
                    "started": pd.Timestamp(record.started),
                    "duration": pd.Timedelta(duration),
                    "state": record.state,
                    "exit_code": record.exit_code,
                    "cost": price * hours if price is not None else None,
                }
            )
        frame = pd.DataFrame(rows, columns=list(RUNS_COLUMNS))
        frame["exit_code"] = frame["exit_code"].astype("Int64")
        frame["cost"] = frame["cost"].astype("float64")
        frame["started"] = pd.to_datetime(frame["started"], utc=True)
        frame["duration"] = pd.to_timedelta(frame["duration"])
        return frame

    def _settled(self, record: RunRecord, statuses: dict[str, str | None]) -> RunRecord:
        """The record after a light look: lost if its instance is gone or stopped, else the
        run's files (exit status, markers, liveness). An instance on its way back, or that
        cannot be reached, leaves the record as it was (a listing never waits on it)."""
        if record.instance_id not in statuses:
            try:
                statuses[record.instance_id] = self._fetch(record.instance_id).status
            except NotFoundError:
                statuses[record.instance_id] = None
            except NovitaError as error:
                log.debug("could not look at instance %s: %s", record.instance_id, error.message)
                statuses[record.instance_id] = "unknown"
        status = statuses[record.instance_id]
        if status in COMING_BACK or status == "unknown":
            return record
        run = Run(record, self.pool, self.store)
        if status != "running":
            return run.lost(f"instance {record.instance_id} is {status or 'gone'}").record
        try:
            return run.settle().record
        except NovitaError as error:
            log.debug("could not look at run %s: %s", record.id, type(error).__name__)
            return record

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __repr__(self) -> str:
        opened = self._pool.opened if self._pool is not None else 0
        return f"<Remote {self.api_url} connections opened={opened}>"


def _check_max_output(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"max_output must be a number of characters >= 0, got {value!r}", field="max_output"
        )
