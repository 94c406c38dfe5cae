"""Every option, on every surface that exposes it, is checked by its one rule: the same bad
value gives the same words from Python (Novita(), create(), guard(), wait(), watch()), a magic
flag, a ``%%novita create`` cell key, ``%config NovitaMagics``, the create form and the
environment. The tables below must name every option of every family, so an option added
without a way to check it fails here.
"""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError
from traitlets import TraitError

from novita_notebook.config import load_config
from novita_notebook.errors import ValidationError
from novita_notebook.options import (
    CLIENT,
    CREATE,
    FAMILIES,
    FILES,
    GUARD,
    RUN,
    SESSION,
    WAITING,
)

KEY = "sk_test_0123456789abcdef"
NO_TEXT = None  # every non-empty text is well formed for this option (its rule is about types)

#: option → (a bad Python value, the same mistake as typed text, or NO_TEXT)
BAD: dict[str, dict[str, tuple[object, object]]] = {
    "client": {
        "api_key": ("bad key", "bad key"),
        "api_url": ("ftp://nowhere", "ftp://nowhere"),
        "webhook_url": ("ftp://nowhere", "ftp://nowhere"),
        "webhook_secret": ("short", "short"),
        "spend_limit_per_hour": ("lots", "lots"),
        "default_region": (5, NO_TEXT),
        "poll_interval": ("soon", "soon"),
        "max_concurrency": (0, "0"),
        "timeout": (("0", 5), "0,5"),
        "max_retries": (21, "21"),
        "cache_ttl": ("soon", "soon"),
        "rate_limit_per_second": (0.0, "0"),
        "env_file": (5, NO_TEXT),
        "retry_backoff": ("soon", "soon"),
        "retry_backoff_max": ("soon", "soon"),
        "breaker_threshold": (0, "0"),
        "breaker_reset_timeout": ("soon", "soon"),
    },
    "create": {
        "name": ("bad_name", "bad_name"),
        "gpu": (5, NO_TEXT),
        "gpu_num": (0, "0"),
        "template": (5, NO_TEXT),
        "image": ("Bad/Image!", "Bad/Image!"),
        "region": (5, NO_TEXT),
        "regions": ([], ", ,"),
        "billing": ("weekly", "weekly"),
        "max_price": ("cheap", "cheap"),
        "rootfs_gb": (9, "9"),
        "ports": ("80/udp", "80/udp"),
        "envs": ({"1A": "x"}, "1A=x"),
        "command": ("x" * 2048, "x" * 2048),
        "entrypoint": ("x" * 2048, "x" * 2048),
        "image_auth_id": (5, NO_TEXT),
        "network_storages": ([("ns-1", "/")], NO_TEXT),
        "volumes": ("data:/../etc", "data:/../etc"),
        "prefer": ("cheapest", "cheapest"),
        "unique_name": ("maybe", "maybe"),
        "wait": ("maybe", "maybe"),
        "wait_until": ("up", "up"),
        "timeout": ("soon", "soon"),
        "progress": (3, NO_TEXT),
        "background": ("maybe", "maybe"),
        "no_guard": ("maybe", "maybe"),
    },
    "guard": {
        "stop_after": ("soon", "soon"),
        "delete_after": ("soon", "soon"),
        "idle_stop": ("soon", "soon"),
        "idle_threshold": ("150", "150"),
        "budget_per_hour": ("lots", "lots"),
        "budget_total": ("lots", "lots"),
        "warn_before": ("soon", "soon"),
        "on_reclaim": ("explode", "explode"),
    },
    "waiting": {
        "until": ("up", "up"),
        "timeout": ("soon", "soon"),
        "progress": (3, NO_TEXT),
        "poll": ("soon", "soon"),
        "interval": ("soon", "soon"),
        "page_size": (0, "0"),
        "stop_when_terminal": ("maybe", "maybe"),
        "keep": ("maybe", "maybe"),
    },
    "run": {
        "detach": ("maybe", "maybe"),
        "put": (["not a name"], "not a name"),
        "get": (["not a name"], "not a name"),
        "python": (5, NO_TEXT),
        "shell": ("maybe", "maybe"),
        "timeout": ("soon", "soon"),
        "env": ({"1A": "x"}, "1A=x"),
        "max_output": (-1, "-1"),
    },
    "files": {
        "ignore": (["ok", 5], NO_TEXT),
        "default_ignore": ("maybe", "maybe"),
        "no_default_ignore": ("maybe", "maybe"),
        "checksum": ("maybe", "maybe"),
    },
    "session": {
        "auto_sandbox": ("maybe", "maybe"),
        "short_errors": ("maybe", "maybe"),
        "sandbox_speed": (0.0, "0"),
        "guard_autostart": ("maybe", "maybe"),
    },
}
CASES = [
    pytest.param(family, option, id=f"{family.name}.{option.name}")
    for family in FAMILIES
    for option in family
]


def test_the_tables_name_every_option():
    assert {family.name: set(family.names()) for family in FAMILIES} == {
        name: set(options) for name, options in BAD.items()
    }


def rule_of(error: ValidationError, name: str) -> str:
    """The rule ``error`` states for ``name``."""
    for field, rule in error.problems:
        if field == name:
            return rule
    raise AssertionError(f"{error!r} says nothing about {name}")


def after(prefix: str, text: str) -> str:
    """The rule written after ``prefix`` on one line of ``text``."""
    match = re.search(re.escape(prefix) + r"(.*)", text)
    assert match is not None, f"{prefix!r} not in {text!r}"
    return match.group(1).strip()


def python_rule(family, option, value, client) -> str | None:
    """The rule from the Python call that takes this option (None: it has none)."""
    name = option.name
    if not option.python:
        return None
    if family is CLIENT:
        with pytest.raises(ValidationError) as caught:
            load_config(**{"env_file": False, "environ": {}, "api_key": KEY, name: value})
        return rule_of(caught.value, name)
    if family is CREATE:
        with pytest.raises(ValidationError) as caught:
            client.create(**{"name": "ok-1", "gpu": "4090", name: value})
        return rule_of(caught.value, name)
    if family is GUARD:
        keyword = (option.aliases or (name,))[0]
        with pytest.raises(ValidationError) as caught:
            client.create("ok-1", gpu="4090", **{keyword: value})
        from_create = rule_of(caught.value, name)
        with pytest.raises(ValidationError) as caught:
            client.guard("anything", **{name: value})
        assert rule_of(caught.value, name) == from_create
        return from_create
    if family is WAITING:
        call = client.watch if name in ("interval", "page_size", "stop_when_terminal") else None
        with pytest.raises(ValidationError) as caught:
            (call or (lambda **kw: client.wait("anything", **kw)))(**{name: value})
        return rule_of(caught.value, name)
    if family is RUN:
        with pytest.raises(ValidationError) as caught:
            client.run("anything", "print(1)", **{name: value})
        return rule_of(caught.value, name)
    if family is FILES:
        for call in (lambda **kw: client.push("anything", ".", **kw),
                     lambda **kw: client.pull("anything", "x", **kw)):  # fmt: skip
            with pytest.raises(ValidationError) as caught:
                call(**{name: value})
            found = rule_of(caught.value, name)
        return found
    with pytest.raises(ValidationError) as caught:
        option.parse(value)
    return rule_of(caught.value, name)


def text_rules(family, option, text, ip, magics, client, capsys) -> dict[str, str]:
    """The rule every text surface of this option states for ``text``, by surface."""
    found: dict[str, str] = {}
    name = option.name
    if option.flag and not option.kind.switch:
        line = {
            "create": f"create ok-1 --gpu 4090 {option.flag} '{text}'",
            "guard": f"guard ok-1 {option.flag} '{text}'",
            "waiting": f"{'watch' if name == 'interval' else 'wait ok-1'} {option.flag} '{text}'",
        }.get(family.name)
        if line is not None:
            with pytest.raises(UsageError) as caught:
                ip.run_line_magic("novita", line)
            found["flag"] = after(f"argument {'/'.join(option.flags)}: ", str(caught.value))
        if family is GUARD:
            with pytest.raises(UsageError) as caught:
                ip.run_line_magic("novita", f"create ok-1 --gpu 4090 {option.flag} '{text}'")
            assert after(f"argument {'/'.join(option.flags)}: ", str(caught.value)) == found["flag"]
        if family is RUN:  # the first line of %%novita run
            with pytest.raises(UsageError) as caught:
                ip.run_cell_magic("novita", f"run ok-1 {option.flag} '{text}'", "print(1)")
            found["flag"] = after(f"argument {'/'.join(option.flags)}: ", str(caught.value))
    if option.cell and family in (CREATE, GUARD):
        capsys.readouterr()
        lines = {"name": "ok-1", "gpu": "4090", name: text}
        body = "\n".join(f"{key}: {value}" for key, value in lines.items())
        assert ip.run_cell_magic("novita", "create", body) is None
        found["cell"] = after(f"{name}: ", capsys.readouterr().err)
    if option.form is not None:
        from novita_notebook.notebook.form import CreateForm

        form = CreateForm(client, **{"name": "ok-1", "gpu": "4090", name: text})
        assert form.validate() is None
        found["form"] = form.problems[name]
    if option.env is not None and family is CLIENT:
        key = {} if name == "api_key" else {"api_key": KEY}
        with pytest.raises(ValidationError) as caught:
            load_config(env_file=False, environ={option.env: str(text)}, **key)
        found["env"] = rule_of(caught.value, name)
    return found


def trait_rule(option, value, magics) -> str | None:
    if not option.trait:
        return None
    with pytest.raises(TraitError) as caught:
        setattr(magics, option.trait, value)
    return after(f"NovitaMagics.{option.trait}: ", str(caught.value))


@pytest.mark.parametrize(("family", "option"), CASES)
def test_one_bad_value_reads_the_same_on_every_surface(
    family, option, ip, magics, client, sandbox, capsys
):
    value, text = BAD[family.name][option.name]
    sandbox.clear_requests()
    rules = {"python": python_rule(family, option, value, client)}
    rules["%config"] = trait_rule(option, value, magics)
    if text is not NO_TEXT:
        rules.update(text_rules(family, option, text, ip, magics, client, capsys))
        parsed = pytest.raises(ValidationError, option.parse_text, text)
        rules["text"] = rule_of(parsed.value, option.name)
    seen = {surface: rule for surface, rule in rules.items() if rule is not None}
    assert len(set(seen.values())) == 1, seen
    if family is GUARD and text is not NO_TEXT:  # the user's NOVITA_GUARD_* default
        from novita_notebook.guard.rules import rules_from_env

        with pytest.raises(ValidationError) as caught:
            rules_from_env(environ={option.env: str(text)}, env_file=False)
        assert caught.value.field == option.env
        assert next(iter(set(seen.values()))) in str(caught.value)
    # Nothing was sent (the form lists the volumes it offers; that is a read).
    assert [r for r in sandbox.requests() if r["method"] != "GET"] == []


def test_every_surface_is_exercised_somewhere():
    """Each family reaches the surfaces it declares: flags, cell keys, traits, form, env."""
    declared = {
        "flag": [o for f in (CREATE, GUARD, WAITING, RUN, FILES) for o in f if o.flag],
        "cell": [o for f in (CREATE, GUARD) for o in f if o.cell],
        "trait": [o for f in (CLIENT, CREATE, GUARD, SESSION) for o in f if o.trait],
        "form": [o for o in CREATE if o.form],
        "env": [o for o in CLIENT if o.env],
    }
    for surface, options in declared.items():
        assert options, surface
