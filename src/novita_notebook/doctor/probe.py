"""The doctor's own HTTP: read-only GETs with plain ``requests`` and short timeouts, timed,
independent of the client's transport; the key lives only in the session headers. An answer
that is not JSON, or comes from another host than the API's (a redirect), is no answer from
the API: its ``problem`` says why, and the check reading it fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from ..config import is_loopback_host

API_PREFIX = "/gpu-instance/openapi/v1"
OPENAPI_PREFIX = "/openapi/v1"  # the same host's billing namespace: instance metrics
MAX_RETRY_AFTER = 5.0  # a 429 is retried once, waiting at most this long
MAX_REDIRECTS = 3  # followed only on the API's own host
WRONG_KEY = "novita-doctor-deliberately-wrong-key"


@dataclass
class Reply:
    """One answer: HTTP status (0 when no answer came), parsed JSON (None if not JSON),
    seconds taken and, when the call failed outright, the error's class and message."""

    status: int
    data: Any
    seconds: float
    error: str = ""
    retry_after: str = ""
    #: why this is no answer from the API although something answered ("" when it is one):
    #: not JSON (an HTML page, a cut-off body) or a redirect to another host
    problem: str = ""

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

    def get(
        self, path: str, params: dict[str, Any] | None = None, *, namespace: str = API_PREFIX
    ) -> Reply:
        """GET ``path`` of the v1 base (or of ``namespace`` on the same host)."""
        reply = self._get_once(path, params, namespace=namespace)
        if reply.status == 429:
            time.sleep(_retry_after(reply.retry_after))
            reply = self._get_once(path, params, namespace=namespace)
        return reply

    def get_with_wrong_key(self, path: str) -> Reply:
        """GET ``path`` with a deliberately wrong key: how the API answers a bad key."""
        headers = {"Authorization": f"Bearer {WRONG_KEY}"}
        return self._get_once(path, None, headers=headers)

    @property
    def root(self) -> str:
        """Scheme, host and port of the API (no path)."""
        return self.base[: -len(API_PREFIX)]

    def _get_once(
        self,
        path: str,
        params: dict[str, Any] | None,
        *,
        namespace: str = API_PREFIX,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        url = self.base + path if namespace == API_PREFIX else self.root + namespace + path
        started = time.perf_counter()
        try:
            response = self._follow(url, params, headers)
        except requests.Timeout:
            self.timeouts += 1
            return Reply(0, None, time.perf_counter() - started, "timed out")
        except requests.RequestException as exc:
            # The message names host and port; scrubbed anyway in case a URL carried the key.
            text = self.scrub(f"{type(exc).__name__}: {exc}")[:300]
            return Reply(0, None, time.perf_counter() - started, text)
        seconds = time.perf_counter() - started
        self.durations.append(seconds)
        retry_after = response.headers.get("Retry-After", "")
        if response.is_redirect:
            where = host_of(urljoin(response.url, response.headers.get("Location", "")))
            problem = (
                f"redirected to {where}, another host than the API's (the key is not sent "
                "there; point the doctor at the API itself)"
                if not self._same_host(where)
                else f"redirected more than {MAX_REDIRECTS} times"
            )
            return Reply(response.status_code, None, seconds, "", retry_after, problem)
        data, problem = _json_of(response)
        return Reply(response.status_code, data, seconds, "", retry_after, problem)

    def _follow(
        self, url: str, params: dict[str, Any] | None, headers: dict[str, str] | None
    ) -> requests.Response:
        """GET without following redirects, except on the API's own host (a few hops)."""
        response = self._session.get(
            url, params=params, timeout=self.timeout, allow_redirects=False, headers=headers
        )
        for _ in range(MAX_REDIRECTS):
            target = urljoin(response.url, response.headers.get("Location", ""))
            if not response.is_redirect or not self._same_host(host_of(target)):
                return response
            response.close()
            response = self._session.get(
                target, timeout=self.timeout, allow_redirects=False, headers=headers
            )
        return response

    def _same_host(self, where: str) -> bool:
        return where == host_of(self.base)


def _json_of(response: requests.Response) -> tuple[Any, str]:
    """(parsed JSON, "") or (None, why the body is no JSON answer)."""
    body = response.content or b""
    kind = (response.headers.get("Content-Type") or "no content type").split(";")[0].strip()
    if not body.strip():
        return None, f"an empty answer ({kind}), not JSON"
    try:
        return response.json(), ""
    except ValueError:
        start = body.lstrip()[:1]
        what = "cut-off or broken JSON" if start in (b"{", b"[", b'"') else "not JSON"
        return None, f"{what} ({kind}, {len(body)} bytes): not an answer of the Novita API"


def _retry_after(raw: str) -> float:
    try:
        return max(0.0, min(float(raw), MAX_RETRY_AFTER))
    except ValueError:
        return 1.0
