"""Working on an instance from the notebook: ``%novita kernel`` (its remote IPython kernel),
``%%novita on NAME`` (a cell run in that kernel, outputs drawn here as they come),
``%novita push``/``pull`` (files both ways with a progress bar) and ``%novita top`` (what
its GPUs are doing, once or live).

A cell sent with ``%%novita on`` is not ``$var``-expanded: it is code for the other kernel.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from IPython.core.error import UsageError

from ...errors import NovitaError, RemoteExecutionError, TimeoutError
from ..display import display_now, quiet
from ..parser import option_values
from .common import Client, Session

#: What a kernelspec cannot keep: said when it is installed.
KERNELSPEC_NOTE = (
    "When the instance stops, that kernel ends and its variables with it: its next cell says "
    "so; start the instance again (%novita start {name}) and restart the kernel. The Jupyter "
    "server needs NOVITA_API_KEY (environment or .env); the key is not written in the spec."
)


# -- %novita kernel ------------------------------------------------------------------------------
def _kernels(client: Client) -> Any:
    return client.remote.kernels


def kernel(magics: Session, args: argparse.Namespace) -> Any:
    if args.install and (args.new or args.pip_install):
        raise UsageError("%novita kernel: --install takes --python only (it starts nothing now)")
    client = magics.get_client()
    target = client.instance(args.target)
    name = target.name or target.id
    if args.install:
        spec = client.install_kernelspec(target, python=args.python or "python3")
        print(f'Installed the kernel "Novita: {name}" ({spec}): pick it from the kernel menu to '
              f"run a whole notebook on {name}. " + KERNELSPEC_NOTE.format(name=name))  # fmt: skip
        return None
    if args.stop:
        return _stop_kernel(client, target, name)
    remote, started = _kernel_of(client, target, python=args.python, new=args.new,
                                 install=args.pip_install)  # fmt: skip
    how = "Started" if started else "Connected to"
    print(f"{how} the remote kernel on {name} ({remote.process.python}, pid "
          f"{remote.process.pid}): %%novita on {name} cells run in it, variables kept.")  # fmt: skip
    return quiet(remote)


def _kernel_of(client: Client, target: Any, **options: Any) -> tuple[Any, bool]:
    """The instance's kernel, and whether this call started it (not found it again)."""
    kernels = _kernels(client)
    before = {k.kernel_id for k in kernels.opened() if k.instance_id == target.id}
    known = kernels.registry.get(target.id)
    if known is not None:
        before.add(known.kernel_id)
    remote = client.kernel(target, **{k: v for k, v in options.items() if v})
    return remote, remote.kernel_id not in before


def _stop_kernel(client: Client, target: Any, name: str) -> None:
    kernels = _kernels(client)
    opened = [k for k in kernels.opened() if k.instance_id == target.id]
    if not opened and kernels.registry.get(target.id) is None:
        print(f"No remote kernel runs on {name}.")
        return None
    remote = opened[0] if opened else client.kernel(target)
    remote.shutdown()
    print(f"Ended the remote kernel on {name}; its variables are gone. "
          f"%novita kernel {name} starts a new one.")  # fmt: skip
    return None


# -- %%novita on ---------------------------------------------------------------------------------
_ON_PARSER: Any = None


class CellOutput:
    """Draws a remote execution's outputs in the local cell as they arrive: streams as
    text, rich displays with their whole mime bundle, display updates in place."""

    def __init__(self) -> None:
        self.handles: dict[str, Any] = {}  # the remote display id -> the local display handle

    def __call__(self, output: dict[str, Any]) -> None:
        from IPython.display import clear_output, display

        kind = output["output_type"]
        if kind == "stream":
            stream = sys.stderr if output.get("name") == "stderr" else sys.stdout
            stream.write(output.get("text", ""))
            stream.flush()
        elif kind in ("display_data", "execute_result"):
            data, metadata = output.get("data") or {}, output.get("metadata") or {}
            remote_id = (output.get("transient") or {}).get("display_id")
            handle = self.handles.get(remote_id) if remote_id else None
            if output.get("update"):
                if handle is not None:
                    handle.update(data, metadata=metadata, raw=True)
                return
            shown = display(data, metadata=metadata, raw=True, display_id=bool(remote_id))
            if remote_id:
                self.handles[remote_id] = shown
        elif kind == "clear_output":
            clear_output(wait=bool(output.get("wait")))
        # "error" is shown once the call returns, with the remote traceback


def on_cell(magics: Session, argv: list[str], body: str, local_ns: dict[str, Any]) -> Any:
    """``%%novita on NAME``: the cell, as typed, runs in the instance's remote kernel."""
    global _ON_PARSER
    if _ON_PARSER is None:
        from ..parser import build_on_parser

        _ON_PARSER = build_on_parser()
    args = _ON_PARSER.parse_args(argv)
    if not body.strip():
        raise UsageError(f"%%novita on {args.target}: the cell is empty; write the code to run "
                         "under the %%novita line")  # fmt: skip
    client = magics.get_client()
    target = client.instance(args.target)
    name = target.name or target.id
    ended = _ended_kernel(client, target)
    if ended is not None and target.status != "running":
        _point_to_run(ended, name)
        raise ended  # the kernel's own words: it ended with the instance, and its variables
    try:
        remote, started = _kernel_of(client, target)
    except NovitaError as error:
        _point_to_run(error, name)
        raise
    if started:
        before = " (the earlier one ended with its variables)" if ended is not None else ""
        print(f"(started the remote kernel on {name}{before}; variables stay between "
              "%%novita on cells)")  # fmt: skip
    try:
        execution = remote.execute(body, timeout=args.timeout, output=CellOutput())
    except KeyboardInterrupt:
        print(f"Interrupted: the cell was stopped in the remote kernel on {name}; the kernel "
              "and its variables are intact.", file=sys.stderr)  # fmt: skip
        return None
    except RemoteExecutionError as error:
        _show_traceback(error)
        raise
    except TimeoutError as error:
        error.message = error.message.replace("(the kernel", "by --timeout (the kernel")
        raise
    except NovitaError as error:
        _point_to_run(error, name)
        raise
    for note in execution.notes:
        print(f"Note: {note}.", file=sys.stderr)
    return None


def _ended_kernel(client: Client, target: Any) -> Any:
    """Why this instance's kernel ended, when it did (None: none ended here)."""
    for remote in _kernels(client).opened():
        if remote.instance_id == target.id and remote.ended is not None:
            return remote.ended
    return None


def _show_traceback(error: RemoteExecutionError) -> None:
    """The remote traceback as the remote kernel wrote it (colours kept), on stderr."""
    result = getattr(error, "result", None)
    found = getattr(result, "error", None) or {}
    lines = found.get("traceback") or error.traceback
    if lines:
        print("\n".join(lines), file=sys.stderr)


def _point_to_run(error: NovitaError, name: str) -> None:
    """The library's hints name its calls; here they name this instance's magics."""
    hint = getattr(error, "hint", None)
    if hint:
        error.hint = (
            hint.replace("novita.run(instance, code) runs code",
                         f"%%novita run {name} runs the cell")
            .replace("novita.start(...)", f"%novita start {name}")
            .replace("novita.kernel(...)", f"%novita kernel {name}")
        )  # fmt: skip


# -- %novita push / pull ----------------------------------------------------------------------
def push(magics: Session, args: argparse.Namespace) -> Any:
    return _transfer(magics, args, "push")


def pull(magics: Session, args: argparse.Namespace) -> Any:
    if args.run is not None:
        return _pull_run(magics, args)
    if args.source is None:
        from ...errors import ValidationError

        raise ValidationError("give REMOTE (a path on the instance) or --run RUN", field="remote")
    return _transfer(magics, args, "pull")


def _pull_run(magics: Session, args: argparse.Namespace) -> Any:
    """``%novita pull NAME [LOCAL] --run RUN``: every place the run wrote, one line each."""
    from ...errors import ValidationError

    if args.destination is not None:
        raise ValidationError(
            "with --run, give LOCAL once: pull NAME LOCAL --run RUN", field="local"
        )
    client = magics.get_client()
    target = client.instance(args.target)
    run = client.attach(args.run, wait=False, on_output=lambda stream, text: None)
    if run.instance_id != target.id:
        raise ValidationError(
            f"run {args.run} ran on {run.record.instance_name or run.instance_id}, "
            f"not on {args.target}",
            field="run",
        )
    transfers = run.pull_outputs(args.source)
    if not transfers:
        print(f"Run {args.run} wrote no files under the home of {args.target}.")
    for transfer in transfers:
        print(summary_line(transfer))
    return quiet(transfers)


def _transfer(magics: Session, args: argparse.Namespace, direction: str) -> Any:
    from ...options import FILES
    from ..transfer_progress import TransferProgress

    how = option_values(args, FILES)
    if how.pop("no_default_ignore", False):
        how["default_ignore"] = False
    how = FILES.parse(how)  # the library's own rules, before any connection
    _check_paths(direction, args.source, args.destination)
    client = magics.get_client()
    target = client.instance(args.target)
    name = target.name or target.id
    bar = TransferProgress(direction, name, args.source, args.destination)
    call = client.push if direction == "push" else client.pull
    try:
        transfer = call(target, args.source, args.destination, progress=bar.update, **how)
    except KeyboardInterrupt:
        bar.finish(None)
        again = " ".join(filter(None, (f"%novita {direction}", args.target, args.source,
                                       args.destination)))  # fmt: skip
        print(f"Interrupted; the files done stay, and {again} again resumes from the partial "
              "ones.", file=sys.stderr)  # fmt: skip
        return None
    except BaseException:
        bar.finish(None)
        raise
    bar.finish(transfer)
    print(summary_line(transfer))
    return quiet(transfer)


def _check_paths(direction: str, source: str, destination: str | None) -> None:
    """The paths' own mistakes, said before anything is looked up."""
    from pathlib import Path

    from ...errors import ValidationError
    from ...remote.files import remote_spelling

    local, remote = (source, destination) if direction == "push" else (destination, source)
    if remote is not None:
        remote_spelling(remote)
    if direction == "push" and not Path(local).expanduser().exists():
        raise ValidationError(f"LOCAL: {local} does not exist here", field="local")


def summary_line(transfer: Any) -> str:
    """``Pushed 3 files (1.2 MB) to demo-1:course in 0.4 s; 2 unchanged, 1 resumed.``"""
    way = "to" if transfer.direction == "push" else "from"
    verb = "Pushed" if transfer.direction == "push" else "Pulled"
    count = len(transfer.files)
    files = f"{count} file{'s' if count != 1 else ''}"
    size = f"{transfer.bytes_sent / 1e6:.1f} MB" if transfer.bytes_sent >= 100_000 else (
        f"{transfer.bytes_sent:,} bytes")  # fmt: skip
    where = f"{transfer.name}:{transfer.remote}"
    parts = [p.replace("unchanged", "unchanged (skipped)") for p in transfer.not_copied()]
    local = f" ({transfer.local})" if transfer.direction == "pull" else ""
    tail = f"; {', '.join(parts)}" if parts else ""
    return f"{verb} {files} ({size}) {way} {where}{local} in {transfer.seconds:.1f} s{tail}."


# -- %novita top ---------------------------------------------------------------------------------
def top(magics: Session, args: argparse.Namespace) -> Any:
    if args.interval is not None and not args.live:
        raise UsageError("%novita top: --interval goes with --live")
    client = magics.get_client()
    target = client.instance(args.target)
    if args.live:
        from ..gpu_top import GpuTop

        earlier = magics.live_tops.pop(target.id, None)
        if earlier is not None:  # one live view per instance: the new one replaces it
            earlier.stop()
        view = magics.live_tops[target.id] = GpuTop(client, target, interval=args.interval)
        return display_now(view)
    from ..gpu_top import TopFrame

    frame = client.top(target)
    shown = TopFrame(frame)
    shown.attrs.update(frame.attrs)  # where it was read
    return shown


COMMANDS = {"kernel": kernel, "push": push, "pull": pull, "top": top}
CELL_COMMANDS = {"on": on_cell}
