"""What the subcommands share: the session they run in (``Session``), the client they call
(``Client``, the protocol ``Novita`` satisfies), and keyword filtering against a library
signature, so a magic never turns an argument the library lacks into a TypeError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from ...errors import ValidationError
from ...protocols import NovitaClient as Client

__all__ = ["Client", "Session", "accepted"]


class Session(Protocol):
    """The %novita session as its subcommands use it (NovitaMagics)."""

    billing: str | None
    sandbox_client: Client | None
    panels: list[Any]
    live_tops: dict[str, Any]  # instance id -> its live GPU view (%novita top --live)

    @property
    def client(self) -> Client | None: ...

    def get_client(self) -> Client: ...
    def expand(self, text: str, local_ns: dict[str, Any]) -> str: ...
    def open_panel(
        self,
        ids: list[str] | None,
        interval: float | None,
        *,
        keep: bool = False,
        seed: list[Any] | None = None,
    ) -> Any: ...
    def start_sandbox(self, speed: float | None = None, seed: int | None = None) -> Any: ...
    def stop_sandbox(self) -> None: ...
    def close_client(self) -> None: ...


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
