"""Fixtures for the notebook face: a real IPython shell with the extension loaded, whose
session client is the per-test sandbox client (reset after each test)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shell():
    """One InteractiveShell for the whole run (IPython keeps a singleton anyway)."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "novita_notebook")
    yield ip
    ip.run_line_magic("unload_ext", "novita_notebook")


@pytest.fixture
def magics(shell):
    from novita_notebook.notebook.magics import get_magics

    found = get_magics(shell)
    assert found is not None
    yield found
    found.shutdown()
    for name in ("default_region", "billing", "poll_interval", "budget_per_hour"):
        setattr(found, name, None)
    found.auto_sandbox = False
    found.short_errors = True
    # %config writes into the shell's config, which a reloaded extension would read back.
    shell.config.pop("NovitaMagics", None)


@pytest.fixture
def ip(shell, magics, client):
    """The shell, its %novita session bound to the per-test sandbox client."""
    magics.client = client
    yield shell
    magics.client = None
