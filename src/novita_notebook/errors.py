"""The one exception tree of novita-notebook: every failure a user can see is a NovitaError.
Each error carries the HTTP status, Novita's reason, the call (method + path) and a hint.

    NovitaError
    ├── AuthenticationError      401/403: the key is missing, wrong or not allowed
    ├── RateLimitError           429: carries ``retry_after`` (seconds)
    ├── TimeoutError             a request or a wait ran out of time (``last_status`` for waits)
    ├── NetworkError             connection refused, reset or dropped
    ├── CircuitBreakerError      too many consecutive failures; carries ``retry_at``
    ├── NotFoundError            the instance, template or auth does not exist
    ├── ValidationError          bad arguments (before any HTTP call) or VALIDATOR_PARAM
    │   └── ConfigError          the configuration itself is wrong (lists every problem)
    ├── CapacityError            INSUFFICIENT_RESOURCE / no region could serve the request
    ├── InvalidStateError        e.g. starting a running instance
    ├── BudgetExceededError      a create would push the hourly spend over the budget
    ├── InstanceFailedError      an instance reported statusError while being waited on
    ├── WebhookVerificationError a webhook's signature, timestamp or body is not acceptable
    └── APIError                 anything else the API answered with

Messages never contain secrets: callers build them from ids, names and API messages only.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "NovitaError",
    "AuthenticationError",
    "RateLimitError",
    "TimeoutError",
    "NetworkError",
    "CircuitBreakerError",
    "NotFoundError",
    "ValidationError",
    "ConfigError",
    "CapacityError",
    "InvalidStateError",
    "BudgetExceededError",
    "InstanceFailedError",
    "WebhookVerificationError",
    "APIError",
]


class NovitaError(Exception):
    """Base of every error this package raises.

    Attributes: ``message`` (what happened), ``status`` (HTTP status or None), ``reason``
    (Novita's UPPER_SNAKE reason or None), ``method`` and ``path`` (the call, without the
    query string), ``hint`` (what to do next, or None).
    """

    default_hint: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        method: str | None = None,
        path: str | None = None,
        hint: str | None = None,
        **extra: Any,
    ) -> None:
        self.message = message
        self.status = status
        self.reason = reason
        self.method = method
        self.path = path
        self.hint = hint if hint is not None else self.default_hint
        for key, value in extra.items():
            setattr(self, key, value)
        super().__init__(message)

    @property
    def call(self) -> str | None:
        """``"GET /gpu/instances"`` or None when no HTTP call was involved."""
        if self.method and self.path:
            return f"{self.method} {self.path}"
        return None

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.reason:
            details.append(self.reason)
        if self.call:
            details.append(self.call)
        if details:
            parts.append(f"[{', '.join(details)}]")
        text = " ".join(parts)
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text

    def __reduce__(self):  # keep errors picklable across threads/processes
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[NovitaError], message: str, state: dict[str, Any]) -> NovitaError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class AuthenticationError(NovitaError):
    default_hint = (
        "Check NOVITA_API_KEY (or pass api_key=...). For offline use, start the sandbox: "
        "Novita.sandbox() or %novita sandbox start."
    )


class RateLimitError(NovitaError):
    """429 from the API; ``retry_after`` is the wait the server asked for, in seconds."""

    default_hint = "Slow down or lower concurrency; the client already honours Retry-After."

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)


class TimeoutError(NovitaError):  # noqa: A001 - the name users expect; it is namespaced
    """A request or a wait ran out of time; ``last_status`` is the last status seen by a wait."""

    def __init__(self, message: str, *, last_status: str | None = None, **kw: Any) -> None:
        super().__init__(message, last_status=last_status, **kw)


class NetworkError(NovitaError):
    default_hint = "Check the network and NOVITA_API_URL; idempotent calls were already retried."


class CircuitBreakerError(NovitaError):
    """The breaker is open; ``retry_at`` is the unix time of the next allowed probe."""

    def __init__(self, message: str, *, retry_at: float | None = None, **kw: Any) -> None:
        super().__init__(message, retry_at=retry_at, **kw)


class NotFoundError(NovitaError):
    pass


class ValidationError(NovitaError, ValueError):
    """Bad input. ``field`` names the argument; ``problems`` lists every (field, rule) found."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: list[tuple[str, str]] | None = None,
        **kw: Any,
    ) -> None:
        if problems is None and field is not None:
            problems = [(field, message)]
        super().__init__(message, field=field, problems=problems or [], **kw)


class ConfigError(ValidationError):
    default_hint = "Pass the values to Novita(...), set them in the environment or in a .env file."


class CapacityError(NovitaError):
    """No capacity. ``attempts`` (list of per-region outcomes) and ``alternatives`` when known."""

    default_hint = "Try another GPU model, region or billing method (see Novita.products())."


class InvalidStateError(NovitaError):
    pass


class BudgetExceededError(NovitaError):
    pass


class InstanceFailedError(NovitaError):
    """The instance reported a failure (statusError) or vanished while being waited on."""


class WebhookVerificationError(NovitaError):
    pass


class APIError(NovitaError):
    pass
