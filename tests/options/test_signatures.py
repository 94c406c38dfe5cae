"""The Python surfaces are real signatures (what help() and an IDE show) and they match the
schemas: every option of a family is a keyword of its call, with the declared default."""

from __future__ import annotations

import inspect

import pytest

from novita_notebook import Novita
from novita_notebook.options import CLIENT, CREATE, FILES, GUARD, RUN, WAITING


def _keywords(function) -> dict[str, inspect.Parameter]:
    params = inspect.signature(function).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()), (
        f"{function.__qualname__} hides its keywords behind **kwargs"
    )
    return {name: p for name, p in params.items() if name != "self"}


def _same_default(option, parameter) -> bool:
    default = parameter.default
    return default in (None, inspect.Parameter.empty) or default == option.default


@pytest.mark.parametrize(
    ("function", "families", "extra"),
    [
        (Novita.__init__, [CLIENT], {"budget_per_hour"}),
        (Novita.create, [CREATE, GUARD], {"guard"}),
        (Novita.wait, [], {"instance", "until", "timeout", "progress", "probe", "poll"}),
        (Novita.wait_async, [], {"instance", "until", "timeout", "progress", "probe", "poll"}),
        (Novita.run, [RUN], {"instance", "code", "on_output"}),
        (Novita.push, [FILES], {"instance", "local", "remote", "progress"}),
        (Novita.pull, [FILES], {"instance", "local", "remote", "progress"}),
    ],
    ids=["Novita()", "create", "wait", "wait_async", "run", "push", "pull"],
)
def test_signatures_match_their_families(function, families, extra):
    keywords = _keywords(function)
    declared = {}
    for family in families:
        for option in family:
            if not option.python:
                continue
            spelling = next((s for s in option.spellings if s in keywords), None)
            assert spelling is not None, f"{function.__qualname__} lacks {option.name}"
            assert _same_default(option, keywords[spelling]), (option.name, keywords[spelling])
            declared[spelling] = option
    if function.__name__.startswith("wait"):
        for option in (o for o in WAITING if o.name in keywords and o.python):
            assert _same_default(option, keywords[option.name]), option.name
            declared[option.name] = option
    assert set(keywords) - set(declared) <= extra, set(keywords) - set(declared) - extra


def test_watch_takes_the_waiting_options_it_declares():
    keywords = _keywords(Novita.watch)
    for name in ("interval", "page_size", "stop_when_terminal"):
        assert _same_default(WAITING[name], keywords[name])


def test_the_deprecated_spelling_is_the_only_keyword_not_in_the_schema():
    assert CLIENT["spend_limit_per_hour"].deprecated == ("budget_per_hour",)
    assert "spend_limit_per_hour" in inspect.signature(Novita).parameters
