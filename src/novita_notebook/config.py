"""The client's settings as one live object: loaded from arguments, then the environment, then a
.env file (every problem in one ConfigError), and changed later only through the rules of
``options.client.CLIENT``. The API key is never kept here, only its mask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, ValidationError
from .options.client import (
    API_PREFIX,
    CLIENT,
    DEFAULT_API_URL,
    MIN_WEBHOOK_SECRET_LENGTH,
    is_loopback_host,
)
from .options.schema import Option, deprecated_name
from .options.session import SANDBOX_SPEED

__all__ = [
    "Config",
    "load_config",
    "mask_secret",
    "is_loopback_host",
    "API_PREFIX",
    "DEFAULT_API_URL",
    "MIN_WEBHOOK_SECRET_LENGTH",
    "SANDBOX_SPEED",
]

#: Settings the Config object holds: every client option but the key itself.
_HELD = tuple(option.name for option in CLIENT if option.name not in ("api_key", "env_file"))
_MISSING_KEY = (
    "missing: pass api_key=..., set NOVITA_API_KEY or put it in a .env file "
    "(or use Novita.sandbox() offline)"
)


def mask_secret(secret: str | None) -> str | None:
    """``"sk_live_abcdef"`` → ``"sk_l…"``; short secrets show nothing but the ellipsis."""
    if not secret:
        return None
    # Showing four characters of a very short secret would reveal most of it.
    return (secret[:4] if len(secret) >= 8 else "") + "…"


class Config:
    """The effective settings of a client; it never holds the API key, only its mask.

    Read them as attributes (``config.poll_interval``). Change a live one (``default_region``,
    ``spend_limit_per_hour``, ``poll_interval``) by assigning it or with ``set``: the value goes
    through the same rule as ``Novita(...)``, and every service sees it at once. ``reset``
    brings back the value the client was made with. ``api_url`` includes the
    ``/gpu-instance/openapi/v1`` prefix; ``sources`` says where each value came from
    (``argument``, ``environment``, ``.env``, ``default`` or what set it later).
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        *,
        masked_key: str | None = None,
        sources: Mapping[str, str] | None = None,
        env_file: str | None = None,
    ) -> None:
        data = {name: CLIENT[name].default for name in _HELD}
        data.update({k: v for k, v in values.items() if k in _HELD})
        object.__setattr__(self, "_values", data)
        object.__setattr__(self, "_loaded", dict(data))
        object.__setattr__(self, "masked_key", masked_key)
        object.__setattr__(self, "env_file", env_file)
        object.__setattr__(self, "sources", dict(sources or {}))
        object.__setattr__(self, "_loaded_sources", dict(self.sources))

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        option = CLIENT.get(name)
        if option is not None and name in option.deprecated:
            deprecated_name(name, option.name, "the client settings")
            return values[option.name]
        raise AttributeError(f"{type(self).__name__!r} has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def set(self, name: str, value: Any, source: str = "set") -> Any:
        """Change a live setting through its rule (None clears it); returns the new value."""
        option = self._live_option(name)
        parsed = option.parse(value)
        self._values[option.name] = parsed
        self.sources[option.name] = source
        return parsed

    def reset(self, name: str) -> Any:
        """The setting back to what the client was made with; returns that value."""
        option = self._live_option(name)
        self._values[option.name] = self._loaded[option.name]
        self.sources[option.name] = self._loaded_sources.get(option.name, "default")
        return self._values[option.name]

    def _live_option(self, name: str) -> Option:
        option = CLIENT.get(name)
        if option is None or option.name not in _HELD:
            raise ValidationError(
                f"{name}: not a client setting; settings: {', '.join(_HELD)}", field=name
            )
        if name in option.deprecated:
            deprecated_name(name, option.name, "the client settings")
        if not option.live:
            raise ValidationError(
                f"{option.name}: fixed when the client is made; make a new Novita("
                f"{option.name}=...) to change it",
                field=option.name,
            )
        return option

    @property
    def base_url(self) -> str:
        """The API URL without the v1 prefix (``https://api.novita.ai``)."""
        url = self.api_url
        return url[: -len(API_PREFIX)] if url.endswith(API_PREFIX) else url

    @property
    def masked_webhook_secret(self) -> str | None:
        return mask_secret(self.webhook_secret)

    def to_dict(self) -> dict[str, Any]:
        """Effective settings, secrets masked (safe to print, log or show in a notebook)."""
        out: dict[str, Any] = {"api_url": self.api_url, "api_key": self.masked_key}
        for name in _HELD:
            out[name] = (
                mask_secret(self._values[name]) if CLIENT[name].secret else self._values[name]
            )
        out["env_file"] = self.env_file
        return out

    def __repr__(self) -> str:
        return f"Config(api_url={self.api_url!r}, api_key={self.masked_key!r})"

    __str__ = __repr__


def load_config(
    api_key: str | None = None,
    api_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **settings: Any,
) -> tuple[Config, str]:
    """Resolve and validate the settings of ``options.client.CLIENT``; return
    ``(config, api_key)``.

    Precedence: argument (not None), then the environment (``environ``, default
    ``os.environ``), then the .env file (``env_file``; default ``.env`` in the working
    directory if present; ``False`` skips it), then the option's default. The .env file is read
    with ``dotenv_values`` and never changes os.environ. Raises one ConfigError listing every
    problem found (unknown keywords included).
    """
    problems: list[tuple[str, str]] = []
    try:
        given = CLIENT.canonical({"api_key": api_key, "api_url": api_url, **settings}, "Novita()")
    except ValidationError as error:
        raise ConfigError(error.message, field=error.field, problems=error.problems) from None
    for name in given:
        if name not in CLIENT:
            problems.append((name, "not a setting of Novita()"))
    dotenv, env_file_used = _read_env_file(given.get("env_file"), problems)
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in CLIENT:
        if option.name == "env_file":
            continue
        raw, source, variable = _raw_value(option, given.get(option.name), environ, dotenv)
        sources[option.name] = source
        if raw is None:
            values[option.name] = option.parse(option.default)
            continue
        try:
            values[option.name] = (
                option.parse(raw) if source == "argument" else option.parse_text(raw)
            )
        except ValidationError as error:
            label = option.name if variable is None else f"{option.name} ({variable})"
            problems.extend((label, rule) for _field, rule in error.problems)
    key = values.pop("api_key", None)
    if key is None and not any(name.split(" ")[0] == "api_key" for name, _ in problems):
        problems.insert(0, ("api_key", _MISSING_KEY))
    if problems:
        lines = "\n".join(f"  - {name}: {rule}" for name, rule in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise ConfigError(
            f"invalid configuration ({count}):\n{lines}",
            field=problems[0][0].split(" ")[0],
            problems=[(name.split(" ")[0], rule) for name, rule in problems],
        )
    config = Config(values, masked_key=mask_secret(key), sources=sources, env_file=env_file_used)
    return config, key


def _raw_value(
    option: Option, argument: Any, environ: Mapping[str, str], dotenv: Mapping[str, str]
) -> tuple[Any, str, str | None]:
    """(raw value, where it came from, the variable that gave it) for one option."""
    if argument is not None:
        return argument, "argument", None
    for variable in (option.env, *option.deprecated_env):
        if variable is None:
            continue
        for values, source in ((environ, "environment"), (dotenv, ".env")):
            text = values.get(variable)
            if text is not None and str(text).strip():
                if variable != option.env:
                    deprecated_name(variable, str(option.env), "the environment")
                return text, source, variable
    return None, "default", None


def _read_env_file(
    env_file: Any, problems: list[tuple[str, str]]
) -> tuple[dict[str, str], str | None]:
    """Values of the .env file (never written into os.environ) and the path used."""
    if env_file is False:
        return {}, None
    if env_file is None or env_file is True:
        path = Path.cwd() / ".env"
        if not path.is_file():
            return {}, None  # the default file is optional
    else:
        try:
            path = CLIENT["env_file"].parse(env_file)
        except ValidationError as error:
            problems.extend(error.problems)
            return {}, None
    from dotenv import dotenv_values  # imported here: only needed when a file exists

    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(("env_file", f"cannot read {str(path)!r}: {type(exc).__name__}"))
        return {}, None
    return {k: v for k, v in values.items() if v is not None}, str(path)
