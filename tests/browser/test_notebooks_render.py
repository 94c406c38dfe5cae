"""Every notebook in notebooks/ run with Run All in a real JupyterLab: widgets render, no
tracebacks, no widget errors, no console errors; the widget notebooks in light and dark theme.
"""

from __future__ import annotations

import json
import re

import pytest

from .conftest import NOTEBOOKS, REPO
from .lab import STDERR, WIDGET_VIEW

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"

#: Widgets each notebook shows, by a text each one carries (a button or a label).
EXPECTED_WIDGETS = {
    "01-quickstart.ipynb": ["Create…", "Refresh"],
    "04-watch-and-webhooks.ipynb": ["Confirm delete"],
    "08-stay-on-the-gpu.ipynb": ["Resume", "pull gpu-1:course"],
}

#: Notebooks that show a failing cell on purpose (tagged raises-exception, so Run All goes
#: on): a text its streamed traceback and its error both carry.
EXPECTED_FAILURES = {"07-run-on-the-gpu.ipynb": "ZeroDivisionError"}

#: HTML outputs each notebook shows (CSS selectors), checked for sideways scroll too.
EXPECTED_HTML = {
    "01-quickstart.ipynb": [".novita-instances"],
    "07-run-on-the-gpu.ipynb": [".novita-runs"],
    "08-stay-on-the-gpu.ipynb": [".novita-top", "img[src^='data:image/png']"],
}

#: Every notebook in light; the panel notebook in dark too (the driven test covers the rest).
CASES = [(path.name, LIGHT) for path in sorted(NOTEBOOKS.glob("*.ipynb"))] + [
    ("04-watch-and-webhooks.ipynb", DARK)
]


@pytest.mark.parametrize(
    ("name", "theme"), CASES, ids=[f"{n[:2]}-{t.split()[-1]}" for n, t in CASES]
)
def test_notebook_runs_clean(lab, name, theme):
    lab.server.set_theme(theme)
    lab.open(name)
    assert (
        theme.split()[-1].lower()
        in (lab.page.locator("body").get_attribute("data-jp-theme-name") or "").lower()
    )
    lab.run_all()
    lab.shot("after-run-all")

    failure = EXPECTED_FAILURES.get(name)
    assert [t for t in lab.tracebacks() if not (failure and failure in t)] == []
    if failure:  # shown, and Run All went on past it to the last cell
        assert lab.page.locator(STDERR, has_text=failure).count() == 2  # streamed, then the error
        last = lab.page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").last.inner_text()
        assert re.fullmatch(r"\[\d+\]:", last.strip()), f"Run All stopped: {last!r}"
    assert lab.widget_failures() == []
    views = lab.page.locator(WIDGET_VIEW)
    for index in range(views.count()):
        view = views.nth(index)
        assert view.locator(".widget-box, .widget-html").count() > 0, view.inner_text()
        lab.shot(f"widget-{index}", view)
    for text in EXPECTED_WIDGETS.get(name, []):
        assert lab.page.locator(f"{WIDGET_VIEW} .jupyter-widgets", has_text=text).count(), text
    overflowing = lab.page.evaluate(
        """() => [...document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets')]
              .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
              .map(e => e.className)"""
    )
    assert overflowing == [], "a widget scrolls sideways at 1,000 px"
    for selector in EXPECTED_HTML.get(name, []):
        found = lab.page.locator(f".jp-OutputArea-output {selector}")
        assert found.count(), selector
        lab.shot(selector.strip(".#"), found.first)
        wide = found.first.evaluate(
            "e => { const out = e.closest('.jp-OutputArea-output');"
            " return [e.scrollWidth, out.scrollWidth - out.clientWidth]; }"
        )
        assert wide[0] <= 1000 and wide[1] <= 1, f"{selector} scrolls sideways: {wide}"
    assert lab.unstyled_links() == []
    assert lab.unpadded_cells() == []
    assert lab.misaligned() == [], "the notebook's table CSS won over a view's own"
    assert lab.doubled_views() == 0, "a widget shown next to its own export snapshot"
    assert lab.wrapped_regions() == []
    assert lab.console_errors == []


SAVED = [
    "%load_ext novita_notebook\n%novita sandbox start --speed 100 --seed 0",
    "%novita browse --gpu 4090",
]


@pytest.mark.parametrize("save_state", [True, False], ids=["saveState", "default"])
def test_saved_notebook_reopens_with_its_widgets(lab, save_state):
    """With widget state saved in the notebook (the setting our binder ships), a reopened
    notebook shows the widgets from their saved state; JupyterLab's default shows
    "model not found" instead, which is why the README asks for the setting."""
    lab.server.set_theme(LIGHT)
    plugin = "@jupyter-widgets/jupyterlab-manager:plugin"
    shipped = json.loads((REPO / "binder" / "overrides.json").read_text())[plugin]
    lab.server.set_setting(plugin, shipped if save_state else {"saveState": False})
    name = lab.server.write_notebook(f"saved-{save_state}.ipynb", SAVED)
    lab.open(name)
    lab.run_all()
    lab.save()
    lab.shutdown_kernels()  # a new day: the kernel that held the widget models is gone
    lab.open(name)
    lab.page.locator(WIDGET_VIEW).first.wait_for()
    lab.page.wait_for_timeout(1500)  # let the widget manager restore what it can
    lab.shot("reopened")
    if save_state:
        assert lab.widget_failures() == []
        assert lab.page.locator(f"{WIDGET_VIEW} .widget-box", has_text="GPU products").count()
        assert lab.console_errors == []
    else:
        assert "model not found" in " ".join(lab.widget_failures())
