"""Python values to and from a run (``put``/``get``): pickled here, unpickled there and back.
Before anything is sent, the instance's interpreter is asked its version and the versions of
the libraries the values need; a difference pickles do not survive is reported in words.
"""

from __future__ import annotations

import json
import keyword
import pickle
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import PythonMismatchError, ValidationError

OLDEST_REMOTE = (3, 6)  # what the run wrapper needs
_CONTAINERS = (list, tuple, set, frozenset)


@dataclass(frozen=True)
class RemotePython:
    """What an instance's interpreter said about itself."""

    command: str
    version: tuple[int, ...]
    protocol: int
    modules: dict[str, str | None] = field(default_factory=dict)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def check_names(names: Iterable[str], what: str) -> list[str]:
    """Variable names for put/get: identifiers, not keywords."""
    if isinstance(names, str):
        raise ValidationError(f"{what} must be a list of names, got a string", field=what)
    result = []
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValidationError(f"{what}: {name!r} is not a Python variable name", field=what)
        result.append(name)
    return result


def modules_needed(values: Mapping[str, Any]) -> list[str]:
    """Top-level modules whose classes the values (and what they hold, a level down) are."""
    found: set[str] = set()

    def note(value: Any) -> None:
        module = type(value).__module__.split(".")[0]
        if module not in ("builtins", "__main__"):
            found.add(module)

    for value in values.values():
        note(value)
        if isinstance(value, Mapping):
            inner: Iterable[Any] = value.values()
        elif isinstance(value, _CONTAINERS):
            inner = value
        else:
            continue
        for item in list(inner)[:1000]:
            note(item)
    return sorted(found)


def parse_probe(
    command: str, exit_status: int | None, stdout: bytes, stderr: bytes
) -> RemotePython:
    """The probe's answer, or a PythonMismatchError saying why there is none."""
    if exit_status == 127:
        raise PythonMismatchError(
            f"the instance has no {command!r} to run Python with",
            hint="Pass python='...' (e.g. 'python3.11' or a full path), or run a shell "
            "script instead (shell=True), which needs no Python.",
        )
    try:
        answer = json.loads(stdout.decode(errors="replace").strip().splitlines()[-1])
        version = tuple(int(v) for v in answer["version"])
        return RemotePython(command, version, int(answer["protocol"]), dict(answer["modules"]))
    except (ValueError, KeyError, IndexError, TypeError):
        said = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["nothing"]
        raise PythonMismatchError(
            f"{command!r} on the instance did not answer like Python 3 ({said[0][:200]})",
            hint="Pass python='...' naming a Python 3 interpreter of the instance.",
        ) from None


def _major(version: str | None) -> str | None:
    return version.split(".")[0] if version else None


def check_compatible(remote: RemotePython, needed: list[str]) -> None:
    """Raise PythonMismatchError, in words, if values pickled here would not load there
    (or the reverse): another major Python, a Python too old for the run, a library the
    values need missing there or of another major version."""
    here = sys.version_info
    problems = []
    if remote.version[:1] != (here.major,) or remote.version[:2] < OLDEST_REMOTE:
        problems.append(
            f"the instance's {remote.command} is Python {remote.version_text} and this kernel "
            f"runs {here.major}.{here.minor}.{here.micro}: values pickled by one cannot be "
            "read by the other"
        )
    for module in needed:
        local = sys.modules.get(module)
        local_version = str(getattr(local, "__version__", "")) if local else ""
        theirs = remote.modules.get(module, "")
        if theirs is None:
            problems.append(f"the instance's Python has no {module}, which the values need")
        elif local_version and theirs and _major(local_version) != _major(theirs):
            problems.append(
                f"{module} is {theirs} on the instance and {local_version} here: pickles of "
                "one major version do not load in another"
            )
    if problems:
        raise PythonMismatchError(
            "cannot send or bring back Python values: " + "; ".join(problems),
            hint="Nothing was sent. Pass python='...' to pick another interpreter of the "
            "instance, match the versions, or move the data as files.",
        )


def dumps(values: Mapping[str, Any], protocol: int) -> bytes:
    try:
        return pickle.dumps(dict(values), protocol=min(protocol, pickle.HIGHEST_PROTOCOL))
    except Exception as error:
        raise ValidationError(
            f"put: the values cannot be pickled ({type(error).__name__}: {error})", field="put"
        ) from None


def loads(data: bytes, remote: RemotePython | None) -> dict[str, Any]:
    """The values a run brought back. Unpickling runs code of the instance's choosing: the
    instance is yours, as trusted as this kernel."""
    try:
        values = pickle.loads(data)  # noqa: S301 - the user's own instance
    except Exception as error:
        where = f" (the instance runs Python {remote.version_text})" if remote else ""
        raise PythonMismatchError(
            f"the values came back but cannot be unpickled here{where}: "
            f"{type(error).__name__}: {error}",
            hint="Match the library versions on both sides, or move the data as files.",
        ) from None
    if not isinstance(values, dict):
        raise PythonMismatchError("the values came back in an unexpected shape")
    return values


def protocol_for(remote: RemotePython) -> int:
    return max(2, min(remote.protocol, pickle.HIGHEST_PROTOCOL, 5))
