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
    from novita_notebook.notebook.traits import TRAIT_OPTIONS
    from novita_notebook.options import SESSION

    for name, option in TRAIT_OPTIONS.items():  # every %config option back to its default
        setattr(found, name, option.default if option in SESSION.options else None)
    # %config writes into the shell's config, which a reloaded extension would read back.
    shell.config.pop("NovitaMagics", None)


@pytest.fixture
def ip(shell, magics, client):
    """The shell, its %novita session bound to the per-test sandbox client."""
    magics.client = client
    yield shell
    magics.client = None
