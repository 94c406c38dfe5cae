"""The command line: ``python -m novita_notebook.sandbox`` and ``novita-notebook sandbox`` start a
real server in a subprocess that prints its URL and key, serves, and stops on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from novita_notebook.sandbox import DEFAULT_API_KEY
from novita_notebook.sandbox.__main__ import main


def _launch(*argv: str) -> tuple[subprocess.Popen, str, list[str]]:
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ}
    )
    lines = [process.stdout.readline() for _ in range(3)]
    match = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0])
    assert match, (lines, process.stderr.read() if process.poll() is not None else "")
    return process, match.group(1), lines


def _finish(process: subprocess.Popen, signum: int) -> str:
    process.send_signal(signum)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    return out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_module_entry_point_serves_and_stops(signum):
    process, url, lines = _launch(
        sys.executable,
        "-m",
        "novita_notebook.sandbox",
        "--port",
        "0",
        "--speed",
        "50",
        "--seed",
        "3",
    )
    try:
        assert any(DEFAULT_API_KEY in line for line in lines)
        api = f"{url}/gpu-instance/openapi/v1/clusters"
        good = requests.get(api, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}, timeout=5)
        assert good.status_code == 200 and len(good.json()["data"]) == 8
        bad = requests.get(api, headers={"Authorization": "Bearer sk_wrong"}, timeout=5)
        assert bad.status_code == 401 and bad.json()["reason"] == "UNAUTHORIZED"
    finally:
        out = _finish(process, signum)
    assert "stopped" in out


def test_console_script_with_custom_key():
    script = shutil.which("novita-notebook") or str(Path(sys.executable).parent / "novita-notebook")
    if not Path(script).exists():
        pytest.skip("the novita-notebook console script is not installed")
    process, url, lines = _launch(script, "sandbox", "--port", "0", "--api-key", "sk_cli_key")
    try:
        assert any("sk_cli_key" in line for line in lines)
        api = f"{url}/gpu-instance/openapi/v1/products"
        assert requests.get(api, headers={"Authorization": "Bearer sk_cli_key"}, timeout=5).ok
        wrong = requests.get(api, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}, timeout=5)
        assert wrong.status_code == 401
    finally:
        _finish(process, signal.SIGTERM)


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--speed", "0"], "--speed"),
        (["--speed", "fast"], "--speed"),
        (["--port", "99999"], "--port"),
        (["--seed", "x"], "--seed"),
        (["--colour"], "--colour"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(argv, word, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert word in capsys.readouterr().err


def test_busy_port_is_reported(sandbox, capsys):
    assert main(["--port", str(sandbox.port)]) == 1
    assert "cannot listen" in capsys.readouterr().err
