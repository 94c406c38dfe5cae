"""Shared fixtures: a fresh in-process sandbox per test and a client bound to it.
Every test is isolated from the user's environment, .env file and ledger.
"""

from __future__ import annotations

import pytest

# Fast enough that a full create → running takes well under a second of wall time.
TEST_SPEED = 300.0

_ENV_VARS = (
    "NOVITA_API_KEY",
    "NOVITA_API_URL",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "NOVITA_BUDGET_PER_HOUR",
    "NOVITA_SPEND_LIMIT_PER_HOUR",
    "NOVITA_DEFAULT_REGION",
    "NOVITA_POLL_INTERVAL",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No real credentials, no .env from the repo, a private ledger directory per test."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOVITA_NOTEBOOK_HOME", str(tmp_path / "novita-home"))
    monkeypatch.chdir(tmp_path)
    yield
    _stop_guards_left_running(tmp_path / "novita-home")


def _stop_guards_left_running(home) -> None:
    """SIGTERM the guard processes a test left running in its ledger directory: a guard stays
    while a guarded instance may be started again, and the test's sandbox is gone now."""
    import json
    import os
    import signal

    for status in home.glob("guard-*.status.json") if home.is_dir() else ():
        try:
            pid = json.loads(status.read_text()).get("pid")
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:  # never another process
                if b"novita_notebook.guard" in cmdline.read():
                    os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, TypeError):
            continue


@pytest.fixture
def sandbox():
    """A fresh sandbox on a free loopback port, fast clock, fixed seed."""
    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=TEST_SPEED, seed=7) as server:
        yield server


@pytest.fixture
def client(sandbox):
    """A Novita client talking to the per-test sandbox."""
    from novita_notebook import Novita

    novita = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
    yield novita
    novita.close()


@pytest.fixture
def run_in_kernel(tmp_path):
    """Run code cells in a real IPython kernel (nbclient), as a notebook would, with widget
    state stored like ``nbconvert --execute``; returns the executed notebook. The kernel sees
    this test's environment (private ledger directory, no credentials)."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    def run(cells: list[str], *, timeout: float = 120, allow_errors: bool = False) -> object:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        notebook.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                           "display_name": "Python 3"}  # fmt: skip
        client = nbclient.NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
        return notebook

    return run
