"""Guard tests reuse the notebook tests' IPython shell fixtures (for the magics)."""

from tests.notebook.conftest import ip, magics, shell  # noqa: F401 - fixtures
