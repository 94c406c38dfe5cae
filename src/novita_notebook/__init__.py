"""novita-notebook: provision and manage Novita AI GPU instances from Jupyter.
Import without Jupyter; ``%load_ext novita_notebook`` loads the notebook face lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    APIError,
    AuthenticationError,
    BudgetExceededError,
    CapacityError,
    CircuitBreakerError,
    ConfigError,
    InstanceFailedError,
    InvalidStateError,
    NetworkError,
    NotFoundError,
    NovitaError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TimeoutError,
    TransientError,
    ValidationError,
    WebhookVerificationError,
)
from .models import Cluster, Instance, Product, RegistryAuth, Template, set_instance_html
from .views import instance_card as _instance_card

set_instance_html(_instance_card)  # models draw their card through views without importing it

if TYPE_CHECKING:  # pragma: no cover
    from .client import Novita

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The client pulls in requests and pandas (~0.5 s); import it on first use so that
    # `%load_ext novita_notebook` and `import novita_notebook.errors` stay instant.
    if name == "Novita":
        from .client import Novita

        return Novita
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Novita",
    "Instance",
    "Product",
    "Cluster",
    "Template",
    "RegistryAuth",
    "NovitaError",
    "TransientError",
    "RequestTimeoutError",
    "ServerError",
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
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext novita_notebook``: register the ``%novita`` magics (IPython imported here)."""
    from .notebook.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.magics import unload_ipython_extension as _unload

    _unload(ipython)
