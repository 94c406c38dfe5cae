"""The ``%config NovitaMagics.<trait>`` options, generated from the option families: one trait
per entry that declares one, checked by that entry's rule, and what a change does (a client
setting changes the session client's settings, a guard rule becomes a session default).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from traitlets import Any as AnyTrait
from traitlets import HasTraits, TraitError

from ..errors import ValidationError
from ..options import CLIENT, CREATE, GUARD, SESSION, Option
from ..options.guard import session_value

if TYPE_CHECKING:  # pragma: no cover
    from .commands.common import Client

__all__ = ["TRAIT_OPTIONS", "DEPRECATED_TRAITS", "traits", "checked", "apply_to_client"]

#: trait name → the option it sets, for every family that declares traits.
TRAIT_OPTIONS: dict[str, Option] = {
    option.trait: option
    for family in (CLIENT, CREATE, GUARD, SESSION)
    for option in family
    if option.trait
}
#: old trait name → the trait that replaced it.
DEPRECATED_TRAITS: dict[str, str] = {
    option.deprecated_trait: option.trait
    for option in TRAIT_OPTIONS.values()
    if option.deprecated_trait and option.trait
}


_KIND_TRAITS: dict[str, type] = {}


def _trait_class(kind_name: str) -> type:
    """A trait class named for the option's kind, so ``%config NovitaMagics`` lists
    ``poll_interval=<Duration>`` rather than ``<Any>``; the option's rule checks the value."""
    name = kind_name.capitalize()
    if name not in _KIND_TRAITS:
        _KIND_TRAITS[name] = type(name, (AnyTrait,), {"info_text": f"a {kind_name}"})
    return _KIND_TRAITS[name]


def traits() -> dict[str, Any]:
    """The traitlets of NovitaMagics, each with its option's default and help line."""
    made: dict[str, Any] = {}
    for name, option in TRAIT_OPTIONS.items():
        default = option.default if option in SESSION.options else None
        trait = _trait_class(option.kind.name)
        made[name] = trait(default, allow_none=True, help=option.help).tag(config=True)
    for old, new in DEPRECATED_TRAITS.items():
        help_text = f"Deprecated: the old name of {new} (same meaning)."
        made[old] = AnyTrait(None, allow_none=True, help=help_text).tag(config=True)
    return made


def checked(trait: str, value: Any) -> Any:
    """A trait's new value by its option's rule (TraitError in the rule's words); what is
    kept: the parsed value, or for a guard rule its session form (relative deadlines)."""
    option = TRAIT_OPTIONS[DEPRECATED_TRAITS.get(trait, trait)]
    if value is None and option not in SESSION.options:
        return None
    try:
        if option in GUARD.options:
            return session_value(option.name, value)
        return option.parse(value)
    except ValidationError as error:
        rule = error.problems[0][1] if error.problems else error.message
        raise TraitError(f"NovitaMagics.{trait}: {rule}") from None


def renamed(trait: str) -> str | None:
    """The trait an old name stands for now (with a DeprecationWarning), else None."""
    new = DEPRECATED_TRAITS.get(trait)
    if new is not None:
        warnings.warn(
            f"NovitaMagics.{trait} is deprecated; use NovitaMagics.{new} (same meaning)",
            DeprecationWarning,
            stacklevel=4,
        )
    return new


def apply_to_client(magics: HasTraits, client: Client, trait: str | None = None) -> None:
    """The session's options on its client: a client setting through the settings' own rule
    (None gives back the client's own value), guard rules as the session's defaults."""
    config = getattr(client, "config", None)
    names = [trait] if trait is not None else list(TRAIT_OPTIONS)
    for name in names:
        option = TRAIT_OPTIONS.get(name)
        if option is None or option not in CLIENT.options or config is None:
            continue
        value = getattr(magics, name)
        if value is not None:
            config.set(option.name, value, source="%config")
        elif trait is not None:
            config.reset(option.name)
    guards = getattr(client, "guards", None)
    if guards is not None:
        guards.session_defaults = {
            option.name: getattr(magics, name)
            for name, option in TRAIT_OPTIONS.items()
            if option in GUARD.options and getattr(magics, name) is not None
        }
        guards.autostart = None if magics.guard_autostart else False
