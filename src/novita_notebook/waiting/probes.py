"""Readiness probes: is a running instance actually usable (components up, http ports answering)?
Used by ``Novita.wait(until="reachable")``; any callable ``probe(instance) -> bool`` can replace them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import requests

from ..errors import ValidationError
from ..models import Instance

logger = logging.getLogger(__name__)

#: A readiness probe: True when the instance is usable.
Probe = Callable[[Instance], bool]

# Never send these to an app's endpoint: they identify this package, not the user.
_PROBE_HEADERS = {"User-Agent": "novita-notebook-readiness-probe", "X-Health-Check": "true"}


def components_running(instance: Instance) -> bool:
    """True unless a connection component the instance has (SSH, Jupyter) says it is down.

    A component counts only when present: a Jupyter block with an empty address (how the
    API answers for an instance without a Jupyter port), or none at all (that it is always
    sent is a guess, docs/assumptions.md), says nothing.
    """
    ssh_down = instance.ssh_running is False and bool(instance.ssh_command)
    jupyter_down = instance.jupyter_running is False and bool(instance.jupyter_url)
    return not (ssh_down or jupyter_down)


def endpoint_url(endpoint: str) -> str:
    """Endpoints may come without a scheme (``host:port/path``); probe them over http then."""
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        return "http://" + endpoint
    return endpoint


class HttpProbe:
    """Probe every http port of an instance: ready when each endpoint answers below HTTP 500.

    A port declared ``http`` without an endpoint yet is not ready (the proxy is not wired);
    an instance with no http ports at all has nothing to answer and counts as ready.
    Requests go out on the caller's thread with a short ``timeout`` (seconds) and never carry
    the API key.
    """

    def __init__(self, timeout: float = 2.0, session: requests.Session | None = None) -> None:
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ValidationError(
                f"timeout must be a positive number of seconds, got {timeout!r}", field="timeout"
            )
        self.timeout = float(timeout)
        self.session = session
        #: the last reason the probe said "not ready" (for progress displays and timeouts)
        self.last_reason: str | None = None

    def __call__(self, instance: Instance) -> bool:
        http_ports = [p for p in instance.port_mappings if p.type == "http"]
        for port in http_ports:
            if not port.endpoint:
                self.last_reason = f"port {port.port}/http has no endpoint yet"
                return False
            url = endpoint_url(port.endpoint)
            getter = self.session.get if self.session is not None else requests.get
            try:
                response = getter(
                    url, timeout=self.timeout, allow_redirects=False, headers=_PROBE_HEADERS
                )
            except requests.RequestException as exc:
                self.last_reason = f"port {port.port}/http: {type(exc).__name__}"
                return False
            # Close at once: we only need the status line, and a probe must not hold sockets.
            response.close()
            if response.status_code >= 500:
                self.last_reason = f"port {port.port}/http answered {response.status_code}"
                return False
        self.last_reason = None
        return True

    def __repr__(self) -> str:
        return f"HttpProbe(timeout={self.timeout})"


def is_reachable(instance: Instance, probe: Probe) -> bool:
    """The ``reachable`` condition: running, components up, and the probe says yes."""
    if instance.status != "running" or instance.failed:
        return False
    if not components_running(instance):
        return False
    return bool(probe(instance))
