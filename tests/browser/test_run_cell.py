"""A ``%%novita run`` cell in real JupyterLab: its first line is on the page while the code is
still running on the instance (streamed, not printed at the end), a ``\\r`` progress bar ends
as one line, stderr is drawn as stderr, a failure fails the cell in a few lines, and the stop
button interrupts the code there with one line saying so.
"""

from __future__ import annotations

import time

import pytest

from .lab import OUTPUT, STDERR

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SETUP = (
    "%load_ext novita_notebook\n"
    "%novita sandbox start --speed 300 --seed 0\n"
    'gpu = %novita create streamer --gpu "RTX 4090" --wait'
)
STREAMED = """%%novita run streamer
import sys, time
print("first line", flush=True)
time.sleep(4)
for percent in range(10, 101, 10):
    print(f"\\rprogress {percent:3d}%", end="", flush=True)
    time.sleep(0.05)
print()
print("a warning", file=sys.stderr)
print("finished")"""
FAILING = "%%novita run streamer\nimport math\nmath.sqrt(-1)"
ENDLESS = "%%novita run streamer\nimport time\nprint('looping', flush=True)\nwhile True:\n    time.sleep(0.05)"
CELLS = [SETUP, STREAMED, FAILING, ENDLESS]


def test_a_run_cell_streams_and_draws_progress_bars_as_a_local_cell(lab):
    name = lab.server.write_notebook("run-cell.ipynb", CELLS)
    lab.open(name)
    lab.select_cell(0)
    lab.page.keyboard.press("Shift+Enter")
    lab.wait_idle(timeout=60)

    lab.select_cell(1)
    lab.page.keyboard.press("Shift+Enter")
    output = lab.cell(1)
    output.get_by_text("first line").wait_for(timeout=30000)
    seen_at = time.monotonic()
    assert "finished" not in output.inner_text()
    assert lab.page.locator(".jp-InputPrompt", has_text="[*]").count() == 1, "not running"
    lab.shot("streaming", output)
    output.get_by_text("finished").wait_for(timeout=30000)
    assert time.monotonic() - seen_at > 2, "the first line came only with the rest"
    lab.wait_idle(timeout=30, need_busy=False)
    lab.shot("finished", output)

    stdout = output.locator(f"{OUTPUT}[data-mime-type='application/vnd.jupyter.stdout']")
    lines = "\n".join(stdout.all_inner_texts()).splitlines()
    assert [line.strip() for line in lines if line.strip()] == [
        "first line",
        "progress 100%",
        "finished",
    ]
    assert output.locator(STDERR).inner_text().strip() == "a warning"

    lab.select_cell(2)
    lab.page.keyboard.press("Shift+Enter")
    failed = lab.cell(2)
    # JupyterLab draws an error output with the stderr renderer, after the streamed traceback
    error = failed.locator(STDERR, has_text="RemoteRunError")
    error.wait_for(timeout=30000)
    lab.wait_idle(timeout=30, need_busy=False)
    text = error.inner_text()
    assert text.startswith("RemoteRunError: run r-") and "ValueError: math domain error" in text
    assert len(text.strip().splitlines()) <= 6, text
    lab.shot("failed", failed)

    lab.select_cell(3)  # the stop button: the kernel's SIGINT reaches the code on the instance
    lab.page.keyboard.press("Shift+Enter")
    endless = lab.cell(3)
    endless.get_by_text("looping").wait_for(timeout=30000)
    lab.menu("Kernel", "Interrupt Kernel")
    said = endless.locator(STDERR, has_text="was interrupted on streamer")
    said.wait_for(timeout=30000)
    assert said.inner_text().startswith("KeyboardInterrupt: run r-")
    assert "was interrupted on streamer (now interrupted);" in said.inner_text()
    assert "%novita runs streamer" in said.inner_text()
    assert "KeyboardInterrupt" in endless.inner_text()  # the code's own, from the instance
    lab.wait_idle(timeout=30, need_busy=False)
    lab.shot("interrupted", endless)
    assert lab.console_errors == []
