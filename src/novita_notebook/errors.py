"""The one exception tree of novita-notebook: every failure a user can see is a NovitaError.
Each error carries the HTTP status, Novita's reason, the call (method + path) and a hint.

    NovitaError
    ├── TransientError           worth trying again later; carries ``retry_after`` (s or None)
    │   ├── RateLimitError       429: ``retry_after`` is what the server asked for
    │   ├── NetworkError         connection refused, reset or dropped
    │   ├── RequestTimeoutError  a request got no answer in time (also a TimeoutError)
    │   ├── CircuitBreakerError  too many consecutive failures; ``retry_at`` (unix time)
    │   └── ServerError          HTTP 5xx (also an APIError)
    ├── TimeoutError             a request or a wait ran out of time (``last_status`` for waits)
    │   └── RequestTimeoutError  (see above: a request timeout is transient, a wait timeout not)
    ├── AuthenticationError      401/403: the key is missing, wrong or not allowed
    ├── NotFoundError            the instance, template or auth does not exist
    ├── ValidationError          bad arguments (before any HTTP call) or VALIDATOR_PARAM
    │   └── ConfigError          the configuration itself is wrong (lists every problem)
    ├── CapacityError            INSUFFICIENT_RESOURCE / no region could serve the request
    ├── InvalidStateError        e.g. starting a running instance
    ├── BudgetExceededError      a create would push the hourly spend over the budget
    ├── InstanceFailedError      an instance reported statusError while being waited on
    ├── WebhookVerificationError a webhook's signature, timestamp or body is not acceptable
    ├── APIError                 anything else the API answered with
    │   └── ServerError          (see above)
    └── RemoteError              something on an instance's SSH side (``instance_id``)
        ├── SSHConnectionError   the instance's SSH server cannot be reached or the connection
        │                        was lost after every retry (also a TransientError)
        ├── SSHAuthenticationError  the instance refused its own password
        ├── HostKeyChangedError  the host key differs from the one pinned for this instance
        ├── RemoteRunError       a run ended badly: ``run_id``, ``exit_code``, ``state``,
        │                        ``error_type``, ``traceback_tail`` (the remote's last lines)
        ├── PythonMismatchError  values cannot travel: the instance's Python differs
        ├── RemoteKernelError    a remote kernel could not start, or ended (its instance
        │   │                    stopped, its process died): ``kernel_id``
        │   └── ForwardingRefusedError  the SSH server refuses port forwarding (use run())
        └── RemoteExecutionError code sent to a remote kernel raised: ``ename``, ``evalue``,
                                 ``traceback`` (lines), ``result`` (the outputs so far)

"Is this worth retrying?" is answered here only: ``is_transient(error)``. "Might a failed
write have been applied anyway?" likewise: ``may_have_applied(error)``. ``requested_delay``
reads the wait the server or the breaker asked for. What an answer's status and reason mean
together (a refused key, a missing thing) is ``key_rejected`` and ``means_not_found``: the
error map and the doctor read answers the same way.

Messages never contain secrets: callers build them from ids, names and API messages only.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = [
    "NovitaError",
    "TransientError",
    "RequestTimeoutError",
    "ServerError",
    "is_transient",
    "may_have_applied",
    "requested_delay",
    "key_rejected",
    "means_not_found",
    "PERMANENT_SERVER_REASONS",
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
    "RemoteError",
    "SSHConnectionError",
    "SSHAuthenticationError",
    "HostKeyChangedError",
    "RemoteRunError",
    "PythonMismatchError",
    "RemoteKernelError",
    "ForwardingRefusedError",
    "RemoteExecutionError",
]


#: Reasons of a refused key or account; the documented account reasons come with HTTP 400.
KEY_REASONS = frozenset(
    {"UNAUTHORIZED", "FORBIDDEN", "INVALID_USER_TOKEN", "BANNED_USER", "USER_NOT_FOUND"}
)
#: Documented 5xx reasons that no retry can fix (the server answered and refused).
PERMANENT_SERVER_REASONS = frozenset({"WALLET_NOT_FOUND"})


def key_rejected(status: int | None, reason: str | None) -> bool:
    """True when an answer says the key (or its account) was refused: 401/403, or a 4xx
    whose reason is an account reason (``INVALID_USER_TOKEN`` comes as a documented 400)."""
    status = status or 0
    if status in (401, 403):
        return True
    text = reason or ""
    return 400 <= status < 500 and (
        text in KEY_REASONS or "TOKEN" in text or "API_KEY" in text or text.startswith("BANNED_")
    )


def means_not_found(status: int | None, reason: str | None) -> bool:
    """True when an answer says the thing asked about does not exist: HTTP 404, or a 4xx whose
    reason ends in ``_NOT_FOUND`` (the documented 400). Never a 5xx: ``WALLET_NOT_FOUND`` is
    a documented 500, a server refusal, and reading it as "gone" would make a failed delete
    look done."""
    status = status or 0
    if status == 404:
        return True
    return 400 <= status < 500 and (reason or "").endswith("_NOT_FOUND")


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


class TransientError(NovitaError):
    """The API or the network is having a moment, not refusing us: trying again later may work.

    ``retry_after`` is the wait (seconds) the server asked for, or None when it said nothing.
    """

    retry_after: float | None

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)


class RateLimitError(TransientError):
    """429 from the API; ``retry_after`` is the wait the server asked for, in seconds."""

    default_hint = "Slow down or lower concurrency; the client already honours Retry-After."


class TimeoutError(NovitaError):  # noqa: A001 - the name users expect; it is namespaced
    """A request or a wait ran out of time; ``last_status`` is the last status seen by a wait."""

    last_status: str | None

    def __init__(self, message: str, *, last_status: str | None = None, **kw: Any) -> None:
        super().__init__(message, last_status=last_status, **kw)


class NetworkError(TransientError):
    default_hint = "Check the network and NOVITA_API_URL; idempotent calls were already retried."


class RequestTimeoutError(TransientError, TimeoutError):
    """A single HTTP request got no answer in time (connect or read). Transient, unlike a wait
    that ran out of time; ``except TimeoutError`` still catches both."""


class CircuitBreakerError(TransientError):
    """The breaker is open; ``retry_at`` is the unix time of the next allowed probe."""

    retry_at: float | None

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


class ServerError(APIError, TransientError):
    """The API answered 5xx: its problem, not ours; idempotent calls were already retried."""


class RemoteError(NovitaError):
    """Something on an instance's SSH side; ``instance_id`` names the instance."""

    instance_id: str | None

    def __init__(self, message: str, *, instance_id: str | None = None, **kw: Any) -> None:
        super().__init__(message, instance_id=instance_id, **kw)


class SSHConnectionError(RemoteError, TransientError):
    """The instance's SSH server cannot be reached, or the connection kept dropping."""

    default_hint = "Is the instance running? novita.instance(...).status says; retries were made."


class SSHAuthenticationError(RemoteError):
    """The instance's SSH server refused the password the API gave for it."""

    default_hint = "The API's password for the instance was refused; try again after a restart."


class HostKeyChangedError(RemoteError):
    """The instance presented a host key other than the one pinned at first connection.
    ``pinned`` and ``presented`` are SHA256 fingerprints."""

    pinned: str | None
    presented: str | None


class RemoteRunError(RemoteError):
    """A run on an instance failed, timed out, was interrupted or was lost. ``run_id``,
    ``state``, ``exit_code``, ``error_type`` (the remote exception's class name, when Python
    said) and ``traceback_tail`` (the last lines of the remote traceback or output)."""

    run_id: str | None
    state: str | None
    exit_code: int | None
    error_type: str | None
    traceback_tail: str


class PythonMismatchError(RemoteError):
    """Values cannot be sent or brought back: the instance's Python (or a library the values
    need) differs from this kernel's in a way pickles do not survive."""


class RemoteKernelError(RemoteError):
    """A remote kernel could not be started or reached, or it ended: its instance stopped or
    restarted, or its process died (``reason`` says which). ``kernel_id`` names it."""

    kernel_id: str | None


class ForwardingRefusedError(RemoteKernelError):
    """The instance's SSH server refuses port forwarding, which a remote kernel needs."""

    default_hint = (
        "novita.run(instance, code) runs code on the instance without port forwarding; "
        "values travel with put= and get=."
    )


class RemoteExecutionError(RemoteError):
    """Code executed in a remote kernel raised. ``ename`` and ``evalue`` are the remote
    exception's class name and text, ``traceback`` its lines (colour codes removed) and
    ``result`` the outputs collected until then. The kernel and its variables are intact."""

    ename: str
    evalue: str
    traceback: list[str]
    result: Any


def is_transient(error: BaseException) -> bool:
    """True when the same call may succeed if tried again later (the one retry policy)."""
    if isinstance(error, TransientError):
        return True
    # An APIError built without the subclass (e.g. by a caller) still counts by its status,
    # unless its reason is a refusal no retry can change.
    return (
        isinstance(error, APIError)
        and (error.status or 0) >= 500
        and error.reason not in PERMANENT_SERVER_REASONS
    )


def may_have_applied(error: BaseException) -> bool:
    """True when a failed write may have reached the API and taken effect anyway: no answer
    (timeout, dropped connection) or a server error. A 429 or an open breaker was never sent."""
    if isinstance(error, RateLimitError | CircuitBreakerError):
        return False
    if isinstance(error, NovitaError) and error.reason in PERMANENT_SERVER_REASONS:
        return False  # the server answered and refused
    if isinstance(error, TimeoutError | NetworkError):
        return True
    return isinstance(error, NovitaError) and (error.status or 0) >= 500


def requested_delay(error: BaseException, now: float | None = None) -> float:
    """Seconds the server (``retry_after``) or the breaker (``retry_at``) asked us to wait
    before calling again; 0.0 when the error says nothing."""
    delay = 0.0
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        delay = max(delay, float(retry_after))
    retry_at = getattr(error, "retry_at", None)
    if isinstance(retry_at, int | float) and not isinstance(retry_at, bool):
        delay = max(delay, float(retry_at) - (time.time() if now is None else now))
    return delay
