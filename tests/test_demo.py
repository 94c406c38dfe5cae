"""novita-notebook demo: the quickstart headless in a kernel, the script fallback, a non-zero
exit on failure, and the kernel's plain-TCP warning kept out of what the demo prints."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from novita_notebook import demo
from novita_notebook.demo import KernelStderr


def test_script_path_creates_runs_and_deletes(capsys):
    assert demo.main(["--script", "--speed", "300"]) == 0
    out = capsys.readouterr().out
    assert "RTX 4090 products in stock" in out
    assert "created: <Instance 'demo-1'" in out
    assert "reached running: <Instance 'demo-1'" in out and " running " in out
    assert "deleted: demo-1 is removed" in out


def test_script_fallback_when_nbclient_missing(monkeypatch, capsys):
    monkeypatch.setattr(demo, "_nbclient_available", lambda: False)
    monkeypatch.setattr(demo, "run_script", lambda speed: 0)
    assert demo.main([]) == 0
    assert "nbclient is not installed" in capsys.readouterr().out


def test_missing_notebook_is_an_error(tmp_path, capsys):
    assert demo.main(["--notebook", str(tmp_path / "nope.ipynb")]) == 2
    assert "not found" in capsys.readouterr().err


def test_quickstart_is_found():
    path = demo.find_quickstart()
    assert path is not None and path.name == demo.QUICKSTART


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_cli_demo_runs_the_quickstart_notebook(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "WEBHOOK_"))}
    env["NOVITA_NOTEBOOK_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "novita_notebook.cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=190,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "executing" in out and "01-quickstart.ipynb" in out
    assert "RTX 4090 24GB" in out  # the product table
    assert "demo-1 running running" in out  # reached running
    assert "removed" in out  # deleted
    assert "ran top to bottom" in out


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_failing_notebook_exits_non_zero(tmp_path, capsys):
    nbformat = pytest.importorskip("nbformat")
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell("raise RuntimeError('boom in the demo')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = Path(tmp_path) / "broken.ipynb"
    nbformat.write(notebook, path)
    assert demo.main(["--notebook", str(path)]) == 1
    assert "boom in the demo" in capsys.readouterr().err


def test_demo_kernel_stderr_drops_only_the_tcp_warning():
    out = io.StringIO()
    with KernelStderr(out) as fd:
        os.write(
            fd,
            b"[W 12:00:00 kernelapp] Kernel is running over TCP without encryption."
            b" All communication is sent in plain text.\n",
        )
        os.write(fd, b"a real kernel error\n")
    assert out.getvalue() == "a real kernel error\n"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_demo_output_has_no_kernel_tcp_warning(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("print('hello from the kernel')"))
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "WEBHOOK_"))}
    env["NOVITA_NOTEBOOK_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "novita_notebook.cli", "demo", "--notebook", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "hello from the kernel" in result.stdout
    assert "without encryption" not in result.stdout + result.stderr
