"""Waiting and watching: the backoff schedule, blocking and async waits, probes and watchers.
Names load on first use, so ``waiting.backoff`` stays a leaf-only import for http and others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Backoff": "backoff",
    "retry_delay": "backoff",
    "Waiting": "service",
    "Watcher": "watcher",
    "HttpProbe": "probes",
    "Probe": "probes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
