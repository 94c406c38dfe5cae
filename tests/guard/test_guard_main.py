"""``python -m novita_notebook.guard`` with a setting it cannot use ends with one line naming
the setting and the rule (exit status 2), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"NOVITA_GUARD_INTERVAL": "soon", "NOVITA_API_KEY": "sk_test_0123456789"},
            "NOVITA_GUARD_INTERVAL",
        ),
        (
            {"NOVITA_GUARD_INTERVAL": "-5", "NOVITA_API_KEY": "sk_test_0123456789"},
            "NOVITA_GUARD_INTERVAL",
        ),
        ({}, "api_key"),
    ],
)
def test_a_bad_setting_is_one_line_not_a_traceback(tmp_path, env, said):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "WEBHOOK_"))}
    clean.update(env, NOVITA_NOTEBOOK_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "novita_notebook.guard", "--once"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.stderr
