"""Local port forwards over an instance's SSH connection: one listener on this machine's
loopback per remote port, as ``ssh -L`` makes them. A listener lives as long as its connection;
after a reconnect new ones are made (``Forwards.open`` again).

A refused forward only shows when a channel is opened through it, so ``open`` first opens one
itself: an SSH server that refuses forwarding is reported at once, in words.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from ..errors import ForwardingRefusedError, RemoteKernelError
from .ssh import asyncssh_module

__all__ = ["Forwards", "check_forwarding"]

LOOPBACK = "127.0.0.1"


async def check_forwarding(
    conn: Any, port: int, instance_id: str, kernel_id: str | None = None
) -> None:
    """Open one forwarded channel to ``port`` on the instance and close it again. Raises
    ForwardingRefusedError when the SSH server refuses forwarding, RemoteKernelError when
    nothing listens there."""
    asyncssh = asyncssh_module()
    try:
        _, writer = await conn.open_connection(LOOPBACK, port)
    except asyncssh.ChannelOpenError as error:
        if error.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
            raise ForwardingRefusedError(
                f"instance {instance_id}'s SSH server refuses port forwarding "
                f"({error.reason or 'administratively prohibited'}), and a remote kernel "
                "talks to this machine through forwarded ports",
                instance_id=instance_id,
                kernel_id=kernel_id,
                reason="FORWARDING_REFUSED",
            ) from None
        raise RemoteKernelError(
            f"nothing answers on the kernel's port {port} on instance {instance_id} "
            f"({error.reason or 'connect failed'})",
            instance_id=instance_id,
            kernel_id=kernel_id,
            reason="KERNEL_GONE",
        ) from None
    writer.close()


class Forwards:
    """Listeners on 127.0.0.1 forwarding to ports on the instance's loopback."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self._listeners: list[Any] = []
        self.local: dict[str, int] = {}

    async def open(
        self,
        conn: Any,
        remote: Mapping[str, int],
        wanted: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Forward each named remote port; returns name -> local port. ``wanted`` asks for
        particular local ports (a launcher's, which Jupyter chose); others are free ones."""
        await self.close()
        listeners = []
        try:
            for name, port in remote.items():
                local = (wanted or {}).get(name, 0)
                listener = await conn.forward_local_port(LOOPBACK, local, LOOPBACK, port)
                listeners.append((name, listener))
        except BaseException:
            for _, listener in listeners:
                listener.close()
            raise
        self._listeners = [listener for _, listener in listeners]
        self.local = {name: listener.get_port() for name, listener in listeners}
        return dict(self.local)

    async def close(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()
        for listener in listeners:
            with contextlib.suppress(Exception):
                await listener.wait_closed()
