"""The magics' side of provisioning: --volume (repeatable) and --prefer in the line and the
cell, and %novita storages, through a real IPython shell bound to the sandbox client.
"""

from __future__ import annotations

import json

import pytest

from tests.provisioning.helpers import CREATE_PATH, calls


@pytest.fixture
def ip(client):
    from IPython.core.interactiveshell import InteractiveShell

    from novita_notebook.notebook.magics import get_magics

    shell = InteractiveShell.instance()
    if get_magics(shell) is None:
        shell.run_line_magic("load_ext", "novita_notebook")
    magics = get_magics(shell)
    magics.client = client
    yield shell
    magics.client = None


def _bodies(sandbox):
    return [json.loads(r["body"]) for r in calls(sandbox, CREATE_PATH)]


def test_volume_flags_in_the_line_and_the_cell(ip, client, sandbox, capsys):
    assert ip.run_line_magic("novita", "storages") is None
    assert "No network volumes" in capsys.readouterr().out
    one = client.create_storage("set-a", "EU-DE-01", 10)
    two = client.create_storage("set-b", "EU-DE-01", 10)
    frame = ip.run_line_magic("novita", "storages")
    assert set(frame["name"]) == {"set-a", "set-b"}

    sandbox.clear_requests()
    made = ip.run_line_magic(
        "novita", "create vol-line --gpu 4090 --volume set-a --volume set-b:/data --prefer region"
    )
    assert made.cluster_id == "eu-de-1"
    assert _bodies(sandbox)[-1]["networkStorages"] == [
        {"Id": one.id, "mountPoint": "/network"},
        {"Id": two.id, "mountPoint": "/data"},
    ]
    assert made.fallback_report.prefer == "region"

    sandbox.clear_requests()
    cell = "name: vol-cell\ngpu: 4090\nvolumes: set-a, set-b:/data\nprefer: price\n"
    made = ip.run_cell_magic("novita", "create", cell)
    assert made.cluster_id == "eu-de-1"
    assert [v["Id"] for v in _bodies(sandbox)[-1]["networkStorages"]] == [one.id, two.id]

    sandbox.clear_requests()
    made = ip.run_cell_magic("novita", "create vol-first --volume set-a", "gpu: 4090\n")
    assert _bodies(sandbox)[-1]["networkStorages"] == [{"Id": one.id, "mountPoint": "/network"}]


def test_a_bad_prefer_is_refused_before_any_call(ip, sandbox):
    sandbox.clear_requests()
    with pytest.raises(BaseException, match="prefer|invalid choice"):
        ip.run_line_magic("novita", "create p-1 --gpu 4090 --prefer cheapest")
    assert calls(sandbox, CREATE_PATH) == []
