"""The retry policy of the instance lifecycle POSTs (start, stop, restart, delete): that they are
safe to resend is a guess no public source shows (a resent restart may restart twice, a resent
stop may answer "invalid state change" although the first one worked). So they are sent once
per attempt, and after a failure that may have reached the API the instance is read before
anything is resent: resent only when the read shows the call did not take effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import errors
from .parsing import GONE_STATUSES, parse_time
from .waiting.backoff import retry_delay

__all__ = ["ACTIONS", "send_confirmed", "took_effect"]

logger = logging.getLogger(__name__)

#: Statuses that show each action took effect (restart: also a running instance whose
#: lastStartedAt moved on since before the call).
ACTIONS: dict[str, frozenset[str]] = {
    "start": frozenset({"toStart", "starting", "running"}),
    "stop": frozenset({"toStop", "stopping", "exited"}),
    "restart": frozenset({"toRestart", "restarting"}),
    "delete": GONE_STATUSES,
}


def took_effect(
    action: str, detail: Mapping[str, Any] | None, before: Mapping[str, Any] | None = None
) -> bool | None:
    """Whether ``action`` took effect, from the instance as read afterwards (``detail``;
    None: it is gone) and, for a restart, as read before it was sent (``before``). None when
    the reads cannot tell: a running instance after a restart, without a lastStartedAt that
    moved on or stayed put."""
    if detail is None:
        return action == "delete"
    status = str(detail.get("status") or "")
    if status in ACTIONS[action]:
        return True
    if action == "restart" and status == "running":
        started = parse_time(detail.get("lastStartedAt"))
        earlier = parse_time((before or {}).get("lastStartedAt"))
        if started is None or earlier is None:
            return None
        return started > earlier
    return False


def send_confirmed(
    action: str,
    instance_id: str,
    *,
    post: Callable[[], Any],
    read: Callable[[], Mapping[str, Any]],
    attempts: int,
    base: float,
    cap: float,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send one lifecycle POST (``post`` sends it once) with at most ``attempts`` tries. A
    failure that may have reached the API (no answer, a server error) is followed by
    ``read()`` of the instance: done when the action took effect, resent when it did not,
    and raised (with a hint saying so) when the read cannot tell. A refusal after an earlier
    attempt that may have landed (the API says "invalid state") is checked the same way."""
    maybe_sent = False
    # A restart leaves the instance running as it was: only its start time can tell whether
    # it happened, so that is read before the first send.
    before = _read_before(read) if action == "restart" else None
    for attempt in range(max(1, attempts)):
        try:
            post()
            return
        except errors.NovitaError as error:
            landed = errors.may_have_applied(error) and not getattr(error, "unreachable", False)
            if landed or (maybe_sent and isinstance(error, errors.InvalidStateError)):
                effect = _check(action, instance_id, read, before)
                if effect:
                    logger.info(
                        "%s %s: took effect although its answer was lost", action, instance_id
                    )
                    return
                if effect is None:
                    error.hint = (
                        f"The {action} may have reached Novita: the instance cannot show whether "
                        f"it did, so it was not sent again (a second {action} is not harmless). "
                        "Check the instance before repeating it."
                    )
                    raise
                maybe_sent = maybe_sent or landed
            asked = errors.requested_delay(error)
            if not errors.is_transient(error) or attempt + 1 >= attempts or asked > cap:
                raise
            delay = retry_delay(attempt, base=base, cap=cap, retry_after=asked)
            logger.info(
                "%s %s: resending in %.2f s after %s", action, instance_id, delay, error.message
            )
            sleep(delay)


def _read_before(read: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The instance before a restart (None if it cannot be read: the POST will tell)."""
    try:
        return read()
    except errors.NovitaError:
        return None


def _check(
    action: str,
    instance_id: str,
    read: Callable[[], Mapping[str, Any]],
    before: Mapping[str, Any] | None,
) -> bool | None:
    """``took_effect`` from a fresh read; None when the read itself fails."""
    try:
        detail: Mapping[str, Any] | None = read()
    except errors.NotFoundError:
        detail = None
    except errors.NovitaError as error:
        logger.info("%s %s: could not read it back (%s)", action, instance_id, error.message)
        return None
    return took_effect(action, detail, before)
