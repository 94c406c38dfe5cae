"""Work on an instance from real JupyterLab: a ``%%novita on`` cell draws the image its remote
kernel displayed, the next cell sees the variable the first one set, and the live GPU view
renders its readings, pauses from its button and says so.
"""

from __future__ import annotations

import pytest

from .lab import WIDGET_VIEW

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

#: A 2x2 PNG (red, green / blue, white), built from bytes: no plotting library needed.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAAMIM/4EAAB/uBfsL2WiLAAAAAElFTkSuQmCC"
CELLS = [
    "%load_ext novita_notebook\n%novita sandbox start --speed 300 --seed 0",
    '%novita create gpu-1 --gpu "RTX 4090" --image ubuntu:22.04 --wait',
    "%%novita on gpu-1\nimport base64\nfrom IPython.display import Image, display\n"
    f"x = 41\ndisplay(Image(data=base64.b64decode('{PNG}'), width=64))",
    "%%novita on gpu-1\nprint('x is', x + 1)",
    "top = %novita top gpu-1 --live --interval 0.5",
    "%novita top gpu-1",
]
IMAGE_CELL, STATE_CELL, TOP_CELL, FRAME_CELL = 2, 3, 4, 5


def test_remote_cells_draw_here_and_the_gpu_view_is_live(lab):
    lab.server.set_theme("JupyterLab Light")
    lab.open(lab.server.write_notebook("remote-work.ipynb", CELLS))
    lab.run_all()
    assert lab.tracebacks() == [] and lab.widget_failures() == []

    image = lab.cell(IMAGE_CELL).locator("img")
    assert image.count() == 1
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 2  # decoded: a real PNG
    assert lab.cell(STATE_CELL).inner_text().strip() == "x is 42"  # the kernel kept x

    top = lab.cell(TOP_CELL).locator(f"{WIDGET_VIEW} .novita-top")
    assert top.count() == 1
    text = top.inner_text()
    assert "GPUs of gpu-1" in text and "NVIDIA GeForce RTX 4090" in text
    assert " %" in text and "MiB" in text and "/h" in text and "so far" in text
    assert top.locator(".novita-connection[data-state='live']").count() == 1
    lab.shot("top-live", top)
    top.locator("button", has_text="Stop").click()
    top.locator(".novita-connection[data-state='paused']").wait_for(timeout=15000)
    assert top.locator("button", has_text="Resume").count() == 1
    lab.shot("top-paused", top)
    frame = lab.cell(FRAME_CELL).locator(".novita-top")
    lab.shot("top-frame", frame)
    assert "$0.35/h" in frame.inner_text()  # money as text, not typeset as TeX
    assert lab.cell(FRAME_CELL).locator("mjx-container, .MathJax").count() == 0
    assert frame.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the table overflows"
    assert lab.doubled_views() == 0 and lab.misaligned() == []
    assert lab.console_errors == []
