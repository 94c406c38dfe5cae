"""An offline HTML export of each example notebook (``jupyter nbconvert --to html --execute``,
widget state saved as it does by default) opened in Chromium with the network cut: every
widget output shows a non-empty snapshot of its view. Screenshots go to the artefacts folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import NOTEBOOKS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NAMES = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
#: The notebooks that show widgets (the others' checks would pass on nothing).
WITH_WIDGETS = ("01-quickstart.ipynb", "04-watch-and-webhooks.ipynb")


def _export(source: Path, folder: Path, home: Path) -> Path:
    """``jupyter nbconvert --to html --execute``, as a person would type it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "WEBHOOK_"))}
    env["NOVITA_NOTEBOOK_HOME"] = str(home / source.stem)
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
               "--ExecutePreprocessor.timeout=240", "--output-dir", str(folder), str(source)]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / f"{source.stem}.html"


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """Every notebook exported once (two at a time: the machine has few cores)."""
    folder = tmp_path_factory.mktemp("exports")
    for name in NAMES:
        shutil.copy(NOTEBOOKS / name, folder / name)
    home = tmp_path_factory.mktemp("ledgers")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_export, folder / name, folder, home) for name in NAMES}
        return {name: future.result() for name, future in futures.items()}


#: For each widget output of an export: the text of the snapshot drawn just before it and its
#: height, and whether it is shown (its own CSS hides it only next to a drawn widget).
SNAPSHOTS = """() => [...document.querySelectorAll('.jp-OutputArea-output.jupyter-widgets')]
    .map(view => {
        const child = view.closest('.jp-OutputArea-child');
        const before = child && child.previousElementSibling;
        const snap = before && before.querySelector('.novita-snapshot');
        if (!snap) return {found: false, where: child ? child.innerText.slice(0, 60) : ''};
        const box = snap.getBoundingClientRect();
        return {found: true, text: snap.innerText.trim(), height: box.height,
                shown: getComputedStyle(before).display !== 'none'};
    })"""


@pytest.mark.parametrize("name", NAMES)
def test_offline_export_shows_a_snapshot_for_every_widget(exports, chromium, artifacts, name):
    page_file = exports[name]
    context = chromium.new_context(viewport={"width": 1000, "height": 1100})
    # offline: only the file itself loads (the widget renderer's CDN never answers)
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith("file:") else route.abort())  # fmt: skip
    page = context.new_page()
    try:
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        found = page.evaluate(SNAPSHOTS)
        folder = artifacts / "exports" / page_file.stem
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "page.png"), full_page=True)
        views = page.locator(".jp-OutputArea-output.jupyter-widgets")
        for index, snapshot in enumerate(found):
            assert snapshot["found"], f"widget {index} has no snapshot: {snapshot}"
            assert snapshot["shown"] and snapshot["text"] and snapshot["height"] > 10, snapshot
            child = views.nth(index).locator(
                "xpath=ancestor::div[contains(@class,'jp-OutputArea-child')][1]/preceding-sibling::div[1]"
            )
            child.screenshot(path=str(folder / f"snapshot-{index:02d}.png"))
    finally:
        context.close()
    assert found or name not in WITH_WIDGETS, f"{name}: no widget output at all"
