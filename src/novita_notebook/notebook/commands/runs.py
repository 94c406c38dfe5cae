"""``%%novita run NAME`` and ``%%novita sh NAME``: the cell's code (never ``$var``-expanded:
it is code for the instance) runs there as a durable run, its output written into the cell as
it comes, stdout and stderr apart, so the notebook draws ``\\r`` progress bars and tints
stderr as for a local cell. ``%novita attach [RUN]`` follows a run here; ``%novita runs
[NAME]`` lists them.

A run that fails there fails the cell here, shown in a few lines (the error's first line, the
remote traceback's innermost frame, the magic that replays it all), so Run All stops at it as
at a local error.
Ctrl-C interrupts the code there and ends the cell with one line saying how to see it.
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

from ...errors import NotFoundError, RemoteRunError, ValidationError
from ..parser import RUN_FLAGS, MagicArgumentParser, option_values
from .common import Client, Session, accepted

TAIL_LINES = 3  # of a failure's output when Python gave no traceback


@functools.cache
def _parser(verb: str) -> MagicArgumentParser:
    """The first line of ``%%novita run`` or ``sh``: the same parser ``%novita --help`` shows."""
    from ..parser import build_parser

    return build_parser().commands[verb]


def run_cell(magics: Session, argv: list[str], body: str, local_ns: dict[str, Any]) -> Any:
    """``%%novita run NAME [flags]``: the cell's Python runs on the instance."""
    return _run(magics, "run", argv, body, local_ns)


def sh_cell(magics: Session, argv: list[str], body: str, local_ns: dict[str, Any]) -> Any:
    """``%%novita sh NAME [flags]``: the cell runs as a shell script on the instance."""
    return _run(magics, "sh", argv, body, local_ns)


def _run(magics: Session, verb: str, argv: list[str], body: str, local_ns: dict[str, Any]) -> Any:
    if verb == "sh":
        _no_python_flags(argv)
    args = _parser(verb).parse_args(argv)
    values = option_values(args, RUN_FLAGS)
    if verb == "sh":
        values["shell"] = True
    if not body.strip():
        raise ValidationError(
            f"the cell has no code: write it under the %%novita {verb} line", field="code"
        )
    if "put" in values:
        values["put"] = _values_of(values["put"], local_ns)
    if "env" in values:
        values["env"] = dict(values["env"])
    client = magics.get_client()
    target = args.target
    # no on_output: the library prints to this process's stdout and stderr, which ipykernel
    # sends as the cell's streams (capped, with a note naming the run's whole log)
    kwargs = accepted(client.run, values, "run()")
    began = time.time()
    try:
        run = client.run(target, body, **kwargs)
    except KeyboardInterrupt:
        raise _interrupted(client, target, began) from None
    except RemoteRunError as error:
        raise _failing_cell(magics, error) from None
    if values.get("detach"):
        print(
            f"{run.id} runs on {target}, detached: %novita attach {run.id} follows it here, "
            f"%novita runs {target} lists it."
        )
        return run
    if run.values:
        local_ns.update(run.values)
    return None


def _no_python_flags(argv: list[str]) -> None:
    """A shell cell given a flag only Python runs take: said plainly, not "unrecognized"."""
    for word in argv:
        flag = word.split("=", 1)[0]
        if flag in ("--put", "--get", "--python", "--shell"):
            raise ValidationError(
                f"%%novita sh takes no {flag}: values and interpreters need Python; "
                f"%%novita run NAME {flag} ... takes it",
                field=flag.lstrip("-"),
            )


def _values_of(names: list[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """--put's names read from the notebook's variables; a missing one is named."""
    missing = [name for name in names if name not in namespace]
    if missing:
        raise ValidationError(
            f"--put: no variable named {', '.join(missing)} in this notebook; define it "
            "first or leave it out",
            field="put",
        )
    return {name: namespace[name] for name in names}


def _failing_cell(magics: Session, error: RemoteRunError) -> RemoteRunError:
    """The error that fails the cell: shown in a few lines with short errors on (the
    session's default), else with the whole local traceback."""
    if getattr(magics, "short_errors", True):
        error._render_traceback_ = functools.partial(_error_lines, error)  # type: ignore[attr-defined]
    return error


def _one_line(words: str) -> KeyboardInterrupt:
    """A KeyboardInterrupt that ends the cell showing ``words`` (no local traceback)."""
    stop = KeyboardInterrupt(words)
    stop._render_traceback_ = lambda: [f"\x1b[0;31mKeyboardInterrupt\x1b[0m: {words}"]  # type: ignore[attr-defined]
    return stop


def _error_lines(error: RemoteRunError) -> list[str]:
    """A failed run as the cell shows it: the error's first line (its name in red, as IPython
    shows an exception's), the remote traceback's last lines as they are, the magic that
    shows the rest. The whole traceback was streamed just above: from it, the innermost
    frame and the exception."""
    first = (error.message or str(error)).split("\n", 1)[0]
    lines = [f"\x1b[0;31m{type(error).__name__}\x1b[0m: {first}"]
    tail = error.traceback_tail.splitlines()
    frames = [i for i, line in enumerate(tail) if line.startswith('  File "')]
    lines.extend(tail[frames[-1] :] if frames else tail[-TAIL_LINES:])
    if error.run_id:
        lines.append(f"(%novita attach {error.run_id} shows its whole output again)")
    return lines


def _interrupted(client: Client, target: str, began: float) -> KeyboardInterrupt:
    """The KeyboardInterrupt that ends the cell, shown as one line: which run was
    interrupted there (the library has sent it SIGINT and followed its end) and how to see it."""
    latest = None
    for record in client.remote.store.all():
        if target in (record.instance_name, record.instance_id) and (
            record.started.timestamp() >= began - 1
        ):
            latest = record
    if latest is None:
        line = f"before a run started on {target}; %novita runs {target} lists the runs."
    elif latest.active:  # interrupted while it was being sent, or it has not ended yet
        line = (
            f"run {latest.id} may still be running on {target}; %novita attach {latest.id} "
            f"follows it, %novita runs {target} shows it."
        )
    else:
        line = (
            f"run {latest.id} was interrupted on {target} (now {latest.state}); "
            f"%novita runs {target} shows it."
        )
    return _one_line(line)


def attach(magics: Session, args: argparse.Namespace) -> Any:
    """``%novita attach [RUN]``: the run's output so far, then what comes, to its end.
    Ctrl-C stops following; the run goes on there."""
    client = magics.get_client()
    run_id = args.run or _latest_run_id(client)
    run = client.attach(run_id, wait=False)
    where = run.record.instance_name or run.instance_id
    try:
        run.wait(interrupt=False)
    except KeyboardInterrupt:
        raise _one_line(
            f"Stopped following {run.id}; it keeps running on {where}. %novita attach "
            f"{run.id} follows it again."
        ) from None
    except RemoteRunError as error:
        raise _failing_cell(magics, error) from None
    if run.values:  # a detached run's --get: its values reach the notebook when it is followed
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.user_ns.update(run.values)
        print(f"{run.id} brought back {', '.join(run.values)} into the notebook's variables.")
    return run


def _latest_run_id(client: Client) -> str:
    records = client.remote.store.all()
    if not records:
        raise NotFoundError(
            f"no run is remembered for {client.config.api_url}",
            hint="%%novita run NAME runs a cell on an instance; %novita runs lists runs.",
        )
    active = [r for r in records if r.active]
    return (active or records)[-1].id


def runs(magics: Session, args: argparse.Namespace) -> Any:
    """``%novita runs [NAME]``: the runs remembered here, newest first, as a table."""
    from .ledger import explained_when_empty

    client = magics.get_client()
    frame = client.runs()
    target = args.target
    if target is not None and len(frame):
        ids = {r.id for r in client.remote.store.all() if r.instance_id == target}
        frame = frame[(frame["instance"] == target) | frame["run"].isin(ids)]
    if len(frame) == 0:
        where = f" on {target}" if target else ""
        return explained_when_empty(
            frame,
            f"No runs{where} remembered for {client.config.api_url}. "
            "%%novita run NAME runs a cell on an instance.",
        )
    from ..display import RunsFrame

    shown = RunsFrame(frame.reset_index(drop=True))
    where = f" on {target}" if target else ""
    shown.caption = f"{len(frame)} run{'' if len(frame) == 1 else 's'}{where}, newest first"
    return shown


def cell_only(verb: str) -> Any:
    def command(magics: Session, args: argparse.Namespace) -> Any:
        raise ValidationError(
            f"%novita {verb} runs a cell: write %%novita {verb} {args.target} on the first "
            "line and the code under it",
            field="code",
        )

    return command


COMMANDS = {"attach": attach, "runs": runs, "run": cell_only("run"), "sh": cell_only("sh")}
CELL_COMMANDS = {"run": run_cell, "sh": sh_cell}
