"""The teaching notebooks run top to bottom offline in a real kernel (nbval, lax mode: only
cells marked NBVAL_CHECK_OUTPUT are compared), and are stored without stray outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = (
    "01-quickstart.ipynb",
    "02-region-fallback.ipynb",
    "03-templates-and-private-registry.ipynb",
    "04-watch-and-webhooks.ipynb",
    "05-batches-and-cost.ipynb",
    "06-guards-and-teaching.ipynb",
    "07-run-on-the-gpu.ipynb",
    "08-stay-on-the-gpu.ipynb",
)


def test_all_notebooks_present():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_stored_clean(name):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    markdown = [c for c in notebook.cells if c.cell_type == "markdown"]
    assert len(markdown) >= 3, "notebooks teach: narrative markdown between the code"
    assert any("NBVAL_CHECK_OUTPUT" in c.source for c in code), "at least one checked cell"
    for cell in code:
        if "NBVAL_CHECK_OUTPUT" not in cell.source:
            assert cell.outputs == [], f"{name}: unchecked cell stored with output"
        assert cell.execution_count is None or "NBVAL_CHECK_OUTPUT" in cell.source


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_notebooks_run_under_nbval(tmp_path):
    pytest.importorskip("nbval")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "WEBHOOK_"))}
    env["NOVITA_NOTEBOOK_HOME"] = str(tmp_path / "ledger")  # keep the user's ledger clean
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-q",
            str(NOTEBOOKS),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "failed" not in result.stdout.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_nbval_catches_a_wrong_checked_output(tmp_path):
    """The checked cells really are compared: a wrong stored output fails the run."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbval")
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cell = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1 + 1)", execution_count=1)
    cell.outputs = [new_output("stream", name="stdout", text="3\n")]
    notebook = new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, tmp_path / "wrong.ipynb")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-q",
            "wrong.ipynb",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode != 0
    assert "1 failed" in result.stdout
