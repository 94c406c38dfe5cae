"""The one SSH layer (asyncssh): one pooled connection per instance on a private event loop,
opened with the password read from the API when needed, host keys pinned per instance id,
reopened on failure with the project's backoff; a sync face for the rest of the package.

Why a private loop in a daemon thread: asyncssh needs a running loop, and callers are plain
functions, often inside Jupyter's own running loop, which must never be re-entered. The
password lives only for the one connection attempt that uses it: never stored, printed,
logged, or put in an exception.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from ..errors import (
    HostKeyChangedError,
    NovitaError,
    SSHAuthenticationError,
    SSHConnectionError,
    is_transient,
)
from ..waiting.backoff import retry_delay
from .commands import command_line
from .known_hosts import HostKeys

__all__ = [
    "SSHPool",
    "Endpoint",
    "Completed",
    "background_loop",
    "asyncssh_module",
    "NOT_RUNNING",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT = 20.0  # one attempt: TCP, key exchange and authentication
RECONNECT_TIMEOUT = 60.0  # all attempts to (re)open one connection
RETRY_BASE = 0.25
RETRY_CAP = 8.0
KEEPALIVE_SECONDS = 15.0  # a silently dead connection is noticed after about three of these
#: ``RemoteError.reason`` when the instance is not running (so nothing runs there either).
NOT_RUNNING = "INSTANCE_NOT_RUNNING"

_asyncssh: ModuleType | None = None


def asyncssh_module() -> ModuleType:
    """asyncssh, imported on first use (it is slow to import and only remote work needs it)."""
    global _asyncssh
    if _asyncssh is None:
        with warnings.catch_warnings():
            # asyncssh still imports the DSA support newer cryptography releases deprecate.
            warnings.filterwarnings("ignore", message=".*DSA")
            import asyncssh

        _asyncssh = asyncssh
    return _asyncssh


class _LoopThread:
    """A private asyncio loop in a daemon thread, shared by every pool of the process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="novita-ssh-loop", daemon=True
        )
        self.thread.start()

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it here. Ctrl-C (or a timeout) cancels it."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("a blocking SSH call was made from the SSH loop itself")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
        except BaseException:
            future.cancel()
            raise


_shared: _LoopThread | None = None
_shared_lock = threading.Lock()


def background_loop() -> _LoopThread:
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.thread.is_alive():
            _shared = _LoopThread()
        return _shared


@dataclass(frozen=True)
class Endpoint:
    """Where an instance's SSH server is (from its ``sshCommand``)."""

    host: str
    port: int
    username: str = "root"


@dataclass(frozen=True)
class Completed:
    """A finished remote command: its exit status and both outputs."""

    exit_status: int | None
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


#: instance id -> (where its SSH server is, its password); raises a NovitaError when there is
#: none to connect to. Called on the worker pool, once per connection attempt.
Credentials = Callable[[str], tuple[Endpoint, str]]


def _client_class() -> type:
    asyncssh = asyncssh_module()

    class PinningClient(asyncssh.SSHClient):
        """Gives the password once, and notes the host key a server presents."""

        def __init__(self, password: str) -> None:
            self._password: str | None = password
            self.presented: Any = None

        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            # Called only for a key that is not the pinned one: with no pin it is pinned
            # after the login succeeds; with a pin it is refused.
            self.presented = key
            return self.pinned is None

        pinned: str | None = None

        def password_auth_requested(self) -> str | None:
            password, self._password = self._password, None
            return password

        def kbdint_auth_requested(self) -> str | None:
            return "" if self._password is not None else None

        def kbdint_challenge_received(
            self, name: str, instructions: str, lang: str, prompts: Sequence[tuple[str, bool]]
        ) -> list[str] | None:
            if not prompts:
                return []
            if len(prompts) == 1 and "password" in prompts[0][0].lower():
                return [self.password_auth_requested() or ""]
            return None

        def auth_completed(self) -> None:
            self._password = None

    return PinningClient


def _lost(error: BaseException) -> bool:
    """Whether an error means the connection is gone (so reopening it may help)."""
    asyncssh = asyncssh_module()
    if isinstance(error, asyncssh.PermissionDenied | asyncssh.HostKeyNotVerifiable):
        return False
    if isinstance(error, asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        return True
    if isinstance(error, asyncssh.SFTPError):
        return error.code in (asyncssh.FX_CONNECTION_LOST, asyncssh.FX_NO_CONNECTION)
    return isinstance(error, ConnectionError | OSError | asyncio.TimeoutError | EOFError)


class SSHPool:
    """One connection per instance id for one API URL. Thread-safe; every method but
    ``close`` may be called from any thread except the SSH loop's own."""

    def __init__(
        self,
        api_url: str,
        credentials: Credentials,
        *,
        directory: Path | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> None:
        self.pins = HostKeys(api_url, directory)
        self._credentials = credentials
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self._loop = background_loop()
        self._connections: dict[str, Any] = {}
        self._sftp: dict[str, tuple[Any, Any]] = {}  # instance id -> (connection, sftp client)
        self._locks: dict[str, asyncio.Lock] = {}
        self.opened = 0  # connections opened (reconnects included)

    # -- the sync face -----------------------------------------------------------------------
    def run_coroutine(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine on the SSH loop and wait for its result here."""
        return self._loop.run(coro, timeout)

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Start a coroutine on the SSH loop; its future can be waited on or cancelled."""
        return self._loop.submit(coro)

    def call(
        self,
        instance_id: str,
        operation: Callable[[Any], Awaitable[T]],
        *,
        retry: bool = True,
        timeout: float | None = None,
    ) -> T:
        """``await operation(connection)`` on the loop. With ``retry`` (only for operations
        that are safe to repeat) a lost connection is reopened and the operation tried again."""
        return self.run_coroutine(self.using(instance_id, operation, retry=retry), timeout)

    def run(
        self,
        instance_id: str,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        retry: bool = False,
    ) -> Completed:
        """Run one command (an argument list, quoted for the remote shell) to its end."""
        line = command_line(argv)

        async def run(conn: Any) -> Completed:
            result = await conn.run(line, input=input, encoding=None, timeout=timeout)
            return Completed(result.exit_status, result.stdout or b"", result.stderr or b"")

        return self.call(instance_id, run, retry=retry)

    def forward(self, instance_id: str, remote_port: int, *, remote_host: str = "127.0.0.1") -> Any:
        """Forward a free local loopback port to ``remote_host:remote_port`` as the instance
        sees it (a kernel's or a web app's port). Returns asyncssh's listener (``get_port()``
        is the local port, ``close()`` ends it); it lives as long as the connection does, so
        after a reconnect a caller forwards again."""
        if isinstance(remote_port, bool) or not isinstance(remote_port, int):
            raise TypeError("remote_port must be an int")

        async def forward(conn: Any) -> Any:
            return await conn.forward_local_port("127.0.0.1", 0, remote_host, remote_port)

        return self.call(instance_id, forward)

    def close(self, instance_id: str | None = None) -> None:
        """Close one instance's connection, or all of them."""
        try:
            self.run_coroutine(self._close(instance_id), timeout=10)
        except (concurrent.futures.TimeoutError, RuntimeError):
            log.debug("closing SSH connections took too long")

    # -- the loop side -----------------------------------------------------------------------
    async def using(
        self, instance_id: str, operation: Callable[[Any], Awaitable[T]], *, retry: bool = True
    ) -> T:
        attempt = 0
        deadline = time.monotonic() + self.reconnect_timeout
        while True:
            conn = await self.connection(instance_id)
            try:
                return await operation(conn)
            except Exception as error:
                if not _lost(error) and not conn.is_closed():
                    raise
                await self.drop(instance_id, conn)
                if not retry:
                    raise self._unreachable(instance_id, "the SSH connection was lost") from None
                log.debug("SSH connection to %s lost (%s); reopening", instance_id, type(error))
            delay = retry_delay(attempt, base=RETRY_BASE, cap=RETRY_CAP)
            if time.monotonic() + delay > deadline:
                raise self._unreachable(instance_id, "the SSH connection kept dropping")
            await asyncio.sleep(delay)
            attempt += 1

    async def connection(self, instance_id: str) -> Any:
        """The open connection to the instance, opened (with retries) when there is none."""
        lock = self._locks.setdefault(instance_id, asyncio.Lock())
        async with lock:
            conn = self._connections.get(instance_id)
            if conn is not None and not conn.is_closed():
                return conn
            conn = await self._connect(instance_id)
            self._connections[instance_id] = conn
            return conn

    async def sftp(self, conn: Any, instance_id: str) -> Any:
        """The SFTP session of a connection (one per connection, opened on first use)."""
        known = self._sftp.get(instance_id)
        if known is not None and known[0] is conn:
            return known[1]
        client = await conn.start_sftp_client()
        self._sftp[instance_id] = (conn, client)
        return client

    async def drop(self, instance_id: str, conn: Any | None = None) -> None:
        """Forget (and close) the instance's connection, so the next use opens a new one."""
        current = self._connections.get(instance_id)
        if conn is None or current is conn:
            self._connections.pop(instance_id, None)
            self._sftp.pop(instance_id, None)
        if current is not None and (conn is None or current is conn):
            current.abort()

    async def _close(self, instance_id: str | None) -> None:
        ids = [instance_id] if instance_id is not None else list(self._connections)
        for key in ids:
            conn = self._connections.pop(key, None)
            self._sftp.pop(key, None)
            if conn is not None:
                conn.close()
                try:
                    await asyncio.wait_for(conn.wait_closed(), 2)
                except TimeoutError:
                    conn.abort()

    async def _connect(self, instance_id: str) -> Any:
        attempt = 0
        deadline = time.monotonic() + self.reconnect_timeout
        while True:
            try:
                return await self._open(instance_id)
            except (HostKeyChangedError, SSHAuthenticationError):
                raise
            except NovitaError as error:
                if not is_transient(error):
                    raise
                reason = str(error.message)
            except Exception as error:
                if not _lost(error):
                    raise
                reason = f"{type(error).__name__}: {error}"
            delay = retry_delay(attempt, base=RETRY_BASE, cap=RETRY_CAP)
            if time.monotonic() + delay > deadline:
                raise self._unreachable(instance_id, reason)
            log.debug("cannot open SSH to %s (%s); retrying in %.2f s", instance_id, reason, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def _open(self, instance_id: str) -> Any:
        asyncssh = asyncssh_module()
        endpoint, password = await asyncio.to_thread(self._credentials, instance_id)
        client = _client_class()(password)
        del password
        pinned_text = await asyncio.to_thread(self.pins.pinned, instance_id)
        pinned = asyncssh.import_public_key(pinned_text) if pinned_text else None
        client.pinned = pinned_text

        def trusted(host: str, addr: str, port: int | None) -> tuple[list, list, list]:
            return ([pinned] if pinned is not None else [], [], [])

        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    endpoint.host,
                    endpoint.port,
                    username=endpoint.username,
                    client_factory=lambda: client,
                    known_hosts=trusted,
                    client_keys=None,
                    agent_path=None,
                    config=None,
                    preferred_auth="password,keyboard-interactive",
                    keepalive_interval=KEEPALIVE_SECONDS,
                    keepalive_count_max=3,
                ),
                self.connect_timeout,
            )
        except asyncssh.HostKeyNotVerifiable:
            presented = client.presented
            raise self.pins.changed(
                instance_id,
                self.pins.fingerprint_of(instance_id),
                presented.get_fingerprint("sha256") if presented is not None else None,
            ) from None
        except asyncssh.PermissionDenied:
            raise SSHAuthenticationError(
                f"instance {instance_id}'s SSH server refused the password the API gave for it",
                instance_id=instance_id,
            ) from None
        if pinned is None:
            key = conn.get_server_host_key()
            text = key.export_public_key("openssh").decode().strip()
            try:
                await asyncio.to_thread(
                    self.pins.pin, instance_id, text, key.get_fingerprint("sha256")
                )
            except HostKeyChangedError:
                conn.abort()  # another kernel pinned a different key meanwhile
                raise
        self.opened += 1
        return conn

    def _unreachable(self, instance_id: str, reason: str) -> SSHConnectionError:
        return SSHConnectionError(
            f"cannot reach instance {instance_id} over SSH: {reason}", instance_id=instance_id
        )
