"""The hosts behind a sandbox's instances: each serves SSH on its own loopback port (opened
when its details are first read; served, from the first connection to any of them, on ONE
asyncio loop thread for the whole sandbox; until then no thread runs for them),
runs commands as local processes in its own directory, and follows the lifecycle: a stop, a
restart, a migration or a reclaim ends its processes and cuts its connections; a delete
also removes its disk; a disk stopped longer than keepDataDay is empty at the next start.

Statuses are computed lazily, so a reaper looks every tenth of a second while an instance has
processes or connections (every half second otherwise) and applies what changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import secrets
import select
import shutil
import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import processes
from .disks import Disks, DiskSpec
from .records import InstanceRecord
from .views import KEEP_DATA_DAYS, REMOVAL
from .world import World

BUSY_REAP_SECONDS = 0.1
IDLE_REAP_SECONDS = 0.5
KILL_GRACE_SECONDS = 1.0  # SIGTERM first, as a container stop does, then SIGKILL
_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Launch:
    """How to start one command on an instance."""

    instance_id: str
    generation: str
    argv: list[str]
    cwd: str
    env: dict[str, str]
    terminal: str | None


@dataclass
class _Listener:
    sock: socket.socket
    port: int
    acceptor: Any = None
    served: bool = False
    closed: bool = False


def generation(record: InstanceRecord) -> str | None:
    """Which run of the instance this is (changes at every start); None when not running."""
    if record.status != "running" or record.running_since is None:
        return None
    return f"{record.running_since:.6f}"


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


class Machines:
    """Every instance's SSH server, disk and processes, for one sandbox."""

    def __init__(self, world: World, gpu_url: Callable[[], str]) -> None:
        self.world = world
        self.gpu_url = gpu_url
        self.disks = Disks()
        self.token = secrets.token_hex(6)
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listeners: dict[str, _Listener] = {}
        self._host_keys: dict[str, Any] = {}
        self._connections: dict[str, set[Any]] = {}
        self._running: dict[str, str] = {}  # instance id -> generation that started processes
        self._groups: dict[str, dict[int, str]] = {}  # instance id -> {group: generation}
        self._refuse = 0
        self.forwarding_allowed = True
        # The sessions' subprocesses, closed with the loop (so none is collected after it).
        self._children: weakref.WeakSet[asyncio.subprocess.Process] = weakref.WeakSet()

    # -- the port (called from the instance's detail view, world lock held) ---------------------
    def port_for(self, record: InstanceRecord) -> int:
        """The instance's SSH port, listening from now until the instance is gone (the
        system queues connections until it is served)."""
        with self._lock:
            listener = self._listeners.get(record.id)
            if listener is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                sock.listen(128)
                listener = _Listener(sock, sock.getsockname()[1])
                self._listeners[record.id] = listener
                if self._loop is not None:
                    self._start_serving(record.id, listener)
            return listener.port

    def serve_waiting(self) -> None:
        """Serve the ports a connection is waiting on (called often by the HTTP server's
        thread; cheap when there is nothing to do)."""
        with self._lock:
            waiting = {
                listener.sock: (key, listener)
                for key, listener in self._listeners.items()
                if not listener.served
            }
        if not waiting:
            return
        try:
            readable, _, _ = select.select(list(waiting), [], [], 0)
        except (OSError, ValueError):  # a socket closed meanwhile
            return
        with self._lock:
            for sock in readable:
                instance_id, listener = waiting[sock]
                if not listener.served and not listener.closed:
                    self._start_serving(instance_id, listener)

    def _start_serving(self, instance_id: str, listener: _Listener) -> None:
        listener.served = True
        loop = self._ensure_loop()
        loop.call_soon_threadsafe(self._serve, instance_id, listener)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            loop.set_default_executor(
                concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="novita-sandbox-ssh")
            )
            thread = threading.Thread(
                target=loop.run_forever, name="novita-sandbox-ssh", daemon=True
            )
            self._loop, self._thread = loop, thread
            thread.start()
            asyncio.run_coroutine_threadsafe(self._reap_forever(), loop)
        return self._loop

    def _serve(self, instance_id: str, listener: _Listener) -> None:
        from . import ssh_server

        async def start() -> None:
            key = self._host_keys.get(instance_id)
            if key is None:
                key = self._host_keys[instance_id] = ssh_server.new_host_key()
            acceptor = await ssh_server.listen(self, instance_id, listener.sock, key)
            if listener.closed:
                acceptor.close()
            else:
                listener.acceptor = acceptor

        asyncio.ensure_future(start())

    # -- what the SSH server asks ------------------------------------------------------------
    def _look(self, instance_id: str) -> InstanceRecord | None:
        """The record advanced to now (world lock held), without the world's seeded draws."""
        record = self.world.instances.get(instance_id)
        if record is not None:
            record.settle(self.world.clock())
        return record

    def status(self, instance_id: str) -> str | None:
        with self.world.lock:
            record = self._look(instance_id)
            return record.status if record is not None else None

    def password_ok(self, instance_id: str, password: str) -> bool:
        with self.world.lock:
            record = self._look(instance_id)
            if record is None or record.status != "running":
                return False
            expected = record.ssh_password
        return hmac.compare_digest(password.encode(), expected.encode())

    def connected(self, instance_id: str, conn: Any) -> None:
        with self._lock:
            refuse = self._refuse > 0
            if refuse:
                self._refuse -= 1
            else:
                self._connections.setdefault(instance_id, set()).add(conn)
        if refuse:
            conn.abort()

    def disconnected(self, instance_id: str, conn: Any) -> None:
        with self._lock:
            self._connections.get(instance_id, set()).discard(conn)

    def _disk_spec(self, record: InstanceRecord) -> DiskSpec:
        return DiskSpec(
            instance_id=record.id,
            mounts=tuple((m["Id"], m["mountPoint"]) for m in record.network_storages),
            started_at=record.last_started_at,
            stopped_at=record.last_stopped_at,
            keep_seconds=self.world.scaled(KEEP_DATA_DAYS * 86400),
            gpu_url=self.gpu_url(),
        )

    def _running_record(self, instance_id: str) -> tuple[InstanceRecord, str]:
        record = self._look(instance_id)
        run = generation(record) if record is not None else None
        if record is None or run is None:
            status = record.status if record is not None else "gone"
            raise LookupError(f"instance {instance_id} is not running (status: {status})")
        return record, run

    def launch(
        self, instance_id: str, command: str | None, sent_env: dict[str, str], terminal: str | None
    ) -> Launch:
        """How to run ``command`` (None: a login shell) now; LookupError when not running."""
        with self.world.lock:
            record, run = self._running_record(instance_id)
            spec = self._disk_spec(record)
            instance_env = {e["key"]: e["value"] for e in record.envs if e.get("key")}
        home = str(self.disks.prepare(spec))
        env = {
            **instance_env,
            "HOME": home,
            "USER": "root",
            "LOGNAME": "root",
            "SHELL": _shell(),
            "PATH": f"{self.disks.bin_dir(instance_id)}:{_BASE_PATH}",
            "PWD": home,
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.disks.root(instance_id) / "tmp"),
            "NVIDIA_VISIBLE_DEVICES": "all",
            **sent_env,
            processes.TAG: processes.tag(self.token, instance_id, run),
        }
        if terminal:
            env["TERM"] = terminal
        shell = env["SHELL"]
        argv = [shell, "-c", command] if command is not None else [shell, "-l"]
        return Launch(instance_id, run, argv, home, env, terminal)

    def spawned(self, launch: Launch, child: asyncio.subprocess.Process) -> None:
        with self._lock:
            self._running[launch.instance_id] = launch.generation
            self._groups.setdefault(launch.instance_id, {})[child.pid] = launch.generation
            self._children.add(child)

    def sftp_paths(self, instance_id: str) -> tuple[str, str]:
        """(root, home inside it) for SFTP; the disk is made ready first."""
        with self.world.lock:
            record, _ = self._running_record(instance_id)
            spec = self._disk_spec(record)
        self.disks.prepare(spec)
        return str(self.disks.root(instance_id)), "/root"

    def gpu_reading(self, instance_id: str) -> dict[str, Any]:
        from .gpus import reading

        apps = processes.compute_apps(f"{self.token}/{instance_id}/")
        with self.world.lock:
            record = self.world.find(instance_id)
            return reading(self.world, record, apps)

    # -- the lifecycle ------------------------------------------------------------------------
    async def _reap_forever(self) -> None:
        while True:
            try:
                busy = self._reap_once()
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad look
                busy = True
            await asyncio.sleep(BUSY_REAP_SECONDS if busy else IDLE_REAP_SECONDS)

    def _reap_once(self) -> bool:
        """Apply lifecycle changes; True while anything needs a quick eye."""
        with self._lock:
            watched = set(self._listeners) | set(self._running) | set(self._connections)
        with self.world.lock:
            looks = {}
            for instance_id in watched:
                record = self._look(instance_id)
                looks[instance_id] = (
                    record.status if record is not None else None,
                    generation(record) if record is not None else None,
                )
            storages = set(self.world.storages)
        for instance_id, (status, run) in looks.items():
            if run is None:
                self.sever(instance_id)
            with self._lock:
                started = self._running.get(instance_id)
            if started is not None and started != run:
                self._end_processes(instance_id, keep=run)
            if status is None or status in REMOVAL:
                self._forget(instance_id)
        for storage_id in self.disks.volumes():
            if storage_id not in storages:
                self.disks.remove_volume(storage_id)
        with self._lock:
            return bool(self._running or any(self._connections.values()))

    def _end_processes(self, instance_id: str, keep: str | None) -> None:
        """SIGTERM the instance's processes of earlier runs, SIGKILL them a moment later."""
        with self._lock:
            started = self._groups.get(instance_id, {})
            groups = [group for group, run in started.items() if run != keep]
            for group in groups:
                del started[group]
            if keep is None:
                self._running.pop(instance_id, None)
            else:
                self._running[instance_id] = keep
        prefix = f"{self.token}/{instance_id}/"
        current = processes.tag(self.token, instance_id, keep) if keep else None
        pids = [pid for pid, tag in processes.tagged(prefix).items() if tag != current]
        processes.signal_processes(pids, groups, processes.TERMINATE)
        if self._loop is not None and (pids or groups):
            self._loop.call_later(
                KILL_GRACE_SECONDS, processes.signal_processes, pids, groups, processes.KILL
            )

    def _forget(self, instance_id: str) -> None:
        """The instance is deleted: close its port, remove its disk and host key."""
        self._end_processes(instance_id, keep=None)
        self.sever(instance_id)
        with self._lock:
            listener = self._listeners.pop(instance_id, None)
            self._host_keys.pop(instance_id, None)
            self._connections.pop(instance_id, None)
        if listener is not None:
            self._close_listener(listener)
        self.disks.wipe(instance_id)

    def _close_listener(self, listener: _Listener) -> None:
        listener.closed = True
        if listener.acceptor is not None:
            listener.acceptor.close()
        with contextlib.suppress(OSError):
            listener.sock.close()

    # -- control ------------------------------------------------------------------------------
    def sever(self, instance_id: str | None = None) -> int:
        """Cut open SSH connections (one instance's, or all) without a goodbye."""
        with self._lock:
            if instance_id is None:
                conns = [c for group in self._connections.values() for c in group]
            else:
                conns = list(self._connections.get(instance_id, ()))
        if conns and self._loop is not None:
            for conn in conns:
                self._loop.call_soon_threadsafe(conn.abort)
        return len(conns)

    def refuse(self, count: int) -> None:
        """The next ``count`` SSH connections are cut as soon as they are made."""
        with self._lock:
            self._refuse = count

    def allow_forwarding(self, allowed: bool) -> None:
        """Switch local port forwarding on or off for every instance (off: a channel to
        forward is refused as administratively prohibited, as ``AllowTcpForwarding no``)."""
        with self._lock:
            self.forwarding_allowed = bool(allowed)

    def rotate_host_key(self, instance_id: str) -> str:
        """Give the instance a new host key (as a rebuilt host would have); new connections
        see it. Returns its SHA256 fingerprint."""
        from . import ssh_server

        with self.world.lock:
            self.world.find(instance_id)
        key = ssh_server.new_host_key()
        with self._lock:
            self._host_keys[instance_id] = key
            listener = self._listeners.get(instance_id)
        if listener is not None and listener.acceptor is not None and self._loop is not None:
            acceptor = listener.acceptor
            self._loop.call_soon_threadsafe(lambda: acceptor.update(server_host_keys=[key]))
        return ssh_server.fingerprint(key)

    def host_key_fingerprint(self, instance_id: str) -> str | None:
        from . import ssh_server

        with self._lock:
            key = self._host_keys.get(instance_id)
        return ssh_server.fingerprint(key) if key is not None else None

    def home(self, instance_id: str) -> str:
        """Where the instance's home is on this machine (for tests and curious users)."""
        return str(self.disks.home(instance_id))

    def close(self) -> None:
        """End every process, close every port, remove every disk. The next port opened
        starts afresh."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            listeners = list(self._listeners.values())
            groups = [g for started in self._groups.values() for g in started]
            conns = [c for group in self._connections.values() for c in group]
            self._listeners.clear()
            self._groups.clear()
            self._running.clear()
            self._connections.clear()
            self._host_keys.clear()
            self._refuse = 0
            self.forwarding_allowed = True
        pids = list(processes.tagged(f"{self.token}/")) if groups or conns else []
        processes.signal_processes(pids, groups, processes.KILL)
        if loop is not None:
            children = list(self._children)

            async def shut() -> None:
                for conn in conns:
                    conn.abort()
                for listener in listeners:
                    self._close_listener(listener)
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()
                for child in children:
                    transport = getattr(child, "_transport", None)
                    if transport is not None:
                        transport.close()
                await asyncio.sleep(0.01)  # the transports' closing callbacks run here

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=5)
            if not loop.is_running():
                loop.close()
        else:
            for listener in listeners:
                self._close_listener(listener)
        self.disks.close()
