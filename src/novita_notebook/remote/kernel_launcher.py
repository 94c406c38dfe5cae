"""The process Jupyter starts for a "Novita: NAME" kernelspec: it starts an ipykernel on the
instance with the key of Jupyter's connection file and forwards Jupyter's chosen ports to it
over SSH, so Jupyter talks to the remote kernel as if it were local (interrupts arrive as
messages: the kernelspec says ``interrupt_mode: message``). It stays until the kernel ends:
a shutdown or restart from Jupyter ends the remote kernel and then this process; a dropped
connection is made again with the kernel's variables intact; when the instance stops, the
kernel's variables are gone and every further cell answers with that note and what to do.

    python -m novita_notebook.remote.kernel_launcher --instance ID --api-url URL -f FILE

The API key comes from the environment or a .env file (never from the command line).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import NovitaError
from . import activity, kernel_process
from .kernel_link import KernelLink
from .kernel_process import CHANNELS
from .kernel_standin import serve_note

log = logging.getLogger("novita_notebook.kernel_launcher")

ALIVE_EVERY = 1.0  # seconds between checks that the remote kernel still runs


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m novita_notebook.remote.kernel_launcher")
    parser.add_argument("--instance", required=True, help="the instance's id")
    parser.add_argument("--api-url", default=None, help="the API (default: NOVITA_API_URL)")
    parser.add_argument("--python", default="python3", help="the instance's Python")
    parser.add_argument("-f", dest="connection_file", required=True)
    return parser.parse_args(argv)


def _start(remote: Any, instance_id: str, info: dict[str, Any], python: str) -> KernelLink:
    """A kernel on the instance signing with Jupyter's key, its ports on Jupyter's."""
    instance = remote.instance(instance_id)
    where = f"{instance.name or instance.id} ({instance.id})"
    pool = remote.pool
    wanted = {name: int(info[f"{name}_port"]) for name in CHANNELS}

    async def start(conn: Any) -> KernelLink:
        sftp = await pool.sftp(conn, instance.id)
        process = await kernel_process.launch(conn, sftp, python, where, key=str(info["key"]))
        try:
            ports = await kernel_process.read_ports(conn, sftp, process, where)
            link = KernelLink(pool, instance.id, where, process, ports,
                              lambda: remote.status_of(instance.id),
                              lambda error: log.warning("%s", error.message))  # fmt: skip
            await link.start(conn, wanted)
        except BaseException:
            await kernel_process.stop(conn, sftp, process)
            raise
        return link

    return pool.call(instance.id, start, retry=False)


class _BusyMarks:
    """Watches the kernel's IOPub (through the forward) and marks the instance busy while a
    cell runs, so the guard's idle rule leaves it alone."""

    def __init__(self, api_url: str, link: KernelLink, info: dict[str, Any]) -> None:
        import zmq
        from jupyter_client.session import Session

        self.api_url, self.link = api_url, link
        self.key = f"kernel {link.process.kernel_id}"
        self.session = Session(key=str(info["key"]).encode())
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(f"tcp://127.0.0.1:{int(info['iopub_port'])}")

    def wait(self, seconds: float) -> None:
        if not self.socket.poll(int(seconds * 1000)):
            return
        while self.socket.poll(0):
            _, parts = self.session.feed_identities(self.socket.recv_multipart())
            try:
                msg = self.session.deserialize(parts)
            except ValueError:
                continue
            parent = msg.get("parent_header") or {}
            if msg["header"]["msg_type"] != "status" or parent.get("msg_type") != (
                "execute_request"
            ):
                continue
            if msg["content"].get("execution_state") == "busy":
                activity.mark_busy(self.api_url, self.link.instance_id, self.key,
                                   f"a Jupyter kernel is running a cell on {self.link.where}",
                                   pid=os.getpid())  # fmt: skip
            else:
                activity.mark_idle(self.api_url, self.link.instance_id, self.key)

    def close(self) -> None:
        activity.mark_idle(self.api_url, self.link.instance_id, self.key)
        self.socket.close(linger=0)
        self.context.term()


def _note(error: NovitaError) -> str:
    text = error.message
    if error.hint:
        text += f"\n{error.hint}"
    return text + "\nThen restart this kernel (Kernel > Restart) to run cells there again."


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="[novita kernel] %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    info = json.loads(Path(args.connection_file).read_text(encoding="utf-8"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts arrive as messages
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    from ..client import Novita

    try:
        client = Novita(api_url=args.api_url)
        link = _start(client.remote, args.instance, info, args.python)
    except NovitaError as error:
        log.error("%s", error)
        serve_note(info, _note(error), "KernelNotStarted")
        return 1
    pool = client.remote.pool
    marks = _BusyMarks(client.config.api_url, link, info)
    try:
        while not stopping.is_set() and link.ended is None:
            marks.wait(ALIVE_EVERY)
            if link.connected.is_set() and link.ended is None:
                try:
                    alive = pool.run_coroutine(link.check_alive(), timeout=30)
                except Exception:  # noqa: BLE001 - a shaky link: the watcher deals with it
                    continue
                # Gone: the instance stopped (say so), or Jupyter shut it down (or restarts it).
                if not alive:
                    log.info("the remote kernel's process is gone")
                    if not pool.run_coroutine(link.end_if_stopped(), timeout=30):
                        break
    finally:
        marks.close()
    ended = link.ended
    _finish(pool, link)
    if ended is not None:
        serve_note(info, _note(ended))
    client.close()
    return 0


def _finish(pool: Any, link: KernelLink) -> None:
    """Close the forwards and end the remote kernel (its files removed too)."""
    pool.run_coroutine(link.close(), timeout=10)
    if link.ended is not None:
        return

    async def end(conn: Any) -> None:
        sftp = await pool.sftp(conn, link.instance_id)
        await kernel_process.stop(conn, sftp, link.process)

    try:
        pool.call(link.instance_id, end, retry=True, timeout=30)
    except Exception as error:  # noqa: BLE001 - the instance may be gone
        log.info("could not end the remote kernel: %s", error)


if __name__ == "__main__":
    sys.exit(main())
