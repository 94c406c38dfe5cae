"""Browser-test fixtures: a private JupyterLab on loopback over copies of the notebooks, and
headless Chromium (the system one) driven by Playwright, with console errors collected.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("NOVITA_TEST_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} missing (apt-get install chromium)"
    for module in ("jupyterlab", "playwright"):
        if importlib.util.find_spec(module) is None:
            return f"{module} not installed (pip install -e '.[test]')"
    return None


_REASON = _missing()
if _REASON is not None:
    pytest.skip(f"browser tests skipped: {_REASON}", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

from .lab import JupyterLab, Lab  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: User settings written before JupyterLab starts: no autosave (tests decide when to save),
#: no news or update checks (network), widget state saved with the notebook, no windowing.
USER_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
    # Render every cell: the default windowing leaves off-screen outputs out of the DOM.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    for name, values in USER_SETTINGS.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


#: Where screenshots go unless ``NOVITA_TEST_SCREENSHOTS`` says: inside the repository, in a
#: folder git ignores (``build/``), so CI can keep them as artefacts.
ARTIFACTS = REPO / "build" / "browser-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (``NOVITA_TEST_SCREENSHOTS``, else ``build/browser-artifacts``,
    emptied at the start of a run); printed so a person can look at them."""
    chosen = os.environ.get("NOVITA_TEST_SCREENSHOTS")
    folder = Path(chosen) if chosen else ARTIFACTS
    if not chosen and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {folder}", file=sys.stderr)
    return folder


@pytest.fixture(scope="package")
def jupyterlab(tmp_path_factory) -> Iterator[JupyterLab]:
    """JupyterLab on a free loopback port, no token, over a copy of notebooks/."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    shutil.copytree(NOTEBOOKS, root)
    dirs = {name: base / name for name in ("settings", "workspaces", "config", "runtime", "home")}
    for folder in dirs.values():
        folder.mkdir()
    _write_settings(dirs["settings"])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOVITA_", "JUPYTER", "WEBHOOK_")) and k != "PYTEST_CURRENT_TEST"
    }
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        NOVITA_NOTEBOOK_HOME=str(dirs["home"]),
        PYTHONWARNINGS="ignore",
    )
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--allow-root",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = (base / "jupyterlab.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    lab = JupyterLab(url=f"http://127.0.0.1:{port}", root=root, log=base / "jupyterlab.log")
    try:
        lab.wait_ready(process, timeout=60)
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# package scope: Playwright's sync API keeps an event loop running in the main thread while it
# is open, which would make asyncio.run() fail in every test collected after tests/browser.
@pytest.fixture(scope="package")
def chromium() -> Iterator[object]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def lab(jupyterlab, chromium, artifacts, request) -> Iterator[Lab]:
    """A fresh browser page on the JupyterLab, 1,000 px wide; console errors collected."""
    context = chromium.new_context(viewport={"width": 1000, "height": 1100})
    page = context.new_page()
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    driver = Lab(page, jupyterlab, artifacts / name)
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):  # the last view, also when the test failed
            driver.shot("final")
        driver.shutdown_kernels()
        context.close()
