"""The ``Sandbox`` object: runs the sandbox's HTTP server in a background thread, its
instances' hosts (SSH, disks, processes: machines.py), and offers the control operations
(reset, stock, faults, switches, utilisation, spot notices, SSH faults) in Python.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from .faults import FAULT_FIELDS, Faults, RequestLog
from .machines import Machines
from .routes import API_PREFIX
from .server import Server
from .validate import ApiError
from .world import Switches, World

DEFAULT_API_KEY = "sk_sandbox_novita_notebook"
_SNAKE_FAULTS = {
    "error_rate": "errorRate",
    "latency_ms": "latencyMs",
    "rate_limit_per_minute": "rateLimitPerMinute",
    "drop_rate": "dropRate",
    "ambiguous_create_rate": "ambiguousCreateRate",
    "list_drop_rate": "listDropRate",
    "stop_ignore_rate": "stopIgnoreRate",
    "ambiguous_action_rate": "ambiguousActionRate",
}


def _camel(name: str) -> str:
    """``page_base`` → ``pageBase`` (switches are camelCase on the wire; both spellings work)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _snake_message(message: str, spelled: dict[str, str]) -> str:
    """A switch error as the caller spelled the argument."""
    name, colon, rest = message.partition(":")
    return spelled.get(name, name) + colon + rest if colon else message


class Sandbox:
    """An offline Novita GPU cloud on loopback. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        speed: float = 1.0,
        seed: int = 0,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        page_base: int = 0,
        not_found_status: int = 404,
        phase_jitter: float = 0.0,
        spot_notice_rate: float = 0.0,
        pending_rate: float = 1 / 3,
        switches: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise ValueError("speed: must be a number > 0")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key: must be a non-empty string")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port: must be an integer between 0 and 65535")
        self.host = host
        self._port = port
        self._api_key = api_key or DEFAULT_API_KEY
        values = {
            "pageBase": page_base,
            "notFoundStatus": not_found_status,
            "phaseJitter": phase_jitter,
            "spotNoticeRate": spot_notice_rate,
            "pendingRate": pending_rate,
        }
        spelled = {_camel(key): key for key in switches or {}}
        values.update({_camel(key): value for key, value in (switches or {}).items()})
        initial = Switches()
        try:
            initial.update(values)
        except ApiError as error:
            spelled = {**{k: _snake(k) for k in values if k not in spelled}, **spelled}
            raise ValueError(_snake_message(error.message, spelled)) from None
        self.world = World(seed=seed, speed=float(speed), switches=initial)
        self.machines = Machines(self.world, gpu_url=lambda: self.url + "/_sandbox/gpu")
        self.world.ssh_port_for = self.machines.port_for
        self.faults = Faults(seed)
        self.log = RequestLog()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # -- identity ------------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def port(self) -> int:
        return self._port

    @property
    def speed(self) -> float:
        return self.world.speed

    @property
    def seed(self) -> int:
        return self.world.seed

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def running(self) -> bool:
        return self._server is not None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {self.url} {state} speed={self.speed:g} seed={self.seed}>"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        with self._lifecycle:
            if self._server is not None:
                return self
            server = Server((self.host, self._port), self)
            self._port = server.server_address[1]
            self.world.base_url = self.url
            thread = threading.Thread(
                target=server.serve_forever,
                # stop() waits up to one poll interval: keep it short so per-test teardown is cheap.
                kwargs={"poll_interval": 0.01},
                name=f"novita-sandbox-{self._port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; every instance's processes, SSH ports and disks end too."""
        self._stop_serving()
        self.machines.close()

    def _stop_serving(self) -> None:
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            server.shutdown()
            server.server_close()
            server.close_connections()
            if thread is not None:
                thread.join(timeout=2.0)

    def restart(self, downtime: float = 0.5, wait: bool = True) -> None:
        """Stop serving, keep the state, serve again on the same port after ``downtime``
        seconds. ``wait=False`` returns at once and comes back up in the background."""
        if downtime < 0:
            raise ValueError("downtime: must be >= 0")
        self._stop_serving()  # the API goes away; the instances' hosts do not

        def come_back() -> None:
            time.sleep(downtime)
            deadline = time.monotonic() + 5.0
            while True:
                try:
                    self.start()
                    return
                except OSError:  # the port may linger briefly after close
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        if wait:
            come_back()
        else:
            threading.Thread(target=come_back, name="novita-sandbox-restart", daemon=True).start()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control (same effect as the /_sandbox endpoints) --------------------------------------
    def reset(self) -> None:
        """Back to the seeded initial state: no instances, auths or private templates, the
        initial stock, no faults. The request log is kept (see clear_requests)."""
        self.machines.close()
        self.world.reset()
        self.faults.configure({})

    def set_stock(
        self, stock: int, cluster_id: str | None = None, product_id: str | None = None
    ) -> int:
        """Set the available GPUs of matching offers (None = all); returns how many matched."""
        try:
            with self.world.lock:
                return self.world.set_stock(stock, cluster_id, product_id)
        except ApiError as error:
            raise ValueError(error.message) from None

    def set_faults(self, **settings: float) -> dict[str, float]:
        """Replace the fault settings: errorRate, latencyMs, rateLimitPerMinute, dropRate,
        ambiguousCreateRate (snake_case accepted too). No argument clears them."""
        clean = {_SNAKE_FAULTS.get(k, k): v for k, v in settings.items()}
        try:
            return self.faults.configure(clean)
        except ApiError as error:
            raise ValueError(f"{error.message} (known: {', '.join(FAULT_FIELDS)})") from None

    def clear_faults(self) -> None:
        self.faults.configure({})

    def configure(self, **switches: Any) -> dict[str, Any]:
        """Change behaviour switches now (same as POST /_sandbox/config), by their names in
        docs/sandbox.md, camelCase or snake_case (``page_base=1``, ``clusterNames="city"``).
        Returns them all. ``reset()`` restores the values given to the constructor."""
        camel = {_camel(k): v for k, v in switches.items()}
        try:
            with self.world.lock:
                self.world.switches.update(camel)
                return self.world.switches.as_dict()
        except ApiError as error:
            spelled = {_camel(k): k for k in switches}
            raise ValueError(_snake_message(error.message, spelled)) from None

    @property
    def config(self) -> dict[str, Any]:
        with self.world.lock:
            return self.world.switches.as_dict()

    def set_utilization(self, instance_id: str, gpu: float | None) -> None:
        """Pin an instance's GPU utilisation (0–100 %) from now on; None = default pattern."""
        if gpu is not None and (isinstance(gpu, bool) or not 0 <= gpu <= 100):
            raise ValueError("gpu: must be a number between 0 and 100, or None")
        try:
            with self.world.lock:
                self.world.set_utilization(instance_id, gpu)
        except ApiError as error:
            raise ValueError(error.message) from None

    def spot_reclaim(self, instance_id: str, notice_seconds: float = 3600.0) -> str:
        """Send a spot instance a reclaim notice now; reclaiming starts ``notice_seconds``
        (sandbox seconds, divided by speed) later. Returns spotReclaimTime."""
        if isinstance(notice_seconds, bool) or not notice_seconds >= 0:
            raise ValueError("notice_seconds: must be a number >= 0")
        try:
            with self.world.lock:
                record = self.world.reclaim_notice(instance_id, float(notice_seconds))
                return str(int(record.spot_reclaim_time or 0))
        except ApiError as error:
            raise ValueError(error.message) from None

    # -- the instances' hosts ------------------------------------------------------------------
    def sever_ssh(self, instance_id: str | None = None) -> int:
        """Cut the open SSH connections of one instance (or of all) without a goodbye, as a
        dropped network would. Returns how many were cut; the processes go on."""
        return self.machines.sever(instance_id)

    def refuse_ssh(self, count: int) -> None:
        """Cut the next ``count`` SSH connections as soon as they are made (0 clears)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count: must be an integer >= 0")
        self.machines.refuse(count)

    def allow_forwarding(self, allowed: bool = True) -> None:
        """Switch SSH local port forwarding on or off for every instance (``reset()`` and
        ``stop()`` switch it back on). Off, the servers refuse each forwarded channel as
        OpenSSH's ``AllowTcpForwarding no`` does."""
        if not isinstance(allowed, bool):
            raise ValueError("allowed: must be True or False")
        self.machines.allow_forwarding(allowed)

    def rotate_host_key(self, instance_id: str) -> str:
        """Give an instance a new SSH host key; returns its SHA256 fingerprint."""
        try:
            return self.machines.rotate_host_key(instance_id)
        except ApiError as error:
            raise ValueError(error.message) from None

    def host_key_fingerprint(self, instance_id: str) -> str | None:
        """The SHA256 fingerprint of the instance's host key (None before its port opens)."""
        return self.machines.host_key_fingerprint(instance_id)

    def instance_home(self, instance_id: str) -> str:
        """The directory on this machine that is the instance's home (``/root`` inside)."""
        return self.machines.home(instance_id)

    def requests(self) -> list[dict[str, Any]]:
        return self.log.entries()

    def clear_requests(self) -> None:
        self.log.clear()
