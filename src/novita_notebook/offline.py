"""``Novita.sandbox()``: an in-process sandbox cloud started on loopback and a client bound
to it, which stops the sandbox when it closes.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .options import SESSION
from .validation import invalid

__all__ = ["sandbox_client"]

C = TypeVar("C")


def sandbox_client(cls: type[C], speed: Any, seed: Any, client_kwargs: dict[str, Any]) -> C:
    """A ``cls`` client on a fresh sandbox (speed: its clock's speed-up; seed: its catalog's);
    the sandbox is stopped again if the client cannot be made."""
    for name in ("api_key", "api_url"):
        if name in client_kwargs:
            raise invalid(name, "cannot be given to Novita.sandbox(); the sandbox provides it")
    speed = SESSION["sandbox_speed"].parse(speed, "speed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid("seed", f"must be an integer, got {seed!r}")
    from .sandbox import Sandbox

    server = Sandbox(speed=speed, seed=0 if seed is None else seed)
    server.start()
    try:
        client = cls(api_key=server.api_key, api_url=server.url, **client_kwargs)
    except BaseException:
        server.stop()
        raise
    client.sandbox_server = server  # type: ignore[attr-defined]
    return client
