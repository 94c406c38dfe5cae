"""The option tests use the notebook tests' IPython shell fixtures (flags, cells, %config)."""

from tests.notebook.conftest import ip, magics, shell  # noqa: F401 - fixtures
