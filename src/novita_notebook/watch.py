"""Waiting and watching: adaptive blocking waits, readiness probes and background watchers.
"""

from __future__ import annotations


class WatchMixin:
    """Methods of Novita for waiting on and watching instances."""
