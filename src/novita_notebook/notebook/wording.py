"""Errors in the magic's own words: the library's messages and hints speak of Python calls
(``client.instances()``, ``max_price=``); in a ``%novita`` line they name the flag and the
magic that does the same (``--max-price``, ``%novita instances``).
"""

from __future__ import annotations

import re

from ..options import CLIENT, CREATE, GUARD, RUN, WAITING

__all__ = ["in_magic_terms", "PYTHON_TO_MAGIC"]

#: Python calls named in messages and hints → the magic that does the same.
PYTHON_TO_MAGIC: tuple[tuple[str, str], ...] = (
    (r"\bnovita\.wait\('([^']*)', until='([^']*)'\)", r"%novita wait \1 --until \2"),
    (r"\bnovita\.watch\(\['([^']*)'\]\)", r"%novita watch \1"),
    (r"\bnovita\.instance\(\.\.\.\)\.status says", "%novita instances shows it"),
    (r"Pass the values to Novita\(\.\.\.\), set them", "Set them"),
    (r" \(or pass api_key=\.\.\.\)", " (environment or .env, then %novita config --reload)"),
    (r"Novita\.sandbox\(\) or %novita sandbox start", "%novita sandbox start"),
    (r"\b(?:client|novita|Novita)\.instances\(\)", "%novita instances"),
    (r"\b(?:client|novita|Novita)\.mine\(\)", "%novita mine"),
    (r"\b(?:client|novita|Novita)\.templates\(\)", "%novita templates"),
    (r"\b(?:client|novita|Novita)\.storages\(\)", "%novita volumes"),
    (r"\b(?:client|novita|Novita)\.products\(\)", "%novita products"),
    (r"\b(?:client|novita|Novita)\.regions\(\)", "%novita regions"),
    (r"\b(?:client|novita|Novita)\.wait\([^)]*\)", "%novita wait NAME"),
    (r"\b(?:client|novita|Novita)\.watch\(\[?([^)\]]*)\]?\)", r"%novita watch \1"),
    (r"\b(?:client|novita|Novita)\.(start|stop|restart|delete)\('([^']*)'\)", r"%novita \1 \2"),
    (r"\b(?:client|novita|Novita)\.(start|stop|restart|delete)\(([^)]*)\)", r"%novita \1 \2"),
    (r"\b(?:client|novita|Novita)\.guard_status\(\)", "%novita guard status"),
    (
        r"\b(?:novita\.|Novita\.|client\.)?create_storage\([^)]*\)",
        "%novita volumes create NAME --region REGION --size GB",
    ),
    (r'\bgpu="([^"]+)"', r"--gpu \1"),
    (r"\bguard=False\b", "--no-guard"),
)
_FLAGS = {
    option.name: option.flag
    for family in (CREATE, GUARD, WAITING, RUN)
    for option in family
    if option.flag
}
_TRAITS = {option.name: option.trait for option in CLIENT if option.trait}


def _keyword(match: re.Match[str]) -> str:
    """``max_price=`` → ``--max-price``; ``python='...'`` → ``--python ...``; ``shell=True`` →
    ``--shell``; a client setting → its %config trait."""
    name, value = match.group(1), match.group(2) or ""
    if name in _FLAGS:
        if value in ("True", ""):
            return str(_FLAGS[name])
        return f"{_FLAGS[name]} {value.strip(chr(39) + chr(34))}"
    if name in _TRAITS and not value:
        return f"%config NovitaMagics.{_TRAITS[name]}"
    return match.group(0)


def in_magic_terms(text: str, *, fields: bool = True) -> str:
    """``text`` with Python calls and keywords turned into magic syntax; with ``fields`` a
    leading ``field:`` of an option is shown as its flag (a line, not a cell)."""
    for pattern, replacement in PYTHON_TO_MAGIC:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"\b([a-z_]+)=('[^']*'|\"[^\"]*\"|True|(?=[\s),.]|$))", _keyword, text)
    if fields:
        text = re.sub(
            r"(^|\n  - )([a-z_]+):",
            lambda m: m.group(1) + (_FLAGS.get(m.group(2)) or m.group(2)) + ":",
            text,
        )
    return text
