"""The SSH side of a remote kernel, on the SSH loop: its ports forwarded over the instance's
pooled connection, a watcher that re-makes the forwards when the connection drops (the kernel
lives on the instance, so its variables survive), and the end in words when the instance stops
or the kernel's process is gone.

``generation`` counts the forwards made; a kernel client built for an older generation points
at closed ports and must be rebuilt (kernel.py does that on its own thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import (
    HostKeyChangedError,
    RemoteError,
    RemoteKernelError,
    SSHAuthenticationError,
    is_transient,
)
from ..waiting.backoff import retry_delay
from . import kernel_process
from .forwarding import Forwards, check_forwarding
from .kernel_process import CHANNELS, KernelProcess
from .ssh import NOT_RUNNING, SSHPool

__all__ = ["KernelLink"]

log = logging.getLogger(__name__)

GONE_STATUSES = frozenset({"toRemove", "removing", "removed"})


class KernelLink:
    """Forwards to one kernel's five ports, kept up across reconnects."""

    def __init__(
        self,
        pool: SSHPool,
        instance_id: str,
        where: str,
        process: KernelProcess,
        info: dict[str, Any],
        status_of: Callable[[], str | None],
        on_end: Callable[[RemoteKernelError], None],
    ) -> None:
        self.pool = pool
        self.instance_id = instance_id
        self.where = where  # "instance NAME (ID)", for messages
        self.process = process
        self.info = info
        self._status_of = status_of
        self._on_end = on_end
        self._forwards = Forwards(instance_id)
        self._conn: Any = None
        self._watcher: asyncio.Task | None = None
        self.local: dict[str, int] = {}
        self.generation = 0
        self.reconnects = 0
        self.connected = threading.Event()
        self.ended: RemoteKernelError | None = None
        self.closed = False

    @property
    def remote_ports(self) -> dict[str, int]:
        return {name: int(self.info[f"{name}_port"]) for name in CHANNELS}

    # -- on the loop ---------------------------------------------------------------------------
    async def start(self, conn: Any, wanted: dict[str, int] | None = None) -> None:
        """Forward the kernel's ports over ``conn`` and watch the connection."""
        await self._forward(conn, wanted)
        self._watcher = asyncio.ensure_future(self._watch(wanted))

    async def _forward(self, conn: Any, wanted: dict[str, int] | None) -> None:
        await check_forwarding(conn, self.remote_ports["hb"], self.where, self.process.kernel_id)
        self.local = await self._forwards.open(conn, self.remote_ports, wanted)
        self._conn = conn
        self.generation += 1
        self.connected.set()

    async def _watch(self, wanted: dict[str, int] | None) -> None:
        try:
            while not self.closed and self.ended is None:
                await self._conn.wait_closed()
                self.connected.clear()
                if self.closed:
                    return
                log.info("SSH connection to %s dropped; reconnecting the kernel", self.where)
                await self._reconnect(wanted)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the watcher must end in words, not silently
            log.warning("the kernel watcher of %s failed: %r", self.where, error)
            self.end(self._lost_error(f"reconnecting failed: {type(error).__name__}: {error}"))

    async def _reconnect(self, wanted: dict[str, int] | None) -> None:
        attempt = 0
        while not self.closed:
            try:
                conn = await self.pool.connection(self.instance_id)
                if not await kernel_process.alive(conn, self.process):
                    self.end(await self._gone())
                    return
                # Jupyter chose the launcher's ports; a kernel of our own may take new ones.
                await self._forward(conn, wanted)
                self.reconnects += 1
                return
            except RemoteKernelError as error:
                self.end(error)
                return
            except (HostKeyChangedError, SSHAuthenticationError) as error:
                self.end(self._lost_error(error.message))
                return
            except RemoteError as error:
                if error.reason == NOT_RUNNING:
                    self.end(await self._stopped())
                    return
                if not is_transient(error):
                    self.end(self._lost_error(error.message))
                    return
            except (TimeoutError, OSError, EOFError) as error:
                log.debug("reconnecting the kernel on %s: %r", self.where, error)
            except Exception as error:  # asyncssh's own errors while the link is shaky
                if "asyncssh" not in type(error).__module__:
                    raise
            await asyncio.sleep(retry_delay(attempt, base=0.5, cap=10.0))
            attempt += 1

    async def _stopped(self) -> RemoteKernelError:
        status = await asyncio.to_thread(self._status)
        if status in GONE_STATUSES:
            what = "was deleted"
        elif status:
            what = f"was stopped (status: {status})"
        else:
            what = "is not running"
        return RemoteKernelError(
            f"the remote kernel on {self.where} has ended: the instance {what}, and the "
            "kernel's variables ended with it",
            instance_id=self.instance_id,
            kernel_id=self.process.kernel_id,
            reason=NOT_RUNNING,
            hint="Start the instance again (novita.start(...)); novita.kernel(...) then starts "
            "a new kernel. Files on the instance's disk are kept across a stop.",
        )

    async def _gone(self) -> RemoteKernelError:
        return RemoteKernelError(
            f"the remote kernel on {self.where} has ended: its process is gone (the instance "
            "restarted, or the kernel exited), and its variables with it",
            instance_id=self.instance_id,
            kernel_id=self.process.kernel_id,
            reason="KERNEL_GONE",
            hint="novita.kernel(...) starts a new kernel on the instance.",
        )

    def _lost_error(self, why: str) -> RemoteKernelError:
        return RemoteKernelError(
            f"the connection to the remote kernel on {self.where} cannot be made again: {why}",
            instance_id=self.instance_id,
            kernel_id=self.process.kernel_id,
            reason="KERNEL_UNREACHABLE",
        )

    def _status(self) -> str | None:
        try:
            return self._status_of()
        except Exception:  # noqa: BLE001 - the status only decorates the message
            return None

    def end(self, error: RemoteKernelError) -> None:
        """The kernel is over: say why to whoever waits, close the forwards."""
        if self.ended is None:
            self.ended = error
            self.connected.set()  # wake waiters: they find ``ended``
            asyncio.ensure_future(self._forwards.close())
            self._on_end(error)

    async def close(self) -> None:
        """Stop watching and close the forwards (the kernel itself is left running)."""
        self.closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        await self._forwards.close()
        self.connected.clear()

    async def check_alive(self) -> bool:
        """Whether the kernel's process still runs (asked over SSH)."""
        conn = await self.pool.connection(self.instance_id)
        return await kernel_process.alive(conn, self.process)

    async def end_if_stopped(self) -> bool:
        """End the link, in words, if the instance is no longer running; True if it did."""
        status = await asyncio.to_thread(self._status)
        if status is not None and status != "running" and self.ended is None:
            self.end(await self._stopped())
        return self.ended is not None

    async def confirm_gone(self) -> None:
        """End the link if the kernel's process is gone (after a long silence)."""
        if self.ended is None and not await self.check_alive():
            self.end(await self._gone())
