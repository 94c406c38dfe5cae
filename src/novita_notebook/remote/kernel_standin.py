"""What a "Novita: NAME" kernel answers once its instance has stopped: the remote kernel is
gone, so the launcher binds Jupyter's ports itself and answers every cell with the reason and
what to do, instead of dying and leaving the notebook to say only "kernel died, restarting".
It speaks just enough of the Jupyter protocol for that (kernel_info, execute, is_complete,
complete, inspect, comm_info, interrupt, shutdown, heartbeat), through jupyter_client's Session.
"""

from __future__ import annotations

import platform
import time
from typing import Any

__all__ = ["serve_note"]

JOIN_PAUSE = 0.3

_EMPTY_REPLIES: dict[str, dict[str, Any]] = {
    "is_complete_request": {"status": "complete"},
    "complete_request": {"status": "ok", "matches": [], "cursor_start": 0, "cursor_end": 0,
                         "metadata": {}},
    "inspect_request": {"status": "ok", "found": False, "data": {}, "metadata": {}},
    "comm_info_request": {"status": "ok", "comms": {}},
    "history_request": {"status": "ok", "history": []},
    "interrupt_request": {"status": "ok"},
}  # fmt: skip


def _kernel_info(note: str) -> dict[str, Any]:
    return {
        "status": "ok", "protocol_version": "5.3", "implementation": "novita-standin",
        "implementation_version": "1", "banner": note,
        "language_info": {"name": "python", "version": platform.python_version(),
                          "mimetype": "text/x-python", "file_extension": ".py"},
    }  # fmt: skip


def serve_note(info: dict[str, Any], note: str, ename: str = "InstanceStopped") -> None:
    """Answer on the ports of ``info`` (a connection file's content) until a shutdown
    request: every cell fails with ``note``."""
    import zmq
    from jupyter_client.session import Session

    session = Session(key=str(info["key"]).encode(), signature_scheme=info.get(
        "signature_scheme", "hmac-sha256"))  # fmt: skip
    context = zmq.Context()
    url = f"tcp://{info.get('ip', '127.0.0.1')}:%d"
    sockets = {}
    for name, kind in (("shell", zmq.ROUTER), ("control", zmq.ROUTER), ("stdin", zmq.ROUTER),
                       ("iopub", zmq.PUB), ("hb", zmq.REP)):  # fmt: skip
        sock = context.socket(kind)
        sock.linger = 500
        sock.bind(url % int(info[f"{name}_port"]))
        sockets[name] = sock
    time.sleep(JOIN_PAUSE)  # let Jupyter's IOPub subscription reach us before we publish
    poller = zmq.Poller()
    for name in ("shell", "control", "hb"):
        poller.register(sockets[name], zmq.POLLIN)
    count = 0
    try:
        while True:
            for sock, _ in poller.poll(1000):
                if sock is sockets["hb"]:
                    sock.send(sock.recv())
                    continue
                idents, msg = session.feed_identities(sock.recv_multipart())
                try:
                    request = session.deserialize(msg)
                except ValueError:  # a bad signature: not from our Jupyter
                    continue
                kind = request["header"]["msg_type"]
                reply_type = kind.replace("_request", "_reply")
                session.send(sockets["iopub"], "status", {"execution_state": "busy"}, request)
                if kind == "kernel_info_request":
                    content = _kernel_info(note)
                elif kind == "execute_request":
                    count += 1
                    error = {"ename": ename, "evalue": note, "traceback": [note]}
                    session.send(sockets["iopub"], "error", error, request)
                    content = {"status": "error", "execution_count": count, **error}
                elif kind == "shutdown_request":
                    session.send(sock, reply_type, {"status": "ok", **request["content"]},
                                 request, ident=idents)  # fmt: skip
                    return
                else:
                    content = _EMPTY_REPLIES.get(kind, {"status": "ok"})
                session.send(sock, reply_type, content, request, ident=idents)
                session.send(sockets["iopub"], "status", {"execution_state": "idle"}, request)
    finally:
        for sock in sockets.values():
            sock.close(linger=200)
        context.term()
