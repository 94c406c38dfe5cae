"""Stand-ins for notebook kernels in the durability tests, run as separate processes (forked
from a preloaded server, so each starts in milliseconds): one starts a run and streams its
output until it is killed; another, a fresh process, attaches to the run afterwards.
"""

from __future__ import annotations

import os
from typing import Any


def kernel_that_runs(settings: dict[str, Any], code: str, progress: Any) -> None:
    """Start ``code`` on the instance and follow it, reporting each piece of output's size
    through ``progress`` (a pipe end) until the test kills this process."""
    os.environ["NOVITA_NOTEBOOK_HOME"] = settings["home"]
    from novita_notebook import Novita

    client = Novita(api_key=settings["api_key"], api_url=settings["api_url"])
    client.run(
        settings["instance_id"], code, on_output=lambda stream, text: progress.send(len(text))
    )
    progress.send(-1)  # the run ended before the kill (the test then fails)


def kernel_that_attaches(settings: dict[str, Any], run_id: str, result: Any) -> None:
    """Attach to a run from a fresh process; send back its state and whole stdout."""
    os.environ["NOVITA_NOTEBOOK_HOME"] = settings["home"]
    from novita_notebook import Novita

    client = Novita(api_key=settings["api_key"], api_url=settings["api_url"])
    pieces: list[str] = []
    run = client.attach(run_id, on_output=lambda stream, text: pieces.append(text))
    result.send((run.state, run.stdout, "".join(pieces)))
    client.close()
