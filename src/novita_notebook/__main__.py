"""``python -m novita_notebook``: the same as the ``novita-notebook`` command."""

from .cli import main

raise SystemExit(main())
