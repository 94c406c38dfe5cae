"""The SSH server of a sandbox instance (asyncssh): ``root`` with the instance's password while
it runs; commands as local processes in its home, over pipes or a pty; SFTP rooted at its
directory (relative paths start at the home); local port forwarding to loopback only.

The hosts' bookkeeping (which instance runs, its disk, its processes) is ``machines.py``'s;
this module only speaks SSH. Environment variables the client sends are accepted as sshd's
default ``AcceptEnv LANG LC_*`` accepts them, and no others.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import sys
import termios
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

with warnings.catch_warnings():
    # asyncssh still imports the DSA support that newer cryptography releases deprecate.
    warnings.filterwarnings("ignore", message=".*DSA")
    import asyncssh

if TYPE_CHECKING:
    from .machines import Launch, Machines

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
READ_SIZE = 65536
_PTY_START = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def accepted_env(sent: Mapping[Any, Any]) -> dict[str, str]:
    """What sshd's default ``AcceptEnv LANG LC_*`` lets through of the client's variables."""
    accepted = {}
    for key, value in sent.items():
        name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        if name == "LANG" or name.startswith("LC_"):
            accepted[name] = text
    return accepted


class InstanceServer(asyncssh.SSHServer):
    """One SSH connection to one instance."""

    def __init__(self, machines: Machines, instance_id: str) -> None:
        self.machines = machines
        self.instance_id = instance_id
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.machines.connected(self.instance_id, conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.machines.disconnected(self.instance_id, self.conn)

    def begin_auth(self, username: str) -> bool:
        status = self.machines.status(self.instance_id)
        if status != "running":
            raise asyncssh.DisconnectError(
                asyncssh.DISC_SERVICE_NOT_AVAILABLE,
                f"instance {self.instance_id} is not running (status: {status or 'gone'})",
            )
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "root" and self.machines.password_ok(self.instance_id, password)

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        # Switched off, refuse as sshd with ``AllowTcpForwarding no`` does.
        if not self.machines.forwarding_allowed:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "open failed: forwarding is disabled"
            )
        # The instance's network is this machine's loopback: forward there, nowhere else.
        return dest_host in LOOPBACK

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False


class InstanceSFTP(asyncssh.SFTPServer):
    """SFTP rooted at the instance's directory; a relative path starts at its home."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: str, home: str) -> None:
        super().__init__(chan, chroot=root.encode())
        self._home = home.encode()

    def map_path(self, path: bytes) -> bytes:
        if not path.startswith(b"/"):
            path = self._home + b"/" + path
        return super().map_path(path)


async def serve_process(machines: Machines, instance_id: str, process: Any) -> None:
    """Run one exec or shell request as a local process of the instance."""
    try:
        launch = machines.launch(
            instance_id, process.command, accepted_env(process.env), process.get_terminal_type()
        )
    except LookupError as refusal:
        process.stderr.write(f"{refusal}\n".encode())
        process.exit(255)
        return
    try:
        if launch.terminal is not None:  # a pty was asked for (its type may be empty)
            code = await _run_on_pty(machines, launch, process)
        else:
            code = await _run_on_pipes(machines, launch, process)
    except (OSError, asyncssh.Error) as error:
        with contextlib.suppress(OSError, asyncssh.Error):
            process.stderr.write(f"cannot run the command: {error}\n".encode())
        code = 127
    with contextlib.suppress(OSError, asyncssh.Error):
        if code < 0:
            name = signal.Signals(-code).name[3:] if -code in signal.valid_signals() else "KILL"
            process.exit_with_signal(name)
        else:
            process.exit(code)


async def _run_on_pipes(machines: Machines, launch: Launch, process: Any) -> int:
    child = await asyncio.create_subprocess_exec(
        *launch.argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=launch.cwd,
        env=launch.env,
        start_new_session=True,
    )
    machines.spawned(launch, child)
    feeding = asyncio.ensure_future(_feed_stdin(process, child))
    outputs = [
        asyncio.ensure_future(_forward(child.stdout, process.stdout)),
        asyncio.ensure_future(_forward(child.stderr, process.stderr)),
    ]
    try:
        # As sshd: the exit status follows the end of both outputs (a daemon that keeps
        # them open keeps the channel open).
        await asyncio.gather(*outputs)
        return await child.wait()
    finally:
        feeding.cancel()
        for task in outputs:
            task.cancel()
        _close_pipes(child)


async def _forward(source: asyncio.StreamReader | None, target: Any) -> None:
    """Copy a process's output to the channel with flow control; a lost channel closes the
    pipe, so the writer gets SIGPIPE as it would under sshd."""
    if source is None:
        return
    try:
        while True:
            data = await source.read(READ_SIZE)
            if not data:
                return
            target.write(data)
            await target.drain()
    except (OSError, asyncssh.Error):
        return


async def _feed_stdin(process: Any, child: asyncio.subprocess.Process) -> None:
    """Channel -> the process's stdin; signals and breaks go to its process group."""
    stdin = child.stdin
    try:
        while True:
            try:
                data = await process.stdin.read(READ_SIZE)
            except asyncssh.SignalReceived as received:
                _signal_group(child.pid, getattr(signal, f"SIG{received.signal}", None))
                continue
            except asyncssh.BreakReceived:
                _signal_group(child.pid, signal.SIGINT)
                continue
            except asyncssh.TerminalSizeChanged:
                continue
            if not data:
                break
            if stdin is not None:
                stdin.write(data)
                await stdin.drain()
    except (OSError, asyncssh.Error):
        pass
    finally:
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()


def _signal_group(pid: int, sig: int | None) -> None:
    if sig is not None:
        with contextlib.suppress(OSError):
            os.killpg(pid, sig)


def _close_pipes(child: asyncio.subprocess.Process) -> None:
    transport = getattr(child, "_transport", None)
    for fd in (0, 1, 2):
        pipe = transport.get_pipe_transport(fd) if transport is not None else None
        if pipe is not None:
            pipe.close()


def _set_size(fd: int, size: tuple[int, int, int, int]) -> None:
    width, height, pixwidth, pixheight = size
    with contextlib.suppress(OSError):
        fcntl.ioctl(
            fd,
            termios.TIOCSWINSZ,
            struct.pack("HHHH", height or 24, width or 80, pixheight, pixwidth),
        )


async def _run_on_pty(machines: Machines, launch: Launch, process: Any) -> int:
    """An interactive session: the command on a new pty as its controlling terminal."""
    master, slave = os.openpty()
    _set_size(master, process.get_terminal_size())
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PTY_START,
            *launch.argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=launch.cwd,
            env=launch.env,
        )
    finally:
        os.close(slave)
    machines.spawned(launch, child)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(master, READ_SIZE)
        except OSError:  # EIO: every holder of the pty's other side has gone
            data = b""
        if not data:
            loop.remove_reader(master)
            if not done.done():
                done.set_result(None)
            return
        with contextlib.suppress(OSError, asyncssh.Error):
            process.stdout.write(data)

    loop.add_reader(master, readable)
    feeding = asyncio.ensure_future(_feed_pty(process, master, child.pid))
    try:
        await done
        return await child.wait()
    finally:
        feeding.cancel()
        loop.remove_reader(master)
        os.close(master)  # the session's terminal hangs up: its processes get SIGHUP


async def _feed_pty(process: Any, master: int, pid: int) -> None:
    while True:
        try:
            data = await process.stdin.read(READ_SIZE)
        except asyncssh.TerminalSizeChanged as changed:
            _set_size(master, (changed.width, changed.height, changed.pixwidth, changed.pixheight))
            continue
        except asyncssh.BreakReceived:
            _signal_group(pid, signal.SIGINT)
            continue
        except asyncssh.SignalReceived as received:
            _signal_group(pid, getattr(signal, f"SIG{received.signal}", None))
            continue
        except (OSError, asyncssh.Error):
            return
        if not data:
            return
        with contextlib.suppress(OSError):
            os.write(master, data)


async def listen(machines: Machines, instance_id: str, sock: Any, host_key: Any) -> Any:
    """Serve one instance's SSH port on an already listening socket."""

    def sftp(chan: asyncssh.SSHServerChannel) -> InstanceSFTP:
        root, home = machines.sftp_paths(instance_id)
        return InstanceSFTP(chan, root, home)

    async def process_factory(process: Any) -> None:
        await serve_process(machines, instance_id, process)

    return await asyncssh.listen(
        sock=sock,
        server_factory=lambda: InstanceServer(machines, instance_id),
        server_host_keys=[host_key],
        process_factory=process_factory,
        sftp_factory=sftp,
        allow_scp=True,
        encoding=None,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        login_timeout=30,
        keepalive_interval=0,
    )


def new_host_key() -> Any:
    return asyncssh.generate_private_key("ssh-ed25519")


def fingerprint(key: Any) -> str:
    return key.get_fingerprint("sha256")
