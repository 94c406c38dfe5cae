"""The API key never travels in clear text: plain http:// is refused for any non-loopback host
before a connection is made, and accepted only for loopback (the sandbox).
"""

from __future__ import annotations

import socket

import pytest
from secret_scan import API_KEY

from novita_notebook import Novita
from novita_notebook.errors import ConfigError, ValidationError


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test: refusal must happen before connecting."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize(
    "url",
    [
        "http://api.novita.ai",
        "http://api.novita.ai/gpu-instance/openapi/v1",
        "http://example.com:8080",
        "http://10.0.0.5",
        "http://192.168.1.20:8787",
        "http://[2001:db8::1]",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.com",
        "HTTP://API.NOVITA.AI",
    ],
)
def test_plain_http_to_a_remote_host_is_refused(url, no_network):
    with pytest.raises(ValidationError) as caught:
        Novita(api_key=API_KEY, api_url=url)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert error.field == "api_url"
    assert "http" in str(error).lower()
    assert API_KEY not in str(error) and API_KEY not in repr(error)


@pytest.mark.parametrize(
    "url",
    ["ftp://api.novita.ai", "api.novita.ai", "https://", "https://user:pw@api.novita.ai"],
)
def test_urls_that_are_not_https_urls_are_refused(url, no_network):
    with pytest.raises(ValidationError) as caught:
        Novita(api_key=API_KEY, api_url=url)
    assert caught.value.field == "api_url"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "http://127.8.9.10:9"]
)
def test_plain_http_to_loopback_is_accepted(url, no_network):
    client = Novita(api_key=API_KEY, api_url=url)
    try:
        assert client.config.api_url.startswith(url.rstrip("/"))
    finally:
        client.close()


def test_https_to_a_remote_host_is_accepted_without_connecting(no_network):
    client = Novita(api_key=API_KEY, api_url="https://api.novita.ai")
    try:
        assert client.config.api_url == "https://api.novita.ai/gpu-instance/openapi/v1"
    finally:
        client.close()


def test_plain_http_from_the_environment_is_refused_too(monkeypatch, no_network):
    monkeypatch.setenv("NOVITA_API_KEY", API_KEY)
    monkeypatch.setenv("NOVITA_API_URL", "http://api.novita.ai")
    with pytest.raises(ConfigError) as caught:
        Novita()
    assert caught.value.field == "api_url"
