"""What an option declaration is: ``Kind`` (a grammar: how a value is parsed, how typed text
becomes one), ``Option`` (one input with every surface that exposes it) and ``Family`` (the
options of one call: client settings, create, guard rules, waiting, remote runs).

Every surface reads these: the Python keywords (checked against them by a test), the
environment loader, the magic flags and cell keys, the ``%config`` traits, the create form and
the options table in docs/options.md. A value is parsed once, at the boundary, by ``Option.parse``
(Python values) or ``Option.parse_text`` (text from a flag, a cell, a form field or the
environment); both give the same error for the same bad value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

__all__ = ["Kind", "Option", "FormField", "Family", "NOT_GIVEN", "deprecated_name"]


class _NotGiven:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: A value nobody gave (different from None, which some options accept as a value).
NOT_GIVEN: Any = _NotGiven()


def _same(text: Any) -> Any:
    return text


@dataclass(frozen=True)
class Kind:
    """A kind of value. ``parse(value, field)`` is its grammar for Python values and raises a
    ValidationError naming ``field``; ``from_text(text)`` turns what was typed into such a
    value first (``"2"`` → 2 for a count), leaving what it cannot read for ``parse`` to refuse
    in its own words. ``metavar`` and ``example`` are what help texts show."""

    name: str
    parse: Callable[[Any, str], Any]
    from_text: Callable[[Any], Any] = _same
    metavar: str = "VALUE"
    example: str = ""
    switch: bool = False  #: a yes/no flag (``--wait``), True when present


@dataclass(frozen=True)
class FormField:
    """How the create form shows an option: its label and the placeholder of its text box."""

    label: str
    placeholder: str = ""


@dataclass(frozen=True)
class Option:
    """One input, declared once.

    ``name``: the Python keyword (and the cell key). ``aliases``: other spellings accepted as
    cell keys and keywords; ``deprecated``: old spellings that still work with a
    DeprecationWarning. ``env``: the environment variable (also read from .env);
    ``flag``: the magic flag (None: no flag); ``flag_aliases``: other flags meaning it;
    ``cell``: a ``%%novita`` cell key; ``trait``: the ``%config NovitaMagics.<trait>`` name;
    ``form``: the create form's field; ``live``: a client setting that may change after the
    client is made (``%config`` does). ``python``: a keyword of the Python call (False: a magic
    word only, such as ``--background``); ``secret``: never shown; ``repeat``: the flag may be
    given several times.
    """

    name: str
    kind: Kind
    help: str
    default: Any = None
    aliases: tuple[str, ...] = ()
    deprecated: tuple[str, ...] = ()
    env: str | None = None
    deprecated_env: tuple[str, ...] = ()
    flag: str | None = None
    flag_aliases: tuple[str, ...] = ()
    cell: bool = False
    trait: str | None = None
    deprecated_trait: str | None = None
    form: FormField | None = None
    live: bool = False
    python: bool = True
    secret: bool = False
    repeat: bool = False  #: the flag may be given several times (each adds to the list)

    def parse(self, value: Any, field: str | None = None) -> Any:
        """The typed value of a Python value (None stays None: "not given")."""
        if value is None:
            return None
        return self.kind.parse(value, field or self.name)

    def parse_text(self, text: Any, field: str | None = None) -> Any:
        """The typed value of typed text (a flag, a cell key, a form field, a variable)."""
        if text is None or (isinstance(text, str) and not text.strip() and not self.kind.switch):
            return None
        return self.parse(self.kind.from_text(text), field)

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every keyword and cell key meaning this option (the name first)."""
        return (self.name, *self.aliases, *self.deprecated)

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag, *self.flag_aliases) if self.flag else ()


def deprecated_name(old: str, new: str, where: str = "") -> None:
    """Warn once per call site that ``old`` is now called ``new``."""
    suffix = f" in {where}" if where else ""
    warnings.warn(
        f"{old!r}{suffix} is deprecated; use {new!r} (same meaning)",
        DeprecationWarning,
        stacklevel=4,
    )


@dataclass(frozen=True)
class Family:
    """The options of one call, in the order help and docs list them."""

    name: str
    title: str
    options: tuple[Option, ...]
    _by_spelling: dict[str, Option] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for option in self.options:
            for spelling in option.spellings:
                if spelling in self._by_spelling:
                    raise ValueError(f"{self.name}: {spelling!r} is declared twice")
                self._by_spelling[spelling] = option

    def __iter__(self) -> Iterator[Option]:
        return iter(self.options)

    def __contains__(self, name: object) -> bool:
        return name in self._by_spelling

    def __getitem__(self, name: str) -> Option:
        return self._by_spelling[name]

    def get(self, name: str) -> Option | None:
        return self._by_spelling.get(name)

    def names(self) -> list[str]:
        return [option.name for option in self.options]

    def canonical(self, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """``values`` keyed by option name: None dropped (not given), aliases renamed,
        deprecated spellings renamed with a warning, a name given twice refused; unknown keys
        kept as they are."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            option = self.get(key)
            name = option.name if option is not None else key
            if option is not None and key in option.deprecated:
                deprecated_name(key, name, where)
            if name in out:
                raise ValidationError(
                    f"{name}: given twice (as {key!r} and another spelling); keep one", field=name
                )
            out[name] = value
        return out

    def parse(self, values: Mapping[str, Any], *, text: bool = False) -> dict[str, Any]:
        """Every given value parsed (``text``: as typed text); one ValidationError lists every
        problem. Keys that are not options of this family are returned unchanged."""
        out: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for key, value in values.items():
            option = self.get(key)
            if option is None:
                out[key] = value
                continue
            try:
                out[option.name] = option.parse_text(value) if text else option.parse(value)
            except ValidationError as error:
                problems.extend(error.problems or [(option.name, error.message)])
        raise_problems(problems)
        return out


def raise_problems(problems: list[tuple[str, str]]) -> None:
    """One ValidationError naming every (field, rule), or nothing."""
    if not problems:
        return
    if len(problems) == 1:
        field_name, rule = problems[0]
        message = f"{field_name}: {rule}"
    else:
        lines = "\n".join(f"  - {name}: {rule}" for name, rule in problems)
        message = f"{len(problems)} invalid arguments:\n{lines}"
    raise ValidationError(message, field=problems[0][0], problems=list(problems))
