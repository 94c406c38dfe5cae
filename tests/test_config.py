"""Config: precedence (argument > environment > .env), validation in one error, masking.
Pure unit tests: no network.
"""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.config import API_PREFIX, is_loopback_host, load_config, mask_secret
from novita_notebook.errors import ConfigError

KEY = "sk_test_0123456789abcdef"
SECRET = "whsec-0123456789abcdef"


def test_defaults_and_prefix(monkeypatch):
    monkeypatch.setenv("NOVITA_API_KEY", KEY)
    config, key = load_config()
    assert key == KEY
    assert config.api_url == "https://api.novita.ai" + API_PREFIX
    assert config.masked_key == "sk_t…"
    assert config.timeout == (5.0, 30.0)
    assert config.max_retries == 4 and config.cache_ttl == 300 and config.max_concurrency == 8
    assert config.sources["api_key"] == "environment"
    assert config.sources["api_url"] == "default"


def test_prefix_not_doubled_and_trailing_slash():
    config, _ = load_config(KEY, "https://example.test/")
    assert config.api_url == "https://example.test" + API_PREFIX
    config, _ = load_config(KEY, "https://example.test" + API_PREFIX + "/")
    assert config.api_url == "https://example.test" + API_PREFIX
    assert config.base_url == "https://example.test"


def test_argument_beats_environment_beats_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        "NOVITA_API_KEY=from-dotenv-key-000\n"
        "NOVITA_API_URL=https://dotenv.example\n"
        "WEBHOOK_URL=https://hooks.example/x\n"
        f"WEBHOOK_SECRET={SECRET}\n"
        "NOVITA_BUDGET_PER_HOUR=2.5\n"
    )
    # .env alone
    config, key = load_config()
    assert key == "from-dotenv-key-000"
    assert config.api_url.startswith("https://dotenv.example")
    assert config.webhook_url == "https://hooks.example/x"
    assert config.webhook_secret == SECRET
    assert config.budget_per_hour == 2.5
    assert config.sources["api_key"] == ".env"
    assert config.env_file == str(tmp_path / ".env")
    # environment beats .env
    monkeypatch.setenv("NOVITA_API_KEY", "from-environ-key-00")
    monkeypatch.setenv("NOVITA_BUDGET_PER_HOUR", "7")
    config, key = load_config()
    assert key == "from-environ-key-00" and config.budget_per_hour == 7.0
    # argument beats both
    config, key = load_config("from-argument-key-0", budget_per_hour=1)
    assert key == "from-argument-key-0" and config.budget_per_hour == 1.0
    assert config.sources["api_key"] == "argument"


def test_dotenv_never_touches_os_environ(tmp_path):
    import os

    (tmp_path / ".env").write_text("NOVITA_API_KEY=dotenv-only-key-123\n")
    load_config()
    assert "NOVITA_API_KEY" not in os.environ


def test_explicit_env_file_and_disabled(tmp_path):
    other = tmp_path / "custom.env"
    other.write_text("NOVITA_API_KEY=custom-file-key-99\n")
    (tmp_path / ".env").write_text("NOVITA_API_KEY=default-file-key-9\n")
    assert load_config(env_file=other)[1] == "custom-file-key-99"
    with pytest.raises(ConfigError) as info:
        load_config(env_file=False)
    assert info.value.problems[0][0] == "api_key"
    with pytest.raises(ConfigError, match="env_file: file not found"):
        load_config(KEY, env_file=tmp_path / "missing.env")


def test_every_problem_in_one_error():
    with pytest.raises(ConfigError) as info:
        load_config(
            None,
            "ftp://nowhere",
            webhook_secret="short",
            budget_per_hour=-3,
            max_concurrency=0,
            timeout=(0, 5),
            max_retries=-1,
            cache_ttl=-1,
            rate_limit_per_second=0,
        )
    error = info.value
    fields = [name for name, _ in error.problems]
    for expected in (
        "api_key",
        "api_url",
        "webhook_secret",
        "budget_per_hour",
        "max_concurrency",
        "timeout",
        "max_retries",
        "cache_ttl",
        "rate_limit_per_second",
    ):
        assert expected in fields, expected
        assert expected in str(error)
    assert "9 problems" in str(error)
    assert "negative" in dict(error.problems)["budget_per_hour"]
    assert "16" in dict(error.problems)["webhook_secret"]
    assert isinstance(error, ValueError)  # ConfigError is a ValidationError is a ValueError


def test_secret_values_never_in_the_error():
    with pytest.raises(ConfigError) as info:
        load_config("bad key with spaces", webhook_secret="tiny-secret")
    text = str(info.value) + repr(info.value)
    assert "bad key with spaces" not in text
    assert "tiny-secret" not in text


@pytest.mark.parametrize(
    "url",
    ["http://api.novita.ai", "http://10.0.0.5:8080", "http://example.com/gpu-instance/openapi/v1"],
)
def test_plain_http_refused_for_remote_hosts(url):
    with pytest.raises(ConfigError, match="plain http"):
        load_config(KEY, url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.8.9.10", "http://localhost:1", "http://[::1]:9"]
)
def test_plain_http_allowed_for_loopback(url):
    config, _ = load_config(KEY, url)
    assert config.api_url.startswith(url)


@pytest.mark.parametrize(
    "url,rule",
    [
        ("not a url", "must start with https://"),
        ("https://", "has no host"),
        ("https://user:pw@api.novita.ai", "credentials"),
        ("https://api.novita.ai:notaport", "not a valid URL"),
    ],
)
def test_malformed_urls(url, rule):
    with pytest.raises(ConfigError, match=rule) as info:
        load_config(KEY, url)
    assert "pw@" not in str(info.value)


def test_budget_from_environment_must_be_a_number(monkeypatch):
    monkeypatch.setenv("NOVITA_BUDGET_PER_HOUR", "lots")
    with pytest.raises(ConfigError, match="budget_per_hour: must be a number"):
        load_config(KEY)


def test_masking():
    assert mask_secret("sk_live_abcdefgh") == "sk_l…"
    assert mask_secret("short") == "…"
    assert mask_secret(None) is None
    config, _ = load_config(KEY, webhook_secret=SECRET)
    text = repr(config) + str(config) + str(config.to_dict())
    assert KEY not in text and SECRET not in text
    assert config.to_dict()["api_key"] == "sk_t…"
    assert config.to_dict()["webhook_secret"] == "whse…"


def test_client_repr_shows_only_masked_key():
    client = Novita(KEY, "http://127.0.0.1:9")
    try:
        text = repr(client) + str(client) + repr(client.config) + repr(client.api.transport)
        assert KEY not in text
        assert "sk_t…" in repr(client) and "127.0.0.1:9" in repr(client)
        assert not hasattr(client.config, "api_key")
    finally:
        client.close()


def test_client_construction_validates():
    with pytest.raises(ConfigError, match="api_key"):
        Novita()


def test_loopback_detection():
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("[::1]")
    assert is_loopback_host("localhost") and is_loopback_host("LOCALHOST")
    assert not is_loopback_host("128.0.0.1") and not is_loopback_host("example.com")
    assert not is_loopback_host("localhost.evil.com")
