"""``novita-notebook demo``: run the quickstart notebook headless against the embedded sandbox
(nbclient) and print what it did; without nbclient or a kernel, run the same steps as a script.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

QUICKSTART = "01-quickstart.ipynb"
_MAX_LINES = 25  # per cell output in the printed transcript
_PRODUCT_COLUMNS = ("product", "region", "price_per_hour", "spot_per_hour", "stock")


def find_quickstart() -> Path | None:
    """The quickstart notebook of this checkout (absent from a plain wheel install)."""
    here = Path(__file__).resolve()
    for root in (here.parents[2], Path.cwd()):
        candidate = root / "notebooks" / QUICKSTART
        if candidate.is_file():
            return candidate
    return None


def _kernel_available(name: str) -> bool:
    try:
        from jupyter_client.kernelspec import find_kernel_specs
    except ImportError:
        return False
    return name in find_kernel_specs()


def _nbclient_available() -> bool:
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        return False
    return True


def _clip(text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    if len(lines) > _MAX_LINES:
        lines = [*lines[:_MAX_LINES], f"… ({len(lines) - _MAX_LINES} more lines)"]
    return "\n".join(lines)


def print_transcript(notebook: Any, out: Any = sys.stdout) -> None:
    """Each code cell's source and its text outputs (tables, the instance, messages)."""
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        # The nbval markers are for the test suite, not for the reader.
        lines = [line for line in cell.source.splitlines() if "NBVAL_" not in line]
        print(f"\n[{index}] " + "\n    ".join(lines), file=out)
        for output in cell.get("outputs", []):
            text = None
            if output.get("output_type") == "stream":
                text = output.get("text", "")
            elif output.get("output_type") in ("execute_result", "display_data"):
                text = output.get("data", {}).get("text/plain")
            elif output.get("output_type") == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}"
            if text:
                print(_clip(text), file=out)


#: What ipykernel logs at start on TCP (the kernel and the demo share loopback only); it is
#: the one kernel stderr line the demo drops, everything else is passed through.
KERNEL_NOISE = ("Kernel is running over TCP without encryption",)


class KernelStderr:
    """A pipe for the kernel's stderr that forwards every line to ``out`` except
    ``KERNEL_NOISE`` (``with KernelStderr() as fd: start the kernel with stderr=fd``)."""

    def __init__(self, out: Any = None) -> None:
        self.out = out
        self._thread: threading.Thread | None = None

    def __enter__(self) -> int:
        read_fd, self._write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        self._thread = threading.Thread(target=self._pump, name="demo-kernel-stderr", daemon=True)
        self._thread.start()
        return self._write_fd

    def _pump(self) -> None:
        out = self.out or sys.stderr
        for line in self._reader:
            if not any(noise in line for noise in KERNEL_NOISE):
                out.write(line)
                out.flush()

    def __exit__(self, *exc: object) -> None:
        os.close(self._write_fd)  # the kernel's copy closes when it exits: then EOF
        if self._thread is not None:
            self._thread.join(5)


def run_notebook(path: Path, kernel: str, timeout: float) -> int:
    """Execute the notebook in a fresh kernel, print the transcript; 0 on success."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="novita-demo-") as workdir:
        client = NotebookClient(
            notebook,
            timeout=int(timeout),
            kernel_name=kernel,
            resources={"metadata": {"path": workdir}},
        )
        started = time.monotonic()
        try:
            with KernelStderr() as kernel_stderr:
                client.execute(stderr=kernel_stderr)
        except CellExecutionError as error:
            print_transcript(notebook)
            print(f"\ndemo failed: a cell raised\n{_clip(str(error))}", file=sys.stderr)
            return 1
    print_transcript(notebook)
    print(f"\ndemo: {path.name} ran top to bottom in {time.monotonic() - started:.1f} s")
    return 0


def run_script(speed: float) -> int:
    """The quickstart's steps without a kernel: sandbox, products, create + wait, delete."""
    from .client import Novita
    from .errors import NovitaError

    client = Novita.sandbox(speed=speed, seed=0)
    try:
        server = client.sandbox_server
        print(f"Sandbox running at {server.url}")
        products = client.products(gpu="4090", available=True)
        print("\nRTX 4090 products in stock:")
        shown = [c for c in _PRODUCT_COLUMNS if c in getattr(products, "columns", ())]
        table = products[shown] if shown else products
        print(_clip(table.to_string() if hasattr(table, "to_string") else str(table)))
        instance = client.create("demo-1", gpu="RTX 4090", wait=False)
        print(f"\ncreated: {instance!r}")
        report = getattr(instance, "fallback_report", None)
        if report is not None:
            print(_clip(repr(report)))
        running = client.wait(instance, until="running", progress="text")
        print(f"reached running: {running!r}")
        if running.ssh_command:
            print(f"ssh: {running.ssh_command}")
        client.delete(running.id)
        gone = client.wait(running, until="removed", progress="text")
        print(f"deleted: {gone.name or running.name} is {gone.status}")
    except NovitaError as error:
        print(f"demo failed: {type(error).__name__}: {error.message}", file=sys.stderr)
        return 1
    finally:
        client.close()
        client.sandbox_server.stop()
    print("\ndemo: script path completed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="novita-notebook demo",
        description="Run the quickstart headless against an embedded sandbox and print it.",
    )
    parser.add_argument("--notebook", type=Path, help="notebook to run (default: quickstart)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per cell")
    parser.add_argument("--script", action="store_true", help="skip the notebook; run the steps")
    parser.add_argument("--speed", type=float, default=100.0, help="sandbox speed (script path)")
    args = parser.parse_args(argv)

    notebook = args.notebook or find_quickstart()
    if args.notebook is not None and not args.notebook.is_file():
        print(f"demo: notebook {args.notebook} not found", file=sys.stderr)
        return 2
    reason = None
    if args.script:
        reason = "--script given"
    elif notebook is None:
        reason = f"{QUICKSTART} not found next to the package"
    elif not _nbclient_available():
        reason = "nbclient is not installed"
    elif not _kernel_available(args.kernel):
        reason = f"no Jupyter kernel named {args.kernel!r}"
    if reason is None and notebook is not None:
        print(f"demo: executing {notebook} in a {args.kernel} kernel")
        return run_notebook(notebook, args.kernel, args.timeout)
    print(f"demo: running the quickstart steps as a script ({reason})")
    return run_script(args.speed)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
