"""One remote kernel per instance: found again when it still runs (in this process, or one
this package started earlier on the instance, so a restarted notebook gets its variables
back), else started; shut down on request; let go of (left running) when the client closes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import NovitaError, RemoteKernelError, ValidationError
from . import kernel_process
from .kernel import RemoteKernel
from .kernel_link import KernelLink
from .kernel_process import KernelProcess, KernelRegistry
from .ssh import SSHPool

__all__ = ["Kernels"]

log = logging.getLogger(__name__)

DEFAULT_PYTHON = "python3"


class Kernels:
    """The remote kernels of one API URL's instances."""

    def __init__(self, api_url: str, pool: SSHPool, status_of: Callable[[str], str | None]):
        self.api_url = api_url
        self.pool = pool
        self._status_of = status_of
        self.registry = KernelRegistry(api_url)
        self._open: dict[str, RemoteKernel] = {}
        self._lock = threading.Lock()

    def kernel(
        self,
        instance_id: str,
        name: str,
        *,
        python: str | None = None,
        new: bool = False,
        install: bool = False,
    ) -> RemoteKernel:
        """The instance's kernel: the one already running (unless ``new``), else a new one
        started with ``python`` (default python3; ``install`` pip-installs ipykernel there
        first when it is missing)."""
        if python is not None and (not isinstance(python, str) or not python.strip()):
            raise ValidationError("python must be the name or path of a Python", field="python")
        with self._lock:
            current = self._open.get(instance_id)
            same_python = current is not None and python in (None, current.process.python)
            if current is not None and current.ended is None and not new and same_python:
                return current
            if current is not None:
                self._forget(current, stop=current.ended is None)
            known = self.registry.get(instance_id)
            if known is not None and python is not None and known.python != python:
                new = True
            link = self._connect(instance_id, name, known, python or DEFAULT_PYTHON, new, install)
            self.registry.put(instance_id, link.process)
            kernel = RemoteKernel(link, self.pool.run_coroutine, api_url=self.api_url,
                                  name=name, on_shutdown=self._shut)  # fmt: skip
            self._open[instance_id] = kernel
            return kernel

    def _connect(
        self,
        instance_id: str,
        name: str,
        known: KernelProcess | None,
        python: str,
        new: bool,
        install: bool,
    ) -> KernelLink:
        where = f"{name} ({instance_id})" if name and name != instance_id else instance_id

        async def attach_or_start(conn: Any) -> KernelLink:
            sftp = await self.pool.sftp(conn, instance_id)
            process, started = known, False
            if process is not None and (new or not await kernel_process.alive(conn, process)):
                await kernel_process.stop(conn, sftp, process)
                process = None
            if process is None:
                if install:
                    await kernel_process.install_ipykernel(conn, python, instance_id)
                process, started = await kernel_process.launch(conn, sftp, python, where), True
            try:
                info = await kernel_process.read_ports(conn, sftp, process, where)
                link = KernelLink(self.pool, instance_id, where, process, info,
                                  lambda: self._status_of(instance_id), self._ended)  # fmt: skip
                await link.start(conn)
            except BaseException:
                if started:
                    await kernel_process.stop(conn, sftp, process)
                raise
            return link

        return self.pool.call(instance_id, attach_or_start, retry=False)

    def _ended(self, error: RemoteKernelError) -> None:
        log.warning("%s", error.message)

    def _shut(self, kernel: RemoteKernel) -> None:
        with self._lock:
            self._forget(kernel, stop=True)

    def _forget(self, kernel: RemoteKernel, *, stop: bool) -> None:
        """Drop the kernel here; with ``stop`` also end its process on the instance."""
        kernel.close_client()
        self.pool.run_coroutine(kernel._link.close(), timeout=10)
        if self._open.get(kernel.instance_id) is kernel:
            del self._open[kernel.instance_id]
        if stop:
            process = kernel.process

            async def end(conn: Any) -> None:
                sftp = await self.pool.sftp(conn, kernel.instance_id)
                await kernel_process.stop(conn, sftp, process)

            try:
                self.pool.call(kernel.instance_id, end, retry=True, timeout=60)
            except NovitaError as error:  # a stopped instance ended it already
                log.debug("could not end kernel %s: %s", process.kernel_id, error.message)
        self.registry.forget(kernel.instance_id, kernel.kernel_id)

    def opened(self) -> list[RemoteKernel]:
        with self._lock:
            return list(self._open.values())

    def close(self) -> None:
        """Let go of every kernel here; they keep running on their instances."""
        with self._lock:
            kernels, self._open = list(self._open.values()), {}
        for kernel in kernels:
            try:
                kernel.detach()
            except Exception:  # noqa: BLE001 - closing must go on
                log.debug("detaching %s failed", kernel.kernel_id, exc_info=True)
