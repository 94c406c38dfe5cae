"""Remote command lines built without shell injection: every word is quoted for the POSIX shell
sshd runs them with, so a path, a name or any user text arrives as one literal argument.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..errors import ValidationError

__all__ = ["command_line", "quote"]


def quote(word: str) -> str:
    """One literal word for a POSIX shell; NUL, which no argument can hold, is refused."""
    if not isinstance(word, str):
        raise ValidationError(f"a remote argument must be text, got {type(word).__name__}")
    if "\0" in word:
        raise ValidationError("a remote argument cannot contain a NUL character")
    return shlex.quote(word)


def command_line(argv: Sequence[str]) -> str:
    """``["ls", "-l", "my dir"]`` -> ``ls -l 'my dir'``: what sshd's shell will split back
    into exactly these words."""
    if isinstance(argv, str) or not argv:
        raise ValidationError("a remote command must be a non-empty list of arguments")
    return " ".join(quote(word) for word in argv)
