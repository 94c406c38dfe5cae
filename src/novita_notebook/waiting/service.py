"""The waiting service the client composes: ``wait``, ``wait_async``, ``wait_many`` and
``watch``, given the api, the config and how to parse and resolve instances.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, ValidationError
from ..models import GONE_STATUSES, Instance
from ..validation import invalid
from .backoff import Backoff, positive_number
from .probes import Probe
from .wait import run_async, run_blocking, wait_steps
from .watcher import EventCallback, Watcher

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Config

logger = logging.getLogger(__name__)

#: The watcher's pace when neither ``interval`` nor the client's ``poll_interval`` is set.
DEFAULT_WATCH_INTERVAL = 5.0


class Waiting:
    """Waits and watchers for one client. ``api`` makes the calls; ``config`` is the client's
    settings object (changed in place by ``%config``), whose ``poll_interval`` (when set)
    paces ``watch`` and ``wait``; ``to_instance`` turns a raw answer into a handle;
    ``resolve`` looks an id or name up; ``owner`` is what placeholder handles bind to."""

    def __init__(
        self,
        *,
        api: Any,
        config: Config,
        to_instance: Callable[[dict[str, Any]], Instance],
        resolve: Callable[[str], Instance],
        owner: Any = None,
    ) -> None:
        self.api = api
        self.config = config
        self.to_instance = to_instance
        self.resolve = resolve
        self.owner = owner
        # Every watcher started here, so the client's close() can stop them all.
        self._watchers: list[Watcher] = []
        self._watchers_lock = threading.Lock()

    def stop_all(self, timeout: float = 5.0) -> int:
        """Stop every watcher this service started, and close the notifiers bound to the same
        client (``Notifier.from_client``); returns how many watchers were still running."""
        with self._watchers_lock:
            watchers, self._watchers = self._watchers, []
        running = 0
        for watcher in watchers:
            running += 1 if watcher.running else 0
            try:
                watcher.stop(timeout=timeout)
            except Exception:  # noqa: BLE001 - closing must reach every watcher
                logger.warning("could not stop %r", watcher, exc_info=True)
            notify = watcher.notify
            if notify is not None and getattr(notify, "_client", None) is self.owner:
                close = getattr(notify, "close", None)
                if callable(close):
                    try:
                        close(timeout=timeout)
                    except Exception:  # noqa: BLE001
                        logger.warning("could not close %r", notify, exc_info=True)
        return running

    def poll_interval(self) -> float | None:
        """The client's ``poll_interval`` now (None: adaptive waits, 5-s watchers)."""
        return self.config.poll_interval

    # -- wait ----------------------------------------------------------------------------------
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
        """Block until ``instance`` is ``until``; see ``Novita.wait``."""
        return run_blocking(wait_steps(self, instance, until, timeout, progress, probe, poll))

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
        """``wait`` without blocking the event loop; see ``Novita.wait_async``."""
        steps = wait_steps(self, instance, until, timeout, progress, probe, poll)
        return await run_async(steps)

    def fetch(self, instance_id: str) -> Instance:
        return self.to_instance(self.api.get_instance(instance_id))

    def subject(self, instance: Instance | str, until: str) -> Instance | str:
        """The Instance to wait on; the bare id when it is already gone and ``until`` is removed."""
        if isinstance(instance, Instance):
            if not instance.id:
                raise ValidationError("instance has no id", field="instance")
            return instance
        if not isinstance(instance, str) or not instance.strip():
            raise ValidationError(
                f"instance must be an Instance, an id or a name; got {instance!r}",
                field="instance",
            )
        try:
            return self.resolve(instance)
        except NotFoundError:
            if until == "removed":
                return instance
            raise

    # -- watch ---------------------------------------------------------------------------------
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
        """Start a Watcher on these instances (None: all); see ``Novita.watch``. Every
        argument is checked, and names resolved with one listing, before the thread starts."""
        if interval is None:
            interval = self.poll_interval() or DEFAULT_WATCH_INTERVAL
        interval = positive_number(interval, "interval")
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not 1 <= page_size <= 100
        ):
            raise ValidationError(
                f"page_size must be an integer from 1 to 100, got {page_size!r}", field="page_size"
            )
        if callable(callbacks):
            callbacks = [callbacks]
        callback_list = list(callbacks)
        for index, callback in enumerate(callback_list):
            if not callable(callback):
                raise ValidationError(
                    f"callbacks[{index}] must be callable(event), got {callback!r}",
                    field="callbacks",
                )
        if notify is not None and not callable(notify):
            raise ValidationError(f"notify must be callable(event), got {notify!r}", field="notify")
        if error_backoff is not None and not isinstance(error_backoff, Backoff):
            raise ValidationError("error_backoff must be a Backoff", field="error_backoff")
        ids = None if instances is None else self.watch_ids(instances)
        watcher = Watcher(
            self.api,
            ids,
            interval=interval,
            callbacks=callback_list,
            notify=notify,
            stop_when_terminal=bool(stop_when_terminal),
            page_size=page_size,
            error_backoff=error_backoff,
            known=[i for i in _as_list(instances) if isinstance(i, Instance)],
            to_instance=self.to_instance,
            owner=self.owner,
        )
        with self._watchers_lock:
            self._watchers = [w for w in self._watchers if w.running]
            self._watchers.append(watcher)
        return watcher.start()

    def watch_ids(self, instances: Iterable[Instance | str] | Instance | str) -> list[str]:
        """Ids of what to watch. Strings are resolved once, all together, against ONE listing
        (exact id, else the one live instance with that exact name), never one GET each."""
        items = _as_list(instances)
        for index, item in enumerate(items):
            if isinstance(item, Instance):
                if not item.id:
                    raise ValidationError(f"instances[{index}] has no id", field="instances")
            elif not isinstance(item, str) or not item.strip():
                raise ValidationError(
                    f"instances[{index}] must be an Instance, an id or a name; got {item!r}",
                    field="instances",
                )
        if not items:
            raise ValidationError(
                "instances is empty; pass None to watch all of your instances", field="instances"
            )
        listing = self.api.list_instances() if any(isinstance(i, str) for i in items) else []
        by_id = {str(raw.get("id")): raw for raw in listing}
        ids: list[str] = []
        for item in items:
            if isinstance(item, Instance):
                ids.append(item.id)
                continue
            ref = item.strip()
            if ref in by_id:
                ids.append(ref)
                continue
            named = [
                str(raw.get("id"))
                for raw in listing
                if raw.get("name") == ref and raw.get("status") not in GONE_STATUSES
            ]
            if len(named) > 1:
                raise ValidationError(
                    f"{len(named)} live instances are named {ref!r} (ids: {', '.join(named)}); "
                    "pass an id",
                    field="instances",
                )
            if not named:
                raise NotFoundError(
                    f"no instance has the id or name {ref!r}",
                    hint="novita.instances() lists them (names are matched exactly).",
                )
            ids.append(named[0])
        return ids


def _as_list(instances: Any) -> list[Any]:
    """What to watch as a list: one Instance, id or name, or an iterable of them."""
    if instances is None:
        return []
    if isinstance(instances, Instance | str):
        return [instances]
    if isinstance(instances, bytes | bytearray | Mapping) or not isinstance(instances, Iterable):
        raise invalid(
            "instances",
            "must be None (all of yours), an Instance, an id or a name, or a list of them; "
            f"got {instances!r}",
        )
    return list(instances)
