"""Figure of the notebook face's cost: ``%load_ext novita_notebook`` in a fresh IPython
process vs ``import pandas`` in the same kind of process.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from .harness import Figure

# Both probes start the same way (a fresh interpreter with an IPython shell), so the only
# difference between them is the statement timed.
_PROBE = """
import json, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
started = time.perf_counter()
{statement}
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""

LOAD_EXT = "shell.run_line_magic('load_ext', 'novita_notebook')"
IMPORT_PANDAS = "import pandas"
# What the first %novita command adds when the extension defers importing the client.
LOAD_EXT_AND_CLIENT = LOAD_EXT + "; import novita_notebook.client"


def _time_in_fresh_process(statement: str) -> float:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"probe {statement!r} failed:\n{completed.stderr[-2000:]}")
    return float(json.loads(completed.stdout.strip().splitlines()[-1])["seconds"])


def extension_load_time(quick: bool) -> list[Figure]:
    """``%load_ext novita_notebook`` vs ``import pandas``, each timed inside a fresh IPython
    process; the median of 5 runs of each, alternated so both share the machine's noise."""
    rounds = 1 if quick else 5
    load_times, pandas_times, full_times = [], [], []
    for _ in range(rounds):
        load_times.append(_time_in_fresh_process(LOAD_EXT))
        pandas_times.append(_time_in_fresh_process(IMPORT_PANDAS))
        full_times.append(_time_in_fresh_process(LOAD_EXT_AND_CLIENT))
    load, pandas = statistics.median(load_times), statistics.median(pandas_times)
    full = statistics.median(full_times)
    return [
        Figure(
            "extension load time vs import pandas (%load_ext novita_notebook, fresh IPython)",
            load,
            "s",
            pandas,
            target="<= import pandas + 0.3 s",
            met=load - pandas <= 0.3,
            notes={
                "difference": f"{load - pandas:+.3f} s over import pandas",
                "with the client imported too (the first %novita command)": f"{full:.3f} s",
            },
        )
    ]
