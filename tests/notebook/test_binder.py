"""binder/start launches the sandbox, exports NOVITA_API_URL/NOVITA_API_KEY for it and execs
the given command; the command reaches the sandbox with no credentials of its own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START = ROOT / "binder" / "start"

PROBE = """
import json, os
from novita_notebook import Novita
client = Novita()  # configured only through the environment binder/start exported
print(json.dumps({
    "url": os.environ["NOVITA_API_URL"],
    "pid": int(os.environ["NOVITA_SANDBOX_PID"]),
    "clusters": len(client.api.clusters()),
    "key_in_env": bool(os.environ.get("NOVITA_API_KEY")),
}))
client.close()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_binder_files_are_in_place():
    assert os.access(START, os.X_OK), "binder/start must be executable"
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK)
    assert START.read_text().rstrip().endswith('exec "$@"')
    assert "pip install" in (ROOT / "binder" / "postBuild").read_text()
    assert "ipywidgets" in (ROOT / "binder" / "requirements.txt").read_text()


@pytest.mark.timeout(90)
def test_start_runs_sandbox_and_exports_credentials(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVITA_", "WEBHOOK_"))}
    env.update(
        NOVITA_SANDBOX_PORT=str(port),
        NOVITA_NOTEBOOK_HOME=str(tmp_path / "home"),
        PYTHON=sys.executable,
        TMPDIR=str(tmp_path),
    )
    result = subprocess.run(
        [str(START), sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=80,
    )
    info = None
    try:
        assert result.returncode == 0, result.stderr
        info = json.loads(result.stdout.strip().splitlines()[-1])
        assert info["url"] == f"http://127.0.0.1:{port}"
        assert info["clusters"] == 8
        assert info["key_in_env"]
        assert "sk_" not in result.stdout  # the key is exported, never printed
    finally:
        pid = info["pid"] if info else None
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert pid is not None and not alive(pid)


@pytest.mark.timeout(60)
def test_start_fails_cleanly_when_the_port_is_taken(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = dict(os.environ, NOVITA_SANDBOX_PORT=str(port), PYTHON=sys.executable)
        env["TMPDIR"] = str(tmp_path)
        result = subprocess.run(
            [str(START), sys.executable, "-c", "print('should not run')"],
            env=env,
            capture_output=True,
            text=True,
            timeout=50,
        )
    assert result.returncode != 0
    assert "should not run" not in result.stdout
