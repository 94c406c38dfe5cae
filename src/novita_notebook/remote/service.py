"""Remote: the client's service for working on instances over SSH. It finds an instance's SSH
server and password through the API each time a connection is opened, owns the pool, and
starts, attaches to and lists runs; kernels, files and the GPU reading build on it.
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

log = logging.getLogger(__name__)

RUNS_COLUMNS = ("run", "instance", "started", "duration", "state", "exit_code", "cost")

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .files import Files
    from .kernels import Kernels
    from .top import GpuUtilisation

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
        self._kernels: Kernels | None = None
        self._files: Files | None = None
        self.store = RunStore(api_url)

    @property
    def pool(self) -> SSHPool:
        if self._pool is None:
            self._pool = SSHPool(self.api_url, self.credentials)
        return self._pool

    @property
    def kernels(self) -> Kernels:
        """The remote kernels (one per instance), built on first use."""
        if self._kernels is None:
            from .kernels import Kernels

            self._kernels = Kernels(self.api_url, self.pool, self.status_of)
        return self._kernels

    @property
    def files(self) -> Files:
        """push and pull over SFTP, built on first use."""
        if self._files is None:
            from .files import Files

            self._files = Files(self.api_url, self.pool)
        return self._files

    def top(self, instance: Instance, spent: float | None = None) -> pd.DataFrame:
        """The instance's GPUs as nvidia-smi reports them now, one row each, with its price
        and ``spent`` (USD so far)."""
        from .top import read_gpus, top_frame

        gpus, at = read_gpus(self.pool, instance.id)
        return top_frame(gpus, at, instance, spent)

    def gpu_utilisation(self, instance_id: str) -> GpuUtilisation:
        """For the guard's idle rule: the GPUs' utilisation read over SSH now, after the
        readings taken before (``source`` says so)."""
        from .top import gpu_utilisation

        return gpu_utilisation(self.pool, self.api_url, instance_id)

    def busy(self, instance_id: str) -> str | None:
        """For the guard's idle rule: what keeps the instance busy whatever its GPU says
        (a remote kernel running a cell, a run that may still be running), or None."""
        from .activity import what_keeps_busy

        return what_keeps_busy(self.api_url, instance_id)

    def instance(self, instance_id: str) -> Instance:
        """The instance read from the API now."""
        return self._fetch(instance_id)

    def status_of(self, instance_id: str) -> str | None:
        return self._fetch(instance_id).status

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
            raise RemoteError(not_running_message(instance), instance_id=instance.id,
                              reason=NOT_RUNNING, hint="")  # fmt: skip
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

    def forget_instance(self, instance_id: str) -> None:
        """The instance is deleted: its unpulled files and GPU readings are gone with it."""
        from .top import forget_readings
        from .unpulled import forget

        forget(self.api_url, instance_id)
        forget_readings(self.api_url, instance_id)

    # -- runs --------------------------------------------------------------------------------
    def run(
        self,
        instance: Instance | str,
        code: str,
        *,
        detach: bool = False,
        on_output: OutputSink | None = None,
        max_output: int = DEFAULT_MAX_OUTPUT,
        **options: Any,
    ) -> Run:
        """Start ``code`` on the instance (an Instance, or an id or name read from the API
        once the options are checked) as a durable run (see ``Novita.run``); ``options`` are
        ``RunOptions.checked``'s (put, get, python, timeout, env, shell)."""
        checked = launch.RunOptions.checked(code, **options)
        _check_max_output(max_output)
        if not isinstance(instance, Instance):
            instance = self._fetch(instance)
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
        """Let go of the kernels (they keep running on their instances) and the connections."""
        if self._kernels is not None:
            self._kernels.close()
        if self._pool is not None:
            self._pool.close()

    def __repr__(self) -> str:
        opened = self._pool.opened if self._pool is not None else 0
        return f"<Remote {self.api_url} connections opened={opened}>"


def not_running_message(instance: Instance) -> str:
    """One line: the instance's state in words and the call that starts it."""
    from ..vocabulary import status_word

    word = status_word(instance.status)
    api = f" (API status {instance.status})" if word != instance.status else ""
    who = instance.name or instance.id
    return (
        f"instance {who} ({instance.id}) is {word}{api}, not running: start it first with "
        f"novita.start({who!r})"
    )


def _check_max_output(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"max_output must be a number of characters >= 0, got {value!r}", field="max_output"
        )
