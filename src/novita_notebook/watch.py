"""Temporary shim while client.py composes ``waiting.Waiting``: ``WatchMixin`` delegates to it.
Everything lives in the ``waiting`` package; this module goes once the client no longer uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .models import Instance
from .waiting.backoff import Backoff
from .waiting.probes import Probe
from .waiting.service import Waiting
from .waiting.wait import WAIT_TARGETS
from .waiting.watcher import EventCallback, Watcher

__all__ = ["WAIT_TARGETS", "Backoff", "WatchMixin", "Watcher"]


class WatchMixin:
    """Novita's wait/watch methods, delegating to a ``Waiting`` service built per call."""

    @property
    def waiting(self) -> Waiting:
        client: Any = self
        return Waiting(
            api=client.api,
            config=lambda: client.config,
            to_instance=client.to_instance,
            resolve=client.resolve,
            owner=client,
        )

    def wait(
        self,
        instance: Instance | str,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """Block until ``instance`` (an Instance, id or name) is ``until`` and return it fresh.

        ``until``: ``running``; ``reachable`` (running, SSH/Jupyter components up and every
        http port answering below 500, or ``probe(instance)`` true); ``exited``; ``removed``
        (status removed or gone). Polls adaptively (``poll``: a ``Backoff`` or a fixed number
        of seconds; None: the client's ``poll_interval`` when set). Raises ``InstanceFailedError`` at once on a statusError or if the instance
        vanishes (unless waiting for ``removed``), ``TimeoutError`` with ``last_status``.
        Ctrl-C stops waiting only: the instance keeps going. ``progress``: None (live display
        in notebooks, silent elsewhere), ``"text"``, ``"silent"`` or a callable
        ``progress(instance, elapsed, phase)``. Runs on the caller's thread, starts none.
        """
        return self.waiting.wait(
            instance, until, timeout, progress=progress, probe=probe, poll=poll
        )

    async def wait_async(
        self,
        instance: Instance | str,
        until: str = "running",
        timeout: float | None = 600,
        *,
        progress: Any = None,
        probe: Probe | None = None,
        poll: Backoff | float | None = None,
    ) -> Instance:
        """``await novita.wait_async(...)``: ``wait`` without blocking the event loop (a
        notebook cell can ``await`` it; it runs on the caller's loop and never re-enters it). Same arguments and errors.

        Pauses are ``asyncio.sleep``; each HTTP call (and probe) runs in the loop's default
        executor, so cancelling the task stops the wait after the call in flight.
        """
        return await self.waiting.wait_async(
            instance, until, timeout, progress=progress, probe=probe, poll=poll
        )

    def watch(
        self,
        instances: Iterable[Instance | str] | Instance | str | None = None,
        interval: float | None = None,
        *,
        callbacks: Iterable[EventCallback] | EventCallback = (),
        notify: EventCallback | None = None,
        stop_when_terminal: bool = False,
        page_size: int = 100,
        error_backoff: Backoff | None = None,
    ) -> Watcher:
        """Watch instances in the background (a daemon thread) and return the running Watcher.

        ``instances``: None for all of your instances, or ids / names (resolved once) /
        Instances. Each tick makes one paginated list call (``page_size`` per page), never one
        GET per instance. Status changes go to ``callbacks``, to ``notify`` (e.g. a
        ``webhooks.Notifier``) and to ``watcher.events``; first sightings are events too
        (``old_status`` None). ``interval`` None uses ``poll_interval`` (else 5 s).
        """
        return self.waiting.watch(
            instances,
            interval,
            callbacks=callbacks,
            notify=notify,
            stop_when_terminal=stop_when_terminal,
            page_size=page_size,
            error_backoff=error_backoff,
        )
