"""``%novita create``, ``%%novita create`` and ``%novita wait``: text becomes one library call
(``create(..., wait=...)``, ``wait(...)``); Ctrl-C ends with one resume message, printed last.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ...errors import NovitaError, ValidationError
from .. import spec as specs
from ..display import display_now
from ..parser import CREATE_FLAGS, option_values
from .common import Client, Session, accepted

#: How the library's own Ctrl-C message begins; the magic prints its own, in magic terms.
_LIBRARY_INTERRUPT = "Stopped waiting for "


class LazyProgress:
    """A WaitProgress drawn at its first update, so a wait the library refuses (bad timeout,
    unknown status) draws nothing; ``finish`` is a no-op if nothing was drawn."""

    def __init__(self, name: str, until: str) -> None:
        self.name = name
        self.until = until
        self.shown: Any = None

    def update(self, instance: Any, elapsed: float, phase: str) -> None:
        if self.shown is None:
            from ..widgets import WaitProgress

            self.shown = WaitProgress(self.name, until=self.until).display()
        self.shown.update(instance, elapsed, phase)

    def finish(self) -> None:
        if self.shown is not None:
            self.shown.finish()


class _DropLibraryInterrupt:
    """stderr that forwards everything but the library's Ctrl-C message (and its newline)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._dropping = False

    def write(self, text: str) -> int:
        if text.startswith(_LIBRARY_INTERRUPT):
            self._dropping = True
            return len(text)
        if self._dropping and text == "\n":
            self._dropping = False
            return len(text)
        self._dropping = False
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _one_interrupt_message() -> Iterator[None]:
    """Keep the library's Ctrl-C message out, so the magic's is the only one (the magic owns
    the display, and its message speaks of magics)."""
    original = sys.stderr
    sys.stderr = _DropLibraryInterrupt(original)
    try:
        yield
    finally:
        sys.stderr = original


def _interruptible(call: Callable[[], Any], progress: LazyProgress | None) -> tuple[Any, bool]:
    """(result, interrupted): the progress display is finished before anything is printed."""
    try:
        with _one_interrupt_message():
            return call(), False
    except KeyboardInterrupt:
        return None, True
    finally:
        if progress is not None:
            progress.finish()


def _find(client: Client, name: str) -> Any:
    """The instance called ``name`` after a Ctrl-C, or None if it cannot be seen (yet)."""
    try:
        return client.instance(name)
    except (NovitaError, KeyboardInterrupt):
        return None


def guard_words(client: Client, name: str, instance: Any) -> str:
    """After a Ctrl-C in a create: whether what was made is guarded, and by which rules (the
    rules are stored before the create request goes out, so an intent counts too)."""
    guards = getattr(client, "guards", None)
    if guards is None:
        return ""
    try:
        store = guards.store
        record = store.get(instance.id) if instance is not None else None
        rules = record.rules if record is not None else None
        if rules is None:
            rules = next((i.rules for i in store.intents() if i.name == name), None)
    except Exception:  # the store is read for words only: never hide the resume message
        return ""
    if rules is None:
        return f" It is not guarded: %novita guard {name} --stop-after 2h bounds it."
    return f" It is guarded ({rules.describe()}), even if this kernel stops."


def resume_message(name: str, instance: Any, until: str = "running", guarded: str = "") -> str:
    """The one message after Ctrl-C: what exists, whether it is guarded, and how to go on from
    the notebook."""
    if instance is None:
        return (
            f"Interrupted; no instance named {name} is visible on Novita yet. Check with "
            f"%novita instances (a create that reached Novita may still appear).{guarded}"
        )
    status = getattr(instance, "status", None) or "unknown"
    until_flag = "" if until == "running" else f" --until {until}"
    return (
        f"Stopped waiting; {name} ({instance.id}, {status}) keeps going on Novita and is billed "
        f"while it runs.{guarded} Resume with %novita wait {name}{until_flag}, "
        f"%novita stop {name} or %novita delete {name}."
    )


def create(magics: Session, args: argparse.Namespace) -> Any:
    values = option_values(args, CREATE_FLAGS)
    values["name"] = args.name
    return create_instance(magics, specs.normalise_create_kwargs(values))


def create_from_cell(magics: Session, args: argparse.Namespace, body: str) -> Any:
    """``%%novita create [options]`` with ``key: value`` lines; a key may be given once."""
    spec = specs.cell_values(body)
    given = option_values(args, CREATE_FLAGS)
    if args.name is not None:
        given["name"] = args.name
    for key, value in given.items():
        if key in spec:
            raise ValidationError(
                f"{key!r} is given twice, on the %%novita line and on line {spec[key][0]} of "
                "the cell; keep one",
                field=key,
            )
        spec[key] = (0, value)
    return create_instance(magics, specs.normalise_create_kwargs(specs.values_of(spec)))


def create_instance(magics: Session, kwargs: dict[str, Any]) -> Any:
    """One ``client.create`` call; a fallback report is shown, --background hands back a panel."""
    from IPython.display import display

    wait = bool(kwargs.pop("wait", False))
    background = bool(kwargs.pop("background", False))
    if kwargs.pop("no_guard", False):
        kwargs["guard"] = False
    if "budget_total" in kwargs:  # create()'s keyword for the total cap
        kwargs["budget"] = kwargs.pop("budget_total")
    if wait and background:
        raise ValidationError("give wait or background, not both", field="background")
    client = magics.get_client()
    if "billing" not in kwargs and magics.billing:
        kwargs["billing"] = magics.billing
    progress = LazyProgress(kwargs["name"], kwargs.get("wait_until", "running")) if wait else None
    kwargs.update(wait=wait, progress=progress.update if progress else False)
    call_kwargs = accepted(client.create, kwargs, "create()")
    instance, interrupted = _interruptible(lambda: client.create(**call_kwargs), progress)
    if interrupted:
        name, until = kwargs["name"], kwargs.get("wait_until", "running")
        found = _find(client, name)
        words = guard_words(client, name, found) if kwargs.get("guard") is not False else ""
        print(resume_message(name, found, until, words), file=sys.stderr)
        return None
    report = getattr(instance, "fallback_report", None)
    if report is not None:
        display(report)
    if background:
        return display_now(magics.open_panel([instance.id], None, seed=[instance]))
    # `gpu = %novita create ...` assigns it: the card is shown all the same
    return display_now(instance)


def wait(magics: Session, args: argparse.Namespace) -> Any:
    client = magics.get_client()
    until = args.until or "running"
    progress = LazyProgress(args.target, until)
    kwargs = {"until": until, "timeout": args.timeout, "progress": progress.update}
    call_kwargs = accepted(client.wait, kwargs, "wait()")
    final, interrupted = _interruptible(lambda: client.wait(args.target, **call_kwargs), progress)
    if interrupted:
        found = _find(client, args.target)
        print(resume_message(args.target, found, until), file=sys.stderr)
        return found
    return final


_CELL_PARSER: Any = None


def create_cell(magics: Session, argv: list[str], body: str, local_ns: dict[str, Any]) -> Any:
    """``%%novita create``: the first line's flags, then the spec with ``$var`` expanded."""
    global _CELL_PARSER
    if _CELL_PARSER is None:
        from ..parser import build_cell_parser

        _CELL_PARSER = build_cell_parser()
    args = _CELL_PARSER.parse_args(argv)
    return create_from_cell(magics, args, magics.expand(body, local_ns))


COMMANDS = {"create": create, "wait": wait}
CELL_COMMANDS = {"create": create_cell}
