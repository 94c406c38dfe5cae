"""Notebooks executed by nbclient with distinctive credentials in the kernel's environment (a
full session written here, and the example notebooks): no output of any cell shows a secret.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from secret_scan import API_KEY, REGISTRY_PASSWORD, WEBHOOK_SECRET, assert_no_leaks

from novita_notebook.sandbox import Sandbox

CELLS = [
    "import logging, os, sys\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, force=True)\n"
    "%load_ext novita_notebook",
    "%novita config",
    "from novita_notebook import Novita\nnovita = Novita()\nnovita",
    "novita.config",
    "%novita products --gpu 4090",
    "auth = novita.create_registry_auth('team', 'robot', os.environ['TEST_REGISTRY_PASSWORD'])\n"
    "auth",
    "novita.registry_auths()",
    "inst = novita.create('nb-secret-1', gpu='RTX 4090',\n"
    "                     image='registry.sandbox.local/team/app:1.0', image_auth_id=auth.id,\n"
    "                     wait=True, timeout=60)\n"
    "inst",
    "inst.fallback_report",
    "novita.instance('nb-secret-1')",
    "print(repr(novita.instance('nb-secret-1')), str(novita.instance('nb-secret-1')))",
    "%novita instances",
    "%novita mine",
    "%novita start nb-secret-1",  # already running: an error the magic shows
    # over the instance's SSH, whose password the API gives: debug logs included
    "%%novita run nb-secret-1\nprint('ran there')",
    "%%novita sh nb-secret-1\necho from the shell",
    "%novita runs nb-secret-1",
    "%novita top nb-secret-1",
    "%novita kernel nb-secret-1",
    "%%novita on nb-secret-1\nx = 41\nprint(x + 1)",
    "%novita kernel nb-secret-1 --stop",
    "novita.remote",
    "from novita_notebook.webhooks import Notifier, Receiver\n"
    "rx = Receiver().start()\n"
    "watcher = novita.watch([inst], interval=0.1, notify=Notifier(rx.url, max_attempts=1))\n"
    "import time; time.sleep(0.5); watcher.stop()\n"
    "display(watcher, rx)\nrx.stop()",
    "wrong = Novita(api_key='sk_wrong_key_for_the_test_12345', api_url=os.environ['NOVITA_API_URL'])\n"
    "wrong.instances()",  # raises: the traceback is an output too
    "%novita delete nb-secret-1",
    "print('session finished in', sys.executable)",
]


@pytest.fixture
def served_sandbox():
    with Sandbox(speed=300, seed=3, api_key=API_KEY) as server:
        yield server


def _output_texts(notebook: nbformat.NotebookNode) -> dict[str, str]:
    texts = {}
    for index, cell in enumerate(notebook.cells):
        for number, output in enumerate(cell.get("outputs", [])):
            label = f"cell {index} output {number} ({output.get('output_type')})"
            parts = [str(output.get("text", "")), str(output.get("evalue", ""))]
            parts += [str(line) for line in output.get("traceback", [])]
            parts += [str(value) for value in (output.get("data") or {}).values()]
            texts[label] = "\n".join(parts)
    return texts


def test_notebook_outputs_never_show_a_secret(served_sandbox, tmp_path, monkeypatch):
    for name, value in {
        "NOVITA_API_KEY": API_KEY,
        "NOVITA_API_URL": served_sandbox.url,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_URL": "http://127.0.0.1:9/unused",
        "TEST_REGISTRY_PASSWORD": REGISTRY_PASSWORD,
        "NOVITA_NOTEBOOK_HOME": str(tmp_path / "home"),
    }.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=dict(os.environ))
    # kept next to the test run for a human to open when this fails
    Path(tmp_path / "executed.ipynb").write_text(nbformat.writes(notebook))

    texts = _output_texts(notebook)
    everything = "\n".join(texts.values())
    # The session really happened: the instance was created and shown, the failures surfaced.
    assert "nb-secret-1" in everything
    # the kernel ran this interpreter (the project's venv), or the test would prove nothing
    assert f"session finished in {sys.executable}" in everything
    assert any("text/html" in (o.get("data") or {}) for c in notebook.cells for o in c.outputs)
    assert "AuthenticationError" in everything
    assert "DEBUG" in everything, "the DEBUG log stream did not reach the outputs"
    # the SSH cells really reached the instance (so their logs and outputs were scanned)
    assert "ran there" in everything and "from the shell" in everything and "42" in everything

    ssh_passwords = {
        f"ssh password of {record.name}": record.ssh_password
        for record in served_sandbox.world.instances.values()
    }
    assert ssh_passwords, "no instance was created in the sandbox"
    secrets = {
        "api key": API_KEY,
        "webhook secret": WEBHOOK_SECRET,
        "registry password": REGISTRY_PASSWORD,
        **ssh_passwords,
    }
    assert_no_leaks("executed notebook", texts, secrets)


NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: ``password="..."``, ``secret = "..."``: literals the example notebooks use as credentials.
SECRET_LITERAL = re.compile(r"""(?i)\b\w*(?:password|secret)\w*\s*[=:]\s*["']([^"']{8,})["']""")


def _execute(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=dict(os.environ))
    return notebook


@pytest.mark.parametrize(
    "name, literals",
    [
        ("01-quickstart.ipynb", 0),
        ("03-templates-and-private-registry.ipynb", 1),  # a registry password
        ("04-watch-and-webhooks.ipynb", 1),  # a webhook secret
    ],
)
def test_example_notebook_outputs_never_show_a_secret(name, literals, tmp_path, monkeypatch):
    path = NOTEBOOKS / name
    if not path.exists():
        pytest.fail(f"{name} is missing from notebooks/")
    # distinctive credentials in the kernel's environment: nothing may echo them either
    monkeypatch.setenv("NOVITA_API_KEY", API_KEY)
    monkeypatch.setenv("WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("NOVITA_NOTEBOOK_HOME", str(tmp_path / "home"))
    source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    secrets = {"api key": API_KEY, "webhook secret": WEBHOOK_SECRET}
    found = SECRET_LITERAL.findall(source)
    assert len(found) >= literals, f"{name}: expected credentials in the source, found {found}"
    for index, literal in enumerate(found):
        secrets[f"credential literal {index} of {name}"] = literal
    notebook = _execute(path)
    texts = _output_texts(notebook)
    assert texts, f"{name} produced no output to scan"
    assert_no_leaks(f"notebook {name}", texts, secrets)
