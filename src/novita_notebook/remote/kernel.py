"""A remote IPython kernel: ipykernel runs on the instance, jupyter_client's
BlockingKernelClient talks to it through ports forwarded over the instance's SSH connection.
Variables stay between ``execute`` calls, outputs come back as notebook outputs (rich
displays and images included), a dropped connection is made again under a fresh client while
the kernel keeps its state, and a stopped instance ends it with a message that says so.

One ``execute`` at a time per kernel; Ctrl-C interrupts the remote code.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import RemoteExecutionError, RemoteKernelError, SSHConnectionError, TimeoutError
from . import activity
from .kernel_link import KernelLink
from .kernel_process import KernelProcess
from .outputs import Execution, OutputHook, strip_ansi

if TYPE_CHECKING:  # pragma: no cover
    from jupyter_client.blocking.client import BlockingKernelClient as KernelClient

__all__ = ["RemoteKernel"]

log = logging.getLogger(__name__)

RECONNECT_WAIT = 120.0  # how long an execute waits for a dropped connection to come back
READY_TIMEOUT = 30.0
SILENCE_CHECK = 10.0  # seconds without a message before asking whether the kernel still runs
IDLE_AFTER_REPLY = 2.0  # a reply without its "idle" status ends the wait this much later
INTERRUPT_DRAIN = 10.0
SHUTDOWN_WAIT = 3.0


class RemoteKernel:
    """The kernel of one instance. ``execute(code)`` -> ``Execution``; ``interrupt()``,
    ``shutdown()``; ``state`` is "idle", "busy" or "ended"; ``ended`` says why it ended."""

    def __init__(
        self,
        link: KernelLink,
        run: Callable[..., Any],
        *,
        api_url: str,
        name: str,
        on_shutdown: Callable[[RemoteKernel], None],
    ) -> None:
        self._link = link
        self._run_on_loop = run  # run a coroutine on the SSH loop, wait here
        self.api_url = api_url
        self.instance_id = link.instance_id
        self.name = name
        self._on_shutdown = on_shutdown
        self._lock = threading.RLock()
        self._client: Any = None
        self._client_generation = -1
        self._count: int | None = None  # the kernel's execution count, when known
        self.busy = False

    # -- what it is ----------------------------------------------------------------------------
    @property
    def kernel_id(self) -> str:
        return self._link.process.kernel_id

    @property
    def process(self) -> KernelProcess:
        return self._link.process

    @property
    def ended(self) -> RemoteKernelError | None:
        return self._link.ended

    @property
    def state(self) -> str:
        if self.ended is not None:
            return "ended"
        return "busy" if self.busy else "idle"

    @property
    def reconnects(self) -> int:
        return self._link.reconnects

    def __repr__(self) -> str:
        return (
            f"<RemoteKernel {self.kernel_id} on {self.name} ({self.instance_id}) {self.state}, "
            f"{self.process.python} pid {self.process.pid}>"
        )

    # -- executing -----------------------------------------------------------------------------
    def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        output: OutputHook | None = None,
        raise_on_error: bool = True,
    ) -> Execution:
        """Run ``code`` in the kernel and wait for it; variables stay for the next call.
        ``output`` is called with each output as it arrives. A failure in the code raises
        RemoteExecutionError (``raise_on_error=False`` returns it in the Execution instead);
        ``timeout`` (seconds) interrupts the code and raises TimeoutError."""
        if not isinstance(code, str):
            from ..errors import ValidationError

            raise ValidationError("code must be text (a str)", field="code")
        with self._lock:
            execution = Execution(code, self.kernel_id)
            key = f"kernel {self.kernel_id}"
            activity.mark_busy(self.api_url, self.instance_id, key,
                               f"a remote kernel is running a cell on {self.name}",
                               pid=os.getpid())  # fmt: skip
            self.busy = True
            try:
                self._execute(execution, output, timeout)
            finally:
                self.busy = False
                activity.mark_idle(self.api_url, self.instance_id, key)
        error = execution.error
        if error is not None and raise_on_error:
            tail = [strip_ansi(line) for line in error["traceback"]]
            raise RemoteExecutionError(
                f"the code raised {error['ename']}: {error['evalue']} (in the remote kernel "
                f"on {self.name}; its variables are intact)",
                instance_id=self.instance_id,
                ename=error["ename"],
                evalue=error["evalue"],
                traceback=tail,
                result=execution,
            )
        return execution

    def _execute(
        self, execution: Execution, hook: OutputHook | None, timeout: float | None
    ) -> None:
        client = self._fresh_client()
        before = self._count
        msg_id = client.execute(execution.code, store_history=True, allow_stdin=False)
        probe: str | None = None
        reply_at: float | None = None
        idle = False
        heard = time.monotonic()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                self._raise_if_ended(execution)
                if self._client_generation != self._link.generation or not self._connected():
                    client = self._fresh_client(probe_count=False)
                    probe = client.execute("", silent=True, store_history=False)
                    execution.notes.append(
                        "the SSH connection dropped during this cell; output printed while it "
                        "was down is not shown (the kernel and its variables are intact)"
                    )
                for channel, msg in self._poll(client, 0.2):
                    heard = time.monotonic()
                    parent = msg["parent_header"].get("msg_id")
                    kind, content = msg["header"]["msg_type"], msg["content"]
                    if channel == "iopub" and parent == msg_id:
                        if kind == "status":
                            idle = idle or content.get("execution_state") == "idle"
                        else:
                            execution.add(kind, content, hook)
                    elif channel == "shell" and parent == msg_id:
                        reply_at = time.monotonic()
                        self._count = content.get("execution_count", self._count)
                        execution.finish(content.get("status", "ok"), self._count)
                    elif channel == "shell" and parent == probe and reply_at is None:
                        count = content.get("execution_count")
                        if before is not None and count == before:
                            # The cell never reached the kernel: send it again.
                            execution.notes.pop()
                            msg_id, probe = client.execute(execution.code, allow_stdin=False), None
                            continue
                        self._count = count
                        execution.finish("error" if execution.error else "ok")
                        return
                if probe is not None and idle and reply_at is None:
                    self._count = None  # the reply was lost with the old connection
                    execution.finish("error" if execution.error else "ok")
                    return
                if reply_at is not None and (
                    idle or time.monotonic() - reply_at > IDLE_AFTER_REPLY
                ):
                    return
                now = time.monotonic()
                if deadline is not None and now > deadline:
                    self._interrupt_and_drain(client, msg_id, execution, hook)
                    raise TimeoutError(
                        f"the cell ran longer than {timeout:g} s on {self.name} and was "
                        "interrupted (the kernel and its variables are intact)",
                        result=execution,
                    )
                if now - heard > SILENCE_CHECK:
                    heard = now
                    self._run_on_loop(self._link.confirm_gone(), timeout=60)
        except KeyboardInterrupt:
            self._interrupt_and_drain(client, msg_id, execution, hook)
            raise

    def _interrupt_and_drain(
        self, client: KernelClient, msg_id: str, execution: Execution, hook: OutputHook | None
    ) -> None:
        """Interrupt the remote code, then collect what it says until it is idle."""
        self.interrupt()
        end = time.monotonic() + INTERRUPT_DRAIN
        while time.monotonic() < end and self.ended is None:
            for channel, msg in self._poll(client, 0.2):
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = msg["header"]["msg_type"], msg["content"]
                if channel == "shell":
                    execution.finish(content.get("status", "aborted"))
                    self._count = content.get("execution_count", self._count)
                    return
                if kind != "status":
                    execution.add(kind, content, hook)
        execution.finish("aborted")

    def interrupt(self) -> None:
        """Interrupt the code running in the kernel (as Ctrl-C would there)."""
        self._raise_if_ended()
        client = self._client
        if client is not None and self._connected():
            client.control_channel.send(client.session.msg("interrupt_request", {}))

    # -- the client ----------------------------------------------------------------------------
    def _connected(self) -> bool:
        return self._link.connected.is_set() and self.ended is None

    def _raise_if_ended(self, execution: Execution | None = None) -> None:
        ended = self.ended
        if ended is not None:
            self._close_client()
            if execution is not None and execution.status is None:
                execution.finish("aborted")
            ended.result = execution
            raise ended

    def _fresh_client(self, probe_count: bool = True) -> Any:
        """A client for the current forwards: waits while the connection is being made
        again, and rebuilds the client after it was (a fresh session, so the kernel sees a
        new peer rather than waiting on the dead one)."""
        if not self._link.connected.wait(RECONNECT_WAIT):
            raise SSHConnectionError(
                f"the SSH connection to {self.name} has been down for {RECONNECT_WAIT:g} s; "
                "the kernel is still there and reconnecting goes on",
                instance_id=self.instance_id,
            )
        self._raise_if_ended()
        if self._client is not None and self._client_generation == self._link.generation:
            return self._client
        self._close_client()
        from jupyter_client.blocking.client import BlockingKernelClient

        info = dict(self._link.info, ip="127.0.0.1")
        info.update({f"{name}_port": port for name, port in self._link.local.items()})
        client = BlockingKernelClient()
        client.load_connection_info(info)
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        self._client, self._client_generation = client, self._link.generation
        if probe_count:
            self._ready(client)
        return client

    def _ready(self, client: KernelClient) -> None:
        """Wait until IOPub is subscribed (a status of our probe arrives) and learn the
        execution count from the probe's reply."""
        deadline = time.monotonic() + READY_TIMEOUT
        probes: set[str] = set()
        subscribed = replied = False
        next_probe = 0.0
        while not (subscribed and replied):
            self._raise_if_ended()
            now = time.monotonic()
            if now > deadline:
                raise RemoteKernelError(
                    f"the remote kernel on {self.name} does not answer",
                    instance_id=self.instance_id,
                    kernel_id=self.kernel_id,
                    reason="KERNEL_UNREACHABLE",
                )
            if now >= next_probe and not subscribed:
                probes.add(client.execute("", silent=True, store_history=False))
                next_probe = now + 0.5
            for channel, msg in self._poll(client, 0.1):
                if msg["parent_header"].get("msg_id") not in probes:
                    continue
                if channel == "iopub":
                    subscribed = True
                else:
                    replied = True
                    self._count = msg["content"].get("execution_count", self._count)

    def _poll(self, client: KernelClient, timeout: float) -> list[tuple[str, dict[str, Any]]]:
        import zmq

        poller = zmq.Poller()
        channels = {"iopub": client.iopub_channel, "shell": client.shell_channel}
        for channel in channels.values():
            poller.register(channel.socket, zmq.POLLIN)
        ready = dict(poller.poll(int(timeout * 1000)))
        found = []
        for name, channel in channels.items():
            if channel.socket in ready:
                while True:
                    try:
                        found.append((name, channel.get_msg(timeout=0)))
                    except queue.Empty:
                        break
        return found

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        # Only the channels started: stop_channels() would open the other two to close them.
        # Each client has a zmq context of its own: ended here, or its garbage collection
        # would wait forever on sockets it still holds.
        for channel in (client.shell_channel, client.iopub_channel, client.control_channel):
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - closing sockets of a dead link
                log.debug("closing a kernel channel failed", exc_info=True)
        client.context.destroy(linger=0)

    # -- ending --------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """End the kernel on the instance (its variables go) and forget it."""
        with self._lock:
            if self.ended is None and self._connected() and self._client is not None:
                try:
                    self._client.shutdown()
                    self._client.control_channel.get_msg(timeout=SHUTDOWN_WAIT)
                except Exception:  # noqa: BLE001 - the kill below ends it anyway
                    log.debug("no shutdown_reply", exc_info=True)
            self._close_client()
            self._on_shutdown(self)

    def close_client(self) -> None:
        """Close the sockets of this side (the kernel is not touched)."""
        with self._lock:
            self._close_client()

    def detach(self) -> None:
        """Let go of the kernel here (it keeps running there; ``novita.kernel`` finds it)."""
        self._close_client()
        self._run_on_loop(self._link.close(), timeout=10)
