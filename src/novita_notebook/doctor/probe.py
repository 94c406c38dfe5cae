"""The doctor's own HTTP: read-only GETs with plain ``requests`` and short timeouts, timed,
independent of the client's transport; the key lives only in the session headers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from ..config import is_loopback_host

API_PREFIX = "/gpu-instance/openapi/v1"
MAX_RETRY_AFTER = 5.0  # a 429 is retried once, waiting at most this long


@dataclass
class Reply:
    """One answer: HTTP status (0 when no answer came), parsed JSON (None if not JSON),
    seconds taken and, when the call failed outright, the error's class and message."""

    status: int
    data: Any
    seconds: float
    error: str = ""
    retry_after: str = ""

    @property
    def reason(self) -> str:
        """The error envelope's ``reason`` ("" when there is none)."""
        if isinstance(self.data, dict) and isinstance(self.data.get("reason"), str):
            return self.data["reason"]
        return ""


def api_base(api_url: str) -> str:
    """The v1 base URL: ``https://api.novita.ai`` and the full prefixed URL both work."""
    url = api_url.strip().rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def host_of(api_url: str) -> str:
    """Scheme and host of ``api_url`` (no path, no credentials), for reports."""
    parts = urlsplit(api_url.strip())
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'https'}://{host}{port}"


class Probe:
    """Makes the doctor's GETs and remembers how long each took. Never includes the key in
    anything it returns: error texts are scrubbed of it."""

    def __init__(self, api_url: str, api_key: str, timeout: float) -> None:
        self.base = api_base(api_url)
        self.timeout = (min(3.05, timeout), timeout)
        self.durations: list[float] = []
        self.timeouts = 0
        self._session = requests.Session()
        # As the client's transport: no .netrc credentials, but a corporate proxy still applies.
        self._session.trust_env = False
        if not is_loopback_host(urlsplit(self.base).hostname):
            self._session.proxies.update(requests.utils.get_environ_proxies(self.base))
        self._session.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "novita-notebook-doctor",
            }
        )
        self._secret = api_key

    def __repr__(self) -> str:
        return f"<Probe {host_of(self.base)} calls={len(self.durations)}>"

    def close(self) -> None:
        self._session.close()

    def scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def get(self, path: str, params: dict[str, Any] | None = None) -> Reply:
        reply = self._get_once(path, params)
        if reply.status == 429:
            time.sleep(_retry_after(reply.retry_after))
            reply = self._get_once(path, params)
        return reply

    def _get_once(self, path: str, params: dict[str, Any] | None) -> Reply:
        started = time.perf_counter()
        try:
            response = self._session.get(self.base + path, params=params, timeout=self.timeout)
        except requests.Timeout:
            self.timeouts += 1
            return Reply(0, None, time.perf_counter() - started, "timed out")
        except requests.RequestException as exc:
            # The message names host and port; scrubbed anyway in case a URL carried the key.
            text = self.scrub(f"{type(exc).__name__}: {exc}")[:300]
            return Reply(0, None, time.perf_counter() - started, text)
        seconds = time.perf_counter() - started
        self.durations.append(seconds)
        try:
            data = response.json()
        except ValueError:
            data = None
        return Reply(
            response.status_code, data, seconds, "", response.headers.get("Retry-After", "")
        )


def _retry_after(raw: str) -> float:
    try:
        return max(0.0, min(float(raw), MAX_RETRY_AFTER))
    except ValueError:
        return 1.0
