"""What a cell shows in a real kernel (nbclient): ``panel = %novita watch`` shows the panel
(once, assigned or not), a create shows its card even when assigned, lifecycle magics say one
line and no card, and every widget output carries an HTML snapshot next to the widget view.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WIDGET = "application/vnd.jupyter.widget-view+json"
START = "%load_ext novita_notebook\n%novita sandbox start --speed 300"


def widget_outputs(cell) -> list[dict]:
    return [o for o in cell.outputs if WIDGET in o.get("data", {})]


def snapshots(cell) -> list[str]:
    """The export snapshots a cell carries (outputs before a widget that only it draws)."""
    return [
        o["data"]["text/html"]
        for o in cell.outputs
        if "novita-snapshot" in o.get("data", {}).get("text/html", "")
    ]


def test_watch_assigned_or_not_shows_the_panel_once(run_in_kernel):
    notebook = run_in_kernel(
        [
            START,
            "panel = %novita watch",
            "%novita watch",
            "panel2 = %novita watch --keep",
        ]
    )
    for index in (1, 2, 3):
        cell = notebook.cells[index]
        (widget,) = widget_outputs(cell)  # exactly one panel
        assert "Instances" in widget["data"]["text/html"]  # its own snapshot, same output
        assert widget["data"]["text/plain"].startswith("<InstancePanel")
        (snapshot,) = snapshots(cell)  # what an export shows, as there is no frontend here
        assert "No instances yet" in snapshot
    assert not [o for o in notebook.cells[2].outputs if o["output_type"] == "execute_result"]


def test_create_shows_its_card_assigned_and_lifecycle_magics_say_one_line(run_in_kernel):
    notebook = run_in_kernel(
        [
            START,
            'gpu = %novita create demo-1 --gpu "RTX 4090" --wait',
            "%novita stop demo-1",
            "_ = %novita wait demo-1 --until exited",
            "%novita start demo-1",
            "gpu.name",
        ]
    )
    create = notebook.cells[1]
    cards = [o for o in widget_outputs(create) if "novita-card" in o["data"]["text/html"]]
    assert len(cards) == 1 and "demo-1" in cards[0]["data"]["text/html"]
    assert any("novita-report" in o.get("data", {}).get("text/html", "") for o in create.outputs)
    for index, verb in ((2, "Stop"), (4, "Start")):
        cell = notebook.cells[index]
        assert [o["output_type"] for o in cell.outputs] == ["stream"], cell.outputs
        assert len(cell.outputs[0]["text"].strip().splitlines()) == 1
        assert cell.outputs[0]["text"].startswith(verb)
    assert notebook.cells[5].outputs[0]["data"]["text/plain"] == "'demo-1'"


def test_browse_assigned_shows_the_browser(run_in_kernel):
    notebook = run_in_kernel([START, "b = %novita browse --gpu 4090"])
    (widget,) = widget_outputs(notebook.cells[1])
    assert "GPU products" in widget["data"]["text/html"]
    (snapshot,) = snapshots(notebook.cells[1])
    assert "RTX 4090" in snapshot
