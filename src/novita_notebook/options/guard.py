"""The guard rules, declared once: the keywords of ``create()``/``guard()``, the
``--stop-after``-style flags of ``%novita create`` and ``%novita guard``, the cell keys, the
``NOVITA_GUARD_*`` defaults and the ``%config NovitaMagics.guard_*`` session defaults.

Each rule's value is read by the shared grammar (durations, times, money, percentages) and then
checked by guard/rules.py's own parser, which holds the rule's bounds; what comes out is typed
(an absolute deadline, a timedelta, USD), ready for ``GuardRules.parse``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from ..guard.rules import ENV_NAMES
from ..validation import PER_HOUR, TOTAL, invalid
from . import kinds
from .schema import Family, Kind, Option

__all__ = ["GUARD", "RULE_NAMES", "parse_rule_names", "parse_extension", "session_value"]

ON_RECLAIM = ("notify", "migrate", "recreate")


def _checked_by_guard(name: str, grammar: Kind) -> Kind:
    """``grammar`` then guard/rules.py's own parser of the rule ``name`` (its bounds)."""

    def parse(value: Any, field: str) -> Any:
        typed = grammar.parse(value, field)
        from ..guard.rules import RULE_PARSERS  # the guard's parsers hold each rule's bounds

        try:
            return RULE_PARSERS[name](typed, datetime.now(UTC))
        except ValidationError as error:
            rule = error.problems[0][1] if error.problems else error.message
            raise invalid(field, rule.removeprefix(f"{name} ").removeprefix(f"{name}: ")) from None

    return Kind(
        grammar.name,
        parse,
        grammar.from_text,
        metavar=grammar.metavar,
        example=grammar.example,
        switch=grammar.switch,
    )


def _rule(
    name: str,
    grammar: Kind,
    help_text: str,
    *,
    flag_aliases: tuple[str, ...] = (),
    aliases: tuple[str, ...] = (),
    default: Any = None,
) -> Option:
    return Option(
        name,
        _checked_by_guard(name, grammar),
        help_text,
        default=default,
        aliases=aliases,
        env=ENV_NAMES[name],
        flag="--" + name.replace("_", "-"),
        flag_aliases=flag_aliases,
        cell=True,
        trait=f"guard_{name}",
    )


GUARD = Family(
    "guard",
    "Guard rules: create()/guard() keywords, their flags and cell keys, NOVITA_GUARD_* and "
    "%config NovitaMagics.guard_*",
    (
        _rule(
            "stop_after",
            kinds.DEADLINE,
            "a deadline: stop the instance at it, given as a duration from now (2h, 1h30m) "
            "or a time (18:00Z)",
        ),
        _rule(
            "delete_after",
            kinds.DEADLINE,
            "a deadline: delete the instance at it (a duration from now or a time)",
        ),
        _rule(
            "idle_stop",
            kinds.TIMEDELTA,
            "stop once GPU use stays below idle_threshold this long, e.g. 30m",
            flag_aliases=("--idle",),
        ),
        _rule(
            "idle_threshold",
            kinds.PERCENT,
            "GPU use (percent) below which an instance counts as idle",
            default=5.0,
        ),
        _rule(
            "budget_per_hour",
            kinds.money(PER_HOUR, "2"),
            "stop the newest guarded instances while their spend per hour is above this "
            "(not the client's spend_limit_per_hour, which refuses creates)",
            flag_aliases=("--budget-hour",),
        ),
        _rule(
            "budget_total",
            kinds.money(TOTAL, "20"),
            "stop the instance once it has cost this much in total since the rule was set",
            aliases=("budget",),
            flag_aliases=("--budget",),
        ),
        _rule(
            "warn_before",
            kinds.TIMEDELTA,
            "how long before a deadline to warn (default 10 min, less for short deadlines)",
        ),
        _rule(
            "on_reclaim",
            kinds.choice(ON_RECLAIM),
            "what a spot reclaim notice does: notify, migrate or recreate",
            default="notify",
        ),
    ),
)


#: What ``unguard(instance, *names)`` may remove: each rule, and the groups ``idle``
#: (idle_stop and its threshold), ``budget`` (both caps) and ``deadline`` (both deadlines).
RULE_NAMES = (*GUARD.names(), "idle", "budget", "deadline")


def parse_rule_names(names: Any, field: str = "rules") -> tuple[str, ...]:
    """The rule names given to ``unguard``: each a string among RULE_NAMES."""
    items = (names,) if isinstance(names, str) else names
    if not isinstance(items, tuple | list):
        raise invalid(field, f"must be rule names such as 'idle' or 'budget', got {names!r}")
    out = []
    for item in items:
        if not isinstance(item, str) or item.strip() not in RULE_NAMES:
            raise invalid(field, f"must be rule names among {', '.join(RULE_NAMES)}; got {item!r}")
        out.append(item.strip())
    return tuple(out)


def parse_extension(duration: Any, rule: Any) -> tuple[Any, str | None]:
    """``extend``'s arguments: how much later (the duration grammar) and which deadline."""
    delta = kinds.TIMEDELTA.parse(duration, "duration")
    if rule is not None:
        rule = kinds.choice(("stop_after", "delete_after")).parse(rule, "rule")
    return delta, rule


def session_value(name: str, value: Any) -> Any:
    """A rule's value checked now but kept relative, for defaults applied at each later create
    (``%config NovitaMagics.guard_*``): durations as seconds, a deadline given as a duration
    as seconds from the create, one given as a time as that moment (ISO text)."""
    option = GUARD[name]
    typed = option.parse(value)
    if typed is None:
        return None
    if option.kind.name == "deadline":
        if isinstance(value, int | float) or not kinds.is_time(value):
            return kinds.TIMEDELTA.parse(value, name).total_seconds()
        return typed.isoformat()
    if hasattr(typed, "total_seconds"):
        return typed.total_seconds()
    return typed
