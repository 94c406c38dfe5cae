"""The kernel process on an instance: started detached (it outlives the SSH connection that
started it) with a connection file we write over SFTP, its ports read back once ipykernel has
bound them, checked, stopped. Which kernel runs where is remembered in ``remote-kernels.json``
in the ledger directory (ids, pids and paths only: the message key stays on the instance).

Every coroutine here runs on the SSH loop with an open connection; commands go through
``command_line`` so no path or name reaches the remote shell unquoted.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import RemoteKernelError
from .commands import command_line
from .jsonfile import JsonFile, scope_of
from .ssh import asyncssh_module

__all__ = ["KernelProcess", "KernelRegistry", "launch", "alive", "read_ports", "stop"]

KERNEL_DIR = ".novita/kernels"  # relative to the instance's home
REGISTRY_FILE = "remote-kernels.json"
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
START_TIMEOUT = 60.0  # ipykernel's import can be slow on a cold disk
NO_IPYKERNEL = 3

# $1 python, $2 connection file, $3 log. ipykernel binds free ports (the file says 0) and
# writes them back into the file; nohup and setsid keep it alive when this session ends.
_LAUNCH = r"""
command -v "$1" >/dev/null 2>&1 || { echo "there is no $1 on the instance" >&2; exit 127; }
"$1" -c 'import ipykernel' >/dev/null 2>&1 || exit 3
if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=; fi
nohup $detach "$1" -m ipykernel_launcher -f "$2" </dev/null >"$3" 2>&1 &
echo $!
"""
# $1 pid, $2 text its command line must contain (the kernel id).
_ALIVE = r"""
if [ -r "/proc/$1/cmdline" ]; then
  tr '\0' ' ' < "/proc/$1/cmdline" | grep -q -F -e "$2" && echo alive || echo gone
elif kill -0 "$1" 2>/dev/null; then echo alive; else echo gone; fi
"""


@dataclass(frozen=True)
class KernelProcess:
    """One ipykernel on an instance. Paths are relative to the instance's home."""

    kernel_id: str
    pid: int
    python: str
    started: float

    @property
    def connection_file(self) -> str:
        return f"{KERNEL_DIR}/{self.kernel_id}.json"

    @property
    def log_file(self) -> str:
        return f"{KERNEL_DIR}/{self.kernel_id}.log"


async def _run(conn: Any, script: str, *args: str, timeout: float = 30.0) -> Any:
    return await conn.run(command_line(["sh", "-c", script, "sh", *args]), timeout=timeout)


async def launch(
    conn: Any, sftp: Any, python: str, instance_id: str, key: str | None = None
) -> KernelProcess:
    """Start a kernel on the instance (``python -m ipykernel_launcher``) and return it; its
    ports are read with ``read_ports``. ``key`` signs its messages (default: a new one)."""
    kernel_id = uuid.uuid4().hex[:16]
    await sftp.makedirs(KERNEL_DIR, exist_ok=True)
    await sftp.chmod(KERNEL_DIR, 0o700)
    info = {f"{name}_port": 0 for name in CHANNELS}
    info.update(ip="127.0.0.1", transport="tcp", signature_scheme="hmac-sha256",
                key=key or secrets.token_hex(32), kernel_name="")  # fmt: skip
    process = KernelProcess(kernel_id, 0, python, time.time())
    private = asyncssh_module().SFTPAttrs(permissions=0o600)
    async with sftp.open(process.connection_file, "w", attrs=private) as file:
        await file.write(json.dumps(info))
    done = await _run(conn, _LAUNCH, python, process.connection_file, process.log_file)
    if done.exit_status == NO_IPYKERNEL:
        raise RemoteKernelError(
            f"ipykernel is not installed for {python} on instance {instance_id}",
            instance_id=instance_id,
            kernel_id=None,
            reason="NO_IPYKERNEL",
            hint=f"Install it there once: novita.kernel(instance, install=True), or run "
            f"`{python} -m pip install ipykernel` on the instance.",
        )
    if done.exit_status != 0 or not str(done.stdout).strip().isdigit():
        said = str(done.stderr or done.stdout).strip()[-300:]
        raise RemoteKernelError(
            f"could not start a kernel on instance {instance_id}: {said or 'no reason given'}",
            instance_id=instance_id,
            kernel_id=kernel_id,
            reason="KERNEL_START_FAILED",
        )
    return KernelProcess(kernel_id, int(str(done.stdout).strip()), python, process.started)


async def install_ipykernel(conn: Any, python: str, instance_id: str) -> None:
    """``python -m pip install --user ipykernel`` on the instance (for install=True)."""
    done = await conn.run(
        command_line([python, "-m", "pip", "install", "--quiet", "--user", "ipykernel"]),
        timeout=600,
    )
    if done.exit_status != 0:
        said = str(done.stderr or done.stdout).strip()[-400:]
        raise RemoteKernelError(
            f"installing ipykernel on instance {instance_id} failed: {said}",
            instance_id=instance_id,
            reason="NO_IPYKERNEL",
        )


async def alive(conn: Any, process: KernelProcess) -> bool:
    """Whether the kernel's process still runs (its pid, with the kernel id in its command
    line, so a reused pid after a restart is not taken for it)."""
    done = await _run(conn, _ALIVE, str(process.pid), process.kernel_id)
    said = str(done.stdout or "").strip()
    if said not in ("alive", "gone"):  # the answer was lost (a connection going down)
        raise OSError(f"could not tell whether kernel {process.kernel_id} runs")
    return said == "alive"


async def log_tail(sftp: Any, process: KernelProcess, size: int = 2000) -> str:
    try:
        async with sftp.open(process.log_file, "rb") as file:
            data = await file.read()
    except (OSError, asyncssh_module().SFTPError):  # the log is a courtesy
        return ""
    return data[-size:].decode(errors="replace").strip()


async def read_ports(
    conn: Any, sftp: Any, process: KernelProcess, instance_id: str, timeout: float = START_TIMEOUT
) -> dict[str, Any]:
    """The connection info once ipykernel has written its ports back (the key included:
    it stays in memory, never on this machine's disk)."""
    deadline = time.monotonic() + timeout
    checks = 0
    while True:
        try:
            async with sftp.open(process.connection_file, "rb") as file:
                info = json.loads(await file.read())
            if all(int(info.get(f"{name}_port") or 0) > 0 for name in CHANNELS):
                return info
        except (ValueError, OSError, asyncssh_module().SFTPNoSuchFile):
            pass  # not written yet, or half written
        checks += 1
        if checks % 10 == 0 and not await alive(conn, process):
            raise _ended_at_start(process, instance_id, await log_tail(sftp, process))
        if time.monotonic() > deadline:
            raise RemoteKernelError(
                f"the kernel on instance {instance_id} did not open its ports within {timeout:g} s",
                instance_id=instance_id,
                kernel_id=process.kernel_id,
                reason="KERNEL_START_FAILED",
            )
        await asyncio.sleep(0.1)


def _ended_at_start(process: KernelProcess, instance_id: str, log: str) -> RemoteKernelError:
    return RemoteKernelError(
        f"the kernel on instance {instance_id} exited as it started"
        + (f":\n{log[-800:]}" if log else ""),
        instance_id=instance_id,
        kernel_id=process.kernel_id,
        reason="KERNEL_START_FAILED",
    )


async def stop(conn: Any, sftp: Any, process: KernelProcess, grace: float = 2.0) -> None:
    """End the kernel (TERM, then KILL after ``grace``) and remove its files."""
    script = (
        'kill -TERM "$1" 2>/dev/null; i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt "$2" ]; '
        'do sleep 0.1; i=$((i+1)); done; kill -KILL "$1" 2>/dev/null; true'
    )
    if await alive(conn, process):
        await _run(conn, script, str(process.pid), str(int(grace * 10)))
    for path in (process.connection_file, process.log_file):
        try:
            await sftp.remove(path)
        except asyncssh_module().SFTPError:  # already gone is fine
            pass


class KernelRegistry:
    """Which kernel this package started on which instance, per API URL, so a new Python
    process (a restarted notebook) finds the kernel and its variables again."""

    def __init__(self, api_url: str, directory: Path | None = None) -> None:
        self.scope = scope_of(api_url)
        self._file = JsonFile(REGISTRY_FILE, directory)

    def get(self, instance_id: str) -> KernelProcess | None:
        entry = self._file.read(self.scope).get(instance_id)
        if not isinstance(entry, dict):
            return None
        try:
            return KernelProcess(
                str(entry["kernel_id"]), int(entry["pid"]), str(entry["python"]),
                float(entry["started"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, instance_id: str, process: KernelProcess) -> None:
        self._file.update(self.scope, lambda e: e.__setitem__(instance_id, asdict(process)))

    def forget(self, instance_id: str, kernel_id: str | None = None) -> None:
        def change(entries: dict[str, Any]) -> None:
            entry = entries.get(instance_id)
            if isinstance(entry, dict) and kernel_id in (None, entry.get("kernel_id")):
                del entries[instance_id]

        if self._file.path.exists():
            self._file.update(self.scope, change)
