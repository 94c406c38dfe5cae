"""The guard ("no forgotten GPU"): rules that bound an instance's life, a ledger store with
action claims, a pure policy, an enforcer and a detached guard process that survives the kernel.
"""

from __future__ import annotations

from .rules import GuardRules, autostart_enabled, parse_deadline, parse_duration, rules_from_env

__all__ = [
    "GuardRules",
    "autostart_enabled",
    "parse_deadline",
    "parse_duration",
    "rules_from_env",
]
