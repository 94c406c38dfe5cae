"""Which local processes belong to a sandbox instance, and ending them.

Every process an instance's SSH server starts carries ``NOVITA_SANDBOX_INSTANCE`` =
``<sandbox token>/<instance id>/<run generation>`` in its environment, and its children
inherit it, detached ones included. On Linux, ``/proc`` finds them all; elsewhere only the
process groups the server started are known. A process that clears its environment escapes:
the sandbox is an emulator, not a jail.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

TAG = "NOVITA_SANDBOX_INSTANCE"
_PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tag(token: str, instance_id: str, generation: str) -> str:
    return f"{token}/{instance_id}/{generation}"


def tagged(prefix: str) -> dict[int, str]:
    """pid -> tag of every live process whose tag starts with ``prefix`` (Linux only)."""
    found: dict[int, str] = {}
    if not _PROC.is_dir():
        return found
    needle = f"{TAG}={prefix}".encode()
    me = os.getpid()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                found[int(entry.name)] = item.split(b"=", 1)[1].decode(errors="replace")
                break
    return found


def signal_processes(pids: list[int], groups: list[int], sig: int) -> None:
    """Send ``sig`` to processes and process groups; vanished ones are skipped."""
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def compute_apps(prefix: str) -> list[dict[str, object]]:
    """The instance's Python processes, shown by its nvidia-smi as GPU compute processes
    (the sandbox has no GPU; a Python process is what would be using it)."""
    apps = []
    for pid in sorted(tagged(prefix)):
        try:
            command = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
            pages = int((_PROC / str(pid) / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        name = os.path.basename(command[0].decode(errors="replace")) if command else ""
        if not name.startswith("python") or any(b"nvidia_smi" in part for part in command):
            continue
        apps.append({"pid": pid, "name": name, "usedMemoryMiB": max(1, pages * _PAGE >> 20)})
    return apps


TERMINATE = signal.SIGTERM
KILL = signal.SIGKILL
