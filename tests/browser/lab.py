"""The browser-test driver: a running JupyterLab (REST helpers) and a Playwright page on it
that opens notebooks, runs them, waits for the kernel by the status bar and takes screenshots.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

#: Text that means a widget did not render.
WIDGET_FAILURES = ("Error displaying widget", "model not found", "Loading widget")

#: Console messages from JupyterLab itself, not from this package (each one explained).
CONSOLE_ALLOWLIST: tuple[tuple[str, str], ...] = ()

OUTPUT = ".jp-OutputArea-output"
#: An output rendered by the ipywidgets renderer (a Lumino panel, unlike the text/HTML ones).
WIDGET_VIEW = f"{OUTPUT}.lm-Panel"
STDERR = f"{OUTPUT}[data-mime-type='application/vnd.jupyter.stderr']"


@dataclass
class JupyterLab:
    """A JupyterLab server started by the session fixture."""

    url: str
    root: Path
    log: Path

    def wait_ready(self, process: subprocess.Popen[Any], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/api/status", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"JupyterLab did not answer in {timeout} s:\n{self.log.read_text()}")

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, f"{self.url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def set_setting(self, plugin: str, values: dict[str, Any]) -> None:
        """Write a user setting through JupyterLab's settings API (read at page load)."""
        self.api("PUT", f"/lab/api/settings/{plugin}", data=json.dumps({"raw": json.dumps(values)}))

    def set_theme(self, theme: str) -> None:
        self.set_setting("@jupyterlab/apputils-extension:themes", {"theme": theme})

    def kernels(self) -> list[dict[str, Any]]:
        return self.api("GET", "/api/kernels").json()

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """A notebook of code cells in the server's root; returns its file name."""
        notebook = {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": f"cell-{index}",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for index, source in enumerate(cells)
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(notebook))
        return name


class Lab:
    """One browser page on the JupyterLab, with the steps a person takes."""

    def __init__(self, page: Any, server: JupyterLab, shots: Path) -> None:
        self.page = page
        self.server = server
        self.shots = shots
        self.shots.mkdir(parents=True, exist_ok=True)
        self.console_errors: list[str] = []
        self._step = 0
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}"))

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = message.text
        for pattern, _why in CONSOLE_ALLOWLIST:
            if re.search(pattern, text):
                return
        self.console_errors.append(text)

    # -- navigation ------------------------------------------------------------------------------
    def open(self, name: str, timeout: float = 60) -> None:
        """Open a notebook by URL and wait for its kernel to be idle (status bar)."""
        self.page.goto(f"{self.server.url}/lab/tree/{name}?reset")  # no restored tabs
        self.page.wait_for_selector(".jp-Notebook", timeout=timeout * 1000)
        self.wait_idle(timeout=timeout, need_busy=False)
        self._collapse_left_sidebar()

    def _collapse_left_sidebar(self) -> None:
        current = self.page.locator("#jp-left-stack:visible")
        if current.count():
            self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()

    def status_text(self) -> str:
        """The kernel status item of the status bar, e.g. ``Python 3 (ipykernel) | Idle``."""
        items = self.page.locator("#jp-main-statusbar .jp-StatusBar-Item", has_text=" | ")
        return items.first.inner_text() if items.count() else ""

    def wait_idle(self, timeout: float = 120, need_busy: bool = True) -> None:
        """Wait until the status bar says Idle (after Busy when ``need_busy``) and no cell
        prompt shows ``[*]``. The toolbar indicator is not used: it reads idle too early."""
        deadline = time.monotonic() + timeout
        seen_busy = not need_busy
        idle_since: float | None = None
        while time.monotonic() < deadline:
            status = self.status_text()
            running = self.page.locator(".jp-InputPrompt", has_text="[*]").count()
            if "Busy" in status or running:
                seen_busy = True
                idle_since = None
            elif status.endswith("Idle") and seen_busy:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 0.6:  # stays idle (no cell queued next)
                    return
            time.sleep(0.2)
        raise AssertionError(f"kernel not idle within {timeout} s (status bar: {status!r})")

    def menu(self, top: str, item: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).first.click()

    def run_all(self, timeout: float = 120) -> None:
        """Run > Run All Cells, then wait for idle."""
        self.menu("Run", "Run All Cells")
        self.wait_idle(timeout=timeout)

    def save(self) -> None:
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "() => !document.querySelector('.jp-mod-current.jp-mod-dirty')", timeout=15000
        )

    def cell(self, index: int) -> Any:
        """The output area of the index-th cell of the open notebook."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")

    def select_cell(self, index: int) -> None:
        """Select a cell in command mode, as a click on its prompt does."""
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Escape")

    # -- looking -------------------------------------------------------------------------------
    def outputs_text(self) -> str:
        return self.page.locator(".jp-Notebook").inner_text()

    def tracebacks(self) -> list[str]:
        texts = self.page.locator(STDERR).all_inner_texts()
        errors = self.page.locator(
            f"{OUTPUT}[data-mime-type='application/vnd.jupyter.error']"
        ).all_inner_texts()
        return [t for t in texts if "Traceback" in t] + errors

    def widget_failures(self) -> list[str]:
        text = self.outputs_text()
        return [failure for failure in WIDGET_FAILURES if failure in text]

    def unstyled_links(self) -> list[str]:
        """Links inside widgets drawn in the colour of the text around them."""
        return self.page.evaluate(
            """() => [...document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets a')]
                  .filter(a => getComputedStyle(a).color === getComputedStyle(a.parentElement).color)
                  .map(a => a.href)"""
        )

    def unpadded_cells(self) -> list[str]:
        """Cells of our tables (fallback report, products, instances) without padding."""
        return self.page.evaluate(
            """() => [...document.querySelectorAll('.jp-OutputArea-output .novita-table td')]
                  .filter(td => parseFloat(getComputedStyle(td).paddingLeft) < 4)
                  .map(td => td.innerText)"""
        )

    def misaligned(self) -> list[str]:
        """Cells of our views whose alignment is not the one they ask for, and rows the
        notebook's table CSS striped: each view's own style must win."""
        return self.page.evaluate(
            """() => {
                const bad = [];
                const views = '.novita-frame, .novita-instances, table.novita-table, .novita-widget';
                for (const root of document.querySelectorAll(
                        '.jp-OutputArea-output :is(' + views + ')')) {
                    for (const cell of root.querySelectorAll('td, th')) {
                        const want = cell.style.textAlign || 'left';
                        const got = getComputedStyle(cell).textAlign;
                        if (got !== want && !(want === 'left' && got === 'start'))
                            bad.push(got + ': ' + cell.innerText.slice(0, 40));
                    }
                    for (const row of root.querySelectorAll('tr')) {
                        const bg = getComputedStyle(row).backgroundColor;
                        if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent')
                            bad.push('striped row ' + bg + ': ' + row.innerText.slice(0, 40));
                    }
                }
                return bad;
            }"""
        )

    def wrapped_regions(self) -> list[str]:
        """Region codes (``AS-SGP-02``) in our views drawn on more than one line."""
        return self.page.evaluate(
            """() => {
                const views = '.novita-frame, .novita-instances, table.novita-table, .novita-widget';
                const code = /^[A-Z]{2,3}-[A-Z]+-[0-9]{2}$/;
                const out = [];
                for (const el of document.querySelectorAll(
                        '.jp-OutputArea-output :is(' + views + ') :is(span, td)')) {
                    if (el.children.length || !code.test(el.textContent.trim())) continue;
                    const range = document.createRange();
                    range.selectNodeContents(el);
                    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                    if (lines.size > 1) out.push(el.textContent.trim());
                }
                return out;
            }"""
        )

    def doubled_views(self) -> int:
        """Export snapshots on screen: next to a drawn widget each must hide (or be emptied),
        or the view would show twice."""
        return self.page.evaluate(
            """() => [...document.querySelectorAll('.jp-OutputArea-output .novita-snapshot')]
                  .filter(s => s.getBoundingClientRect().height > 0).length"""
        )

    def widgets(self) -> Any:
        """Rendered ipywidgets views inside outputs."""
        return self.page.locator(f"{WIDGET_VIEW} > .jupyter-widgets.widget-box")

    def shot(self, label: str, locator: Any = None) -> Path:
        """A screenshot of the page (or of one element), numbered in step order."""
        self._step += 1
        path = self.shots / f"{self._step:02d}-{label}.png"
        if locator is not None:
            locator.scroll_into_view_if_needed()
            box = locator.bounding_box()
            if box is not None and box["height"] <= self.page.viewport_size["height"]:
                locator.screenshot(path=str(path))
                return path
            locator.evaluate("el => el.scrollIntoView({block: 'start'})")  # tall: its top part
        self.page.screenshot(path=str(path))
        return path

    def shutdown_kernels(self) -> None:
        for kernel in self.server.kernels():
            with contextlib.suppress(requests.RequestException):  # best effort at teardown
                self.server.api("DELETE", f"/api/kernels/{kernel['id']}")
