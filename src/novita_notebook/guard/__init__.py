"""The guard ("no forgotten GPU"): rules that bound an instance's life, a ledger store with
action claims, a pure policy, an enforcer and a detached guard process that survives the kernel.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .rules import GuardRules, autostart_enabled, parse_deadline, parse_duration, rules_from_env

__all__ = [
    "GuardRules",
    "autostart_enabled",
    "parse_deadline",
    "parse_duration",
    "rules_from_env",
    "GuardStore",
    "GuardRecord",
    "InstanceState",
    "Plan",
    "PlannedAction",
    "decide",
    "GuardBackend",
    "Enforcer",
    "read_gpu_utilisation",
    "HttpGuardBackend",
    "ClientGuardBackend",
    "KernelGuard",
    "ensure_guard_running",
    "guard_status",
    "run_guard",
    "ensure_guard_in_background",
]

# The rest loads on first use: importing the package for GuardRules stays cheap.
_LAZY = {
    "GuardStore": "store",
    "GuardRecord": "store",
    "InstanceState": "policy",
    "Plan": "policy",
    "PlannedAction": "policy",
    "decide": "policy",
    "GuardBackend": "enforcer",
    "Enforcer": "enforcer",
    "read_gpu_utilisation": "enforcer",
    "HttpGuardBackend": "backend",
    "ClientGuardBackend": "kernel",
    "KernelGuard": "kernel",
    "ensure_guard_running": "process",
    "guard_status": "process",
    "run_guard": "process",
}


def ensure_guard_in_background() -> None:
    """Start the guard process, from a daemon thread, when guarded instances exist and no
    guard answers (``process.ensure_guard_for_environment``): what ``%load_ext`` calls, so
    loading the extension neither waits for the imports nor for the process to come up."""
    import threading

    def ensure() -> None:
        from .process import ensure_guard_for_environment

        ensure_guard_for_environment()

    threading.Thread(target=ensure, name="novita-guard-ensure", daemon=True).start()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
