"""docs/options.md written from the option families: one table per family, a row per option
with its grammar, default, variable, flag, cell key, ``%config`` trait and help line.
``python -m novita_notebook.options.docs`` prints it; a test keeps the file equal to it.
"""

from __future__ import annotations

from typing import Any

from . import FAMILIES
from .schema import Family, Option

__all__ = ["options_markdown"]

_HEADER = """# Options

Every input of novita-notebook, declared once in `src/novita_notebook/options/`: the Python
keyword, what it accepts, its default, the environment variable (also read from `.env`), the
`%novita` flag, the `%%novita` cell key and the `%config NovitaMagics.<trait>`. Every surface
checks a value with the same rule, so a mistake reads the same wherever it was typed.

Durations everywhere: seconds as a number, or text such as `90s`, `30m`, `2h`, `1h30m`,
`2 hours`, `1 day`. Deadlines also take a time: `18:00Z` (the next 18:00 UTC), `18:00+02:00`
or `2026-11-27T18:00Z`. Money: a number or text such as `0.5`, `$0.5`, `0.50/h`.

This file is generated (`python -m novita_notebook.options.docs > docs/options.md`).
"""


def _cell(value: Any) -> str:
    if value in (None, "", ()):
        return ""
    text = ", ".join(value) if isinstance(value, tuple) else str(value)
    return f"`{text}`"


def _row(option: Option) -> str:
    names = [option.name, *option.aliases]
    name = ", ".join(f"`{n}`" for n in names) + ("" if option.python else " (magics only)")
    if option.deprecated:
        name += " (was " + ", ".join(f"`{n}`" for n in option.deprecated) + ")"
    default = "" if option.default is None else _cell(repr(option.default))
    env = _cell(option.env)
    flag = _cell(option.flags)
    cell = f"`{option.name}`" if option.cell else ""
    trait = _cell(option.trait)
    accepts = option.kind.metavar + (
        f" (e.g. `{option.kind.example}`)" if option.kind.example else ""
    )
    help_text = option.help.replace("|", "\\|")
    return f"| {name} | {accepts} | {default} | {env} | {flag} | {cell} | {trait} | {help_text} |"


def _table(family: Family) -> str:
    lines = [
        f"## {family.title}",
        "",
        "| keyword | accepts | default | variable | flag | cell key | %config | what it does |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(option) for option in family]
    return "\n".join(lines)


def options_markdown() -> str:
    """The whole of docs/options.md."""
    return _HEADER + "\n" + "\n\n".join(_table(family) for family in FAMILIES) + "\n"


if __name__ == "__main__":  # pragma: no cover - a maintainer's command
    print(options_markdown(), end="")
