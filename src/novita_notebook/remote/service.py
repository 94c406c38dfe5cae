"""Remote: the client's service for working on instances over SSH. It finds an instance's SSH
server and password through the API each time a connection is opened, and owns the pool and
the remote kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import RemoteError, SSHConnectionError
from ..models import Instance
from .ssh import NOT_RUNNING, Endpoint, SSHPool

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
        (a remote kernel running a cell, an active run), or None."""
        from .activity import busy_reason

        return busy_reason(self.api_url, instance_id)

    def instance(self, instance_id: str) -> Instance:
        """The instance read from the API now."""
        return self._fetch(instance_id)

    def status_of(self, instance_id: str) -> str | None:
        return self._fetch(instance_id).status

    def credentials(self, instance_id: str) -> tuple[Endpoint, str]:
        """Where the instance's SSH server is and its password, read from the API now."""
        instance = self._fetch(instance_id)
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

    def forget_instance(self, instance_id: str) -> None:
        """The instance is deleted: its unpulled files and GPU readings are gone with it."""
        from .top import forget_readings
        from .unpulled import forget

        forget(self.api_url, instance_id)
        forget_readings(self.api_url, instance_id)

    def close(self) -> None:
        """Let go of the kernels (they keep running on their instances) and the connections."""
        if self._kernels is not None:
            self._kernels.close()
        if self._pool is not None:
            self._pool.close()

    def __repr__(self) -> str:
        opened = self._pool.opened if self._pool is not None else 0
        return f"<Remote {self.api_url} connections opened={opened}>"
