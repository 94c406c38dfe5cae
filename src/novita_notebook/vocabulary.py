"""The words people read for the API's statuses and billing modes: one table that every view
(card, panel, browser, reports, progress, handout) uses; DataFrames keep the raw value.
"""

from __future__ import annotations

from .parsing import STATUS_ORDER, phase_of

__all__ = [
    "BILLING_WORDS",
    "STATUS_WORDS",
    "WORDS",
    "billing_word",
    "status_detail",
    "status_word",
    "target_word",
]

#: The words a status can read as, in lifecycle order.
WORDS: tuple[str, ...] = (
    "creating",
    "starting",
    "running",
    "stopping",
    "stopped",
    "failed",
    "deleting",
    "deleted",
)

#: The word for each phase (``parsing.phase_of``; ``failed`` and ``unknown`` stay as they are).
_PHASE_WORDS: dict[str, str] = {
    "provisioning": "creating",
    "starting": "starting",
    "running": "running",
    "stopping": "stopping",
    "stopped": "stopped",
    "removing": "deleting",
    "removed": "deleted",
}

#: Every documented API status (and ``pending``, seen live) → the word people use for it.
STATUS_WORDS: dict[str, str] = {status: _PHASE_WORDS[phase_of(status)] for status in STATUS_ORDER}

#: What the API is doing inside a word, where it says more than the word (tooltips, progress).
_DETAILS: dict[str, str] = {
    "pending": "queued",
    "toCreate": "queued",
    "pulling": "pulling the image",
    "toStart": "queued",
    "toRestart": "restarting",
    "restarting": "restarting",
    "toReset": "resetting",
    "resetting": "resetting",
    "migrating": "moving to another machine",
    "toStop": "queued",
    "freezing": "freezing",
    "toRemove": "queued",
}

#: Billing modes (the API's ``billingMode`` / ``billingMethod``) → words.
BILLING_WORDS: dict[str, str] = {"onDemand": "on demand", "spot": "spot", "monthly": "monthly"}


def status_word(status: str | None, *, failed: bool = False) -> str:
    """``toCreate`` → ``creating``, ``exited`` → ``stopped``, ``removing`` → ``deleting``; a
    failed instance (a statusError) is ``failed`` whatever its status; None → ``unknown``; a
    status the API adds later is shown as it comes."""
    if failed:
        return "failed"
    if not status:
        return "unknown"
    return STATUS_WORDS.get(status, status)


def status_detail(status: str | None) -> str:
    """The step within the word (``pulling`` → ``pulling the image``); "" when the word says
    it all."""
    return _DETAILS.get(status or "", "")


#: A wait's target (``wait(until=...)``) as the state it means.
_TARGET_WORDS = {"exited": "stopped", "removed": "deleted"}


def target_word(until: str) -> str:
    """``exited`` → ``stopped``, ``removed`` → ``deleted``; running and reachable as they are."""
    return _TARGET_WORDS.get(until, until)


def billing_word(mode: str | None) -> str:
    """``onDemand`` → ``on demand``; spot and monthly as they are; None → ``on demand`` (the
    API's default)."""
    if not mode:
        return BILLING_WORDS["onDemand"]
    return BILLING_WORDS.get(mode, mode)
