"""GuardRules: the bounds a user sets on an instance (deadlines, idle stop, budget, spot policy),
parsed and validated once, stored as absolute UTC times and plain numbers.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import validation as grammar
from ..errors import ValidationError
from ..money import format_money

__all__ = [
    "GuardRules",
    "ON_RECLAIM",
    "DEFAULT_WARN_BEFORE",
    "DEFAULT_IDLE_THRESHOLD",
    "ENV_NAMES",
    "MAX_SPAN",
    "MAX_BUDGET_TOTAL",
    "MAX_BUDGET_PER_HOUR",
    "RULE_PARSERS",
    "parse_duration",
    "parse_deadline",
    "parse_threshold",
    "parse_budget",
    "parse_on_reclaim",
    "rules_from_env",
    "autostart_enabled",
    "extend",
    "without",
]

ON_RECLAIM = ("notify", "migrate", "recreate")
DEFAULT_WARN_BEFORE = timedelta(minutes=10)
DEFAULT_IDLE_THRESHOLD = 5.0
#: A default warning never takes more than this share of the time left when the rule was set.
SHORT_DEADLINE_SHARE = 0.25

# Bounds of every rule value: no accepted value can make the guard's arithmetic overflow.
#: The longest duration a rule takes, and how far ahead a deadline may be (from now).
MAX_SPAN = timedelta(days=366)
#: The largest caps, in USD and USD per hour.
MAX_BUDGET_TOTAL = 1_000_000.0
MAX_BUDGET_PER_HOUR = 100_000.0
#: Stored times outside these are not times this package wrote (a damaged record).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
#: Each cap's largest value and unit.
_CAPS = {"budget_total": (MAX_BUDGET_TOTAL, "USD"), "budget_per_hour": (MAX_BUDGET_PER_HOUR,
                                                                        "USD per hour")}  # fmt: skip

#: Rule → environment variable giving the user's default (also read from a .env file).
ENV_NAMES = {
    "stop_after": "NOVITA_GUARD_STOP_AFTER",
    "delete_after": "NOVITA_GUARD_DELETE_AFTER",
    "idle_stop": "NOVITA_GUARD_IDLE_STOP",
    "idle_threshold": "NOVITA_GUARD_IDLE_THRESHOLD",
    "budget_per_hour": "NOVITA_GUARD_BUDGET_PER_HOUR",
    "budget_total": "NOVITA_GUARD_BUDGET_TOTAL",
    "warn_before": "NOVITA_GUARD_WARN_BEFORE",
    "on_reclaim": "NOVITA_GUARD_ON_RECLAIM",
}
AUTOSTART_ENV = "NOVITA_GUARD_AUTOSTART"


def _finite_number(value: Any, field: str, rule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field} must be a number: {rule}", field=field)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if math.isnan(number) or math.isinf(number):
        raise ValidationError(f"{field} must be a finite number, got {value!r}", field=field)
    if number < 0:
        raise ValidationError(f"{field} must not be negative, got {value!r}", field=field)
    return number


def _span_text(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:g} days"


def parse_duration(value: Any, field: str) -> timedelta:
    """``"90m"``, ``"2h"``, ``"1h30m"``, ``"2 hours"``, ``"1d"`` (validation's one duration
    grammar), seconds as a number or a timedelta → a positive timedelta of at most ``MAX_SPAN``. Anything else is a
    ValidationError (a ValueError) naming ``field`` and the rule. Pure: no I/O, no clock."""
    rule = "a duration like '90m', '2h', '1h30m', seconds as a number, or a timedelta"
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):  # the package's one duration grammar ('2 hours', '1h30m'...)
        seconds = grammar.parse_timedelta(value, field).total_seconds()
    else:
        seconds = _finite_number(value, field, rule)
    if math.isnan(seconds) or math.isinf(seconds) or seconds <= 0:
        raise ValidationError(f"{field} must be a positive duration, got {value!r}", field=field)
    if seconds > MAX_SPAN.total_seconds():
        raise ValidationError(f"{field} must be at most {_span_text(MAX_SPAN)}, got {value!r}",
                              field=field)  # fmt: skip
    return timedelta(seconds=seconds)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aware_or_invalid(moment: datetime, field: str, given: Any) -> datetime:
    try:
        return _aware(moment)
    except (OverflowError, ValueError):  # e.g. datetime.max in a zone west of UTC
        raise ValidationError(f"{field} {given!r} is not a usable time", field=field) from None


def parse_deadline(value: Any, field: str, now: datetime) -> datetime:
    """A duration from ``now`` or a time (``18:00Z``, ISO text or a datetime; naive means
    UTC) → an aware UTC datetime after ``now`` and at most ``MAX_SPAN`` after it. Pure."""
    if isinstance(value, datetime):
        moment = _aware_or_invalid(value, field, value)
    elif isinstance(value, str):
        # the one deadline grammar: '2h' from now, '18:00Z' (the next 18:00 UTC), ISO text
        moment = grammar.parse_deadline(value, field, now)
    else:
        moment = now + parse_duration(value, field)
    if moment <= now:
        raise ValidationError(
            f"{field} must be in the future, got {moment.isoformat()}", field=field
        )
    if moment > now + MAX_SPAN:
        raise ValidationError(
            f"{field} must be at most {_span_text(MAX_SPAN)} ahead, got {moment.isoformat()}",
            field=field,
        )
    return moment


def parse_threshold(value: Any, field: str = "idle_threshold") -> float:
    """A GPU utilisation threshold in percent, as a number or text (``"5"``, ``"5%"``): in
    (0, 100], validation's one percentage grammar. Pure."""
    return grammar.parse_percent(value, field)


def parse_budget(value: Any, field: str = "budget_total") -> float:
    """A cap in USD (``budget_total``) or USD per hour (``budget_per_hour``), a number or text
    in validation's one money grammar (``"$40"``): more than 0 and at most MAX_BUDGET_TOTAL /
    MAX_BUDGET_PER_HOUR. Pure."""
    cap_max, unit = _CAPS.get(field, _CAPS["budget_total"])
    example = "2" if field == "budget_per_hour" else "20"
    cap = grammar.parse_money(value, field, unit=unit, example=example)  # the one money grammar
    if cap is None:
        raise grammar.invalid(field, f"{grammar.money_rule(unit, example)}, got {value!r}")
    if cap > cap_max:
        raise ValidationError(
            f"{field} must be at most {cap_max:,.0f} {unit}, got {value!r}", field=field
        )
    return cap


def parse_on_reclaim(value: Any, field: str = "on_reclaim") -> str:
    """The spot reclaim policy: ``notify``, ``migrate`` or ``recreate`` (any case). Pure."""
    policy = value.strip().lower() if isinstance(value, str) else value
    if policy not in ON_RECLAIM:
        raise ValidationError(
            f"{field} must be one of {', '.join(ON_RECLAIM)}, got {value!r}", field=field
        )
    return policy


def _parse_time_field(value: Any, field: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None else _aware_or_invalid(value, field, value)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{field} {value!r} is not an ISO time", field=field) from None
    return _aware_or_invalid(parsed, field, value)


#: Rule name → its parser, ``parser(value, now)``: the typed value or a ValidationError
#: (a ValueError) naming the field and the rule. The one place rule values are checked.
RULE_PARSERS: dict[str, Callable[[Any, datetime], Any]] = {
    "stop_after": lambda value, now: parse_deadline(value, "stop_after", now),
    "delete_after": lambda value, now: parse_deadline(value, "delete_after", now),
    "idle_stop": lambda value, now: parse_duration(value, "idle_stop"),
    "idle_threshold": lambda value, now: parse_threshold(value, "idle_threshold"),
    "budget_per_hour": lambda value, now: parse_budget(value, "budget_per_hour"),
    "budget_total": lambda value, now: parse_budget(value, "budget_total"),
    "warn_before": lambda value, now: parse_duration(value, "warn_before"),
    "on_reclaim": lambda value, now: parse_on_reclaim(value, "on_reclaim"),
}


@dataclass(frozen=True)
class GuardRules:
    """The guard rules of one instance. Build with :meth:`parse`; every time is aware UTC.

    ``stop_after`` / ``delete_after``: the absolute deadlines. ``idle_stop``: how long GPU
    utilisation must stay below ``idle_threshold`` (percent) before a stop. ``budget_per_hour``
    and ``budget_total`` (USD, the latter counted from ``set_at``). ``warn_before``: the lead of
    each warning (None: 10 min, shortened for short deadlines). ``on_reclaim``: what a spot
    reclaim notice does (``notify``, ``migrate`` or ``recreate``).
    """

    set_at: datetime
    stop_after: datetime | None = None
    delete_after: datetime | None = None
    idle_stop: timedelta | None = None
    idle_threshold: float = DEFAULT_IDLE_THRESHOLD
    budget_per_hour: float | None = None
    budget_total: float | None = None
    warn_before: timedelta | None = None
    on_reclaim: str = "notify"

    def __post_init__(self) -> None:
        for name in ("set_at", "stop_after", "delete_after"):
            moment = getattr(self, name)
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise ValidationError(f"{name} must be an aware datetime", field=name)
            if moment is not None and not EARLIEST <= moment <= LATEST:
                raise ValidationError(
                    f"{name} must lie between {EARLIEST:%Y} and {LATEST:%Y}, got {moment}",
                    field=name,
                )
        for name in ("idle_stop", "warn_before"):
            span = getattr(self, name)
            if span is not None and (not isinstance(span, timedelta) or span <= timedelta(0)):
                raise ValidationError(f"{name} must be a positive duration", field=name)
            if span is not None and span > MAX_SPAN:
                raise ValidationError(
                    f"{name} must be at most {_span_text(MAX_SPAN)}, got {span}", field=name
                )
        parse_threshold(_finite_number(self.idle_threshold, "idle_threshold", "a percentage"))
        for name in ("budget_per_hour", "budget_total"):
            cap = getattr(self, name)
            if cap is not None:
                parse_budget(_finite_number(cap, name, _CAPS[name][1]), name)
        if self.on_reclaim not in ON_RECLAIM:
            raise ValidationError(
                f"on_reclaim must be one of {', '.join(ON_RECLAIM)}, got {self.on_reclaim!r}",
                field="on_reclaim",
            )

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def parse(
        cls,
        *,
        stop_after: Any = None,
        delete_after: Any = None,
        idle_stop: Any = None,
        idle_threshold: Any = None,
        budget_per_hour: Any = None,
        budget_total: Any = None,
        warn_before: Any = None,
        on_reclaim: Any = None,
        now: datetime | None = None,
    ) -> GuardRules:
        """Rules from user input (durations, times, numbers as numbers or text), each value
        checked by its parser in ``RULE_PARSERS``."""
        now = _aware(now) if now is not None else datetime.now(UTC)
        given = {
            "stop_after": stop_after,
            "delete_after": delete_after,
            "idle_stop": idle_stop,
            "idle_threshold": idle_threshold,
            "budget_per_hour": budget_per_hour,
            "budget_total": budget_total,
            "warn_before": warn_before,
            "on_reclaim": on_reclaim,
        }
        values = {
            name: RULE_PARSERS[name](value, now)
            for name, value in given.items()
            if value is not None
        }
        return cls(set_at=now, **values)

    def merged(self, other: GuardRules) -> GuardRules:
        """These rules with every rule ``other`` sets replacing ours (``set_at`` from other)."""
        changes: dict[str, Any] = {"set_at": other.set_at}
        for item in dataclasses.fields(self):
            value = getattr(other, item.name)
            if item.name != "set_at" and value != item.default:
                changes[item.name] = value
        return dataclasses.replace(self, **changes)

    def extend(
        self, duration: Any, rule: str | None = None, now: datetime | None = None
    ) -> GuardRules:
        """Deadlines pushed back by ``duration`` (``rule``: only ``stop_after`` or
        ``delete_after``). Extending rules with no deadline, or past ``MAX_SPAN`` from now,
        is a ValidationError."""
        delta = parse_duration(duration, "duration")
        names = ("stop_after", "delete_after") if rule is None else (rule,)
        if rule is not None and rule not in ("stop_after", "delete_after"):
            raise ValidationError("only stop_after or delete_after can be extended", field="rule")
        changes = {n: getattr(self, n) + delta for n in names if getattr(self, n) is not None}
        if not changes:
            raise ValidationError(
                "there is no deadline to extend (set stop_after or delete_after first)",
                field="duration",
            )
        limit = (_aware(now) if now is not None else datetime.now(UTC)) + MAX_SPAN
        if any(moment > limit for moment in changes.values()):
            raise ValidationError(
                f"duration: the deadline would be more than {_span_text(MAX_SPAN)} away",
                field="duration",
            )
        return dataclasses.replace(self, **changes)

    def without(self, *rules: str) -> GuardRules:
        """These rules with the named ones removed (``"budget"`` removes both caps,
        ``"idle"`` the idle rule and its threshold)."""
        aliases = {
            "budget": ("budget_per_hour", "budget_total"),
            "idle": ("idle_stop", "idle_threshold"),
            "deadline": ("stop_after", "delete_after"),
        }
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name != "set_at"}
        changes: dict[str, Any] = {}
        for rule in rules:
            for name in aliases.get(rule, (rule,)):
                if name not in defaults:
                    raise ValidationError(
                        f"unknown rule {rule!r}; rules: {', '.join(defaults)}", field="rules"
                    )
                changes[name] = defaults[name]
        return dataclasses.replace(self, **changes)

    # -- reading -------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True when at least one rule can act (on_reclaim alone only matters for spot)."""
        return any(
            v is not None
            for v in (
                self.stop_after,
                self.delete_after,
                self.idle_stop,
                self.budget_per_hour,
                self.budget_total,
            )
        ) or (self.on_reclaim != "notify")

    def warn_lead(self, deadline: datetime) -> timedelta:
        """How long before ``deadline`` to warn: ``warn_before`` if set (never more than the
        time the rule gave), else 10 min, or a quarter of the time given if that is shorter."""
        given = max(deadline - self.set_at, timedelta(0))
        if self.warn_before is not None:
            return min(self.warn_before, given)
        return min(DEFAULT_WARN_BEFORE, given * SHORT_DEADLINE_SHARE)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO text, durations as seconds."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, timedelta):
                value = value.total_seconds()
            out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardRules:
        """The inverse of :meth:`to_dict`; unknown keys are ignored (newer writers)."""
        if not isinstance(data, Mapping):
            raise ValidationError("guard rules must be a mapping", field="rules")
        idle, warn = data.get("idle_stop"), data.get("warn_before")
        set_at = _parse_time_field(data.get("set_at"), "set_at") or datetime.now(UTC)
        return cls(
            set_at=set_at,
            stop_after=_parse_time_field(data.get("stop_after"), "stop_after"),
            delete_after=_parse_time_field(data.get("delete_after"), "delete_after"),
            idle_stop=None if idle is None else parse_duration(idle, "idle_stop"),
            idle_threshold=parse_threshold(data.get("idle_threshold", DEFAULT_IDLE_THRESHOLD)),
            budget_per_hour=_stored_cap(data, "budget_per_hour"),
            budget_total=_stored_cap(data, "budget_total"),
            warn_before=None if warn is None else parse_duration(warn, "warn_before"),
            on_reclaim=parse_on_reclaim(data.get("on_reclaim") or "notify"),
        )

    def describe(self) -> str:
        """One line for status displays: ``stop at 18:00Z; idle 30m < 5%; ...``."""
        parts = []
        if self.stop_after:
            parts.append(f"stop at {self.stop_after:%Y-%m-%d %H:%M:%SZ}")
        if self.delete_after:
            parts.append(f"delete at {self.delete_after:%Y-%m-%d %H:%M:%SZ}")
        if self.idle_stop:
            minutes = self.idle_stop.total_seconds() / 60
            parts.append(f"idle stop after {minutes:g} min below {self.idle_threshold:g} %")
        if self.budget_per_hour is not None:
            parts.append(f"budget {format_money(self.budget_per_hour, per_hour=True)}")
        if self.budget_total is not None:
            parts.append(f"budget {format_money(self.budget_total)} total")
        if self.on_reclaim != "notify":
            parts.append(f"on reclaim: {self.on_reclaim}")
        return "; ".join(parts) or "no rule"


def _stored_cap(data: Mapping[str, Any], field: str) -> float | None:
    value = data.get(field)
    return None if value is None else parse_budget(value, field)


def _rules(rules: Any) -> GuardRules:
    if not isinstance(rules, GuardRules):
        raise ValidationError("rules must be a GuardRules", field="rules")
    return rules


def extend(rules: GuardRules, duration: Any, rule: str | None = None) -> GuardRules:
    """``rules`` with their deadlines pushed back by ``duration`` (see GuardRules.extend)."""
    return _rules(rules).extend(duration, rule)


def without(rules: GuardRules, *names: str) -> GuardRules:
    """``rules`` with the named rules removed (see GuardRules.without)."""
    return _rules(rules).without(*names)


def _number_input(value: Any, field: str, unit: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(
                f"{field} {value!r} is not a number of {unit}", field=field
            ) from None
    return _finite_number(value, field, unit)


def rules_from_env(
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | bool | None = None,
    now: datetime | None = None,
) -> GuardRules | None:
    """The user's default rules from ``NOVITA_GUARD_*`` (environment first, then .env), or
    None when none is set. A bad value is a ValidationError naming the variable."""
    values = _env_values(environ, env_file)
    given: dict[str, Any] = {}
    for rule, variable in ENV_NAMES.items():
        raw = values.get(variable)
        if raw is not None and str(raw).strip():
            given[rule] = str(raw).strip()
    if not given:
        return None
    try:
        return GuardRules.parse(now=now, **given)
    except ValidationError as error:
        variable = ENV_NAMES.get(str(error.field), error.field)
        raise ValidationError(f"{variable}: {error.message}", field=variable) from None


def autostart_enabled(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | bool | None = None
) -> bool:
    """False when ``NOVITA_GUARD_AUTOSTART`` is 0/false/no/off (the opt-out)."""
    raw = _env_values(environ, env_file).get(AUTOSTART_ENV)
    return str(raw).strip().lower() not in {"0", "false", "no", "off"} if raw is not None else True


def _env_values(
    environ: Mapping[str, str] | None, env_file: str | os.PathLike[str] | bool | None
) -> dict[str, str]:
    """``NOVITA_GUARD_*`` values: the environment wins over the .env file (never modified)."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if env_file is not False:
        path = ".env" if env_file in (None, True) else os.fspath(env_file)  # type: ignore[arg-type]
        if os.path.isfile(path):
            from dotenv import dotenv_values

            found = dotenv_values(path).items()
            values.update({k: v for k, v in found if k.startswith("NOVITA_GUARD_") and v})
    values.update({k: v for k, v in environ.items() if k.startswith("NOVITA_GUARD_")})
    return values
