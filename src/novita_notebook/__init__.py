"""novita-notebook: provision and manage Novita AI GPU instances from Jupyter.
Import without Jupyter; ``%load_ext novita_notebook`` loads the notebook face lazily.
"""

from __future__ import annotations

from typing import Any

from .client import Novita
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
    TimeoutError,
    ValidationError,
    WebhookVerificationError,
)
from .models import Cluster, Instance, Product, RegistryAuth, Template

__version__ = "0.1.0"

__all__ = [
    "Novita",
    "Instance",
    "Product",
    "Cluster",
    "Template",
    "RegistryAuth",
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
