"""What the subcommands share: keyword filtering against a library signature, so a magic never
turns an argument the library lacks into a TypeError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ...errors import ValidationError


def accepted(fn: Callable[..., Any], kwargs: dict[str, Any], what: str) -> dict[str, Any]:
    """Drop None values; refuse keywords ``fn`` does not take, naming them (not a TypeError)."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins or C callables: trust the caller
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValidationError(f"{what} does not accept {', '.join(unknown)}", field=unknown[0])
    return kwargs
