"""A "Novita: NAME" kernelspec run by jupyter_client's own KernelManager, as Jupyter runs it:
the launcher forwards Jupyter's ports to an ipykernel on the sandbox instance, interrupts and
shutdowns go through, and a stopped instance is answered in the cell instead of a dead kernel.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager


def _run(client, code, timeout=60):
    outputs = []
    reply = client.execute_interactive(code, timeout=timeout, output_hook=outputs.append)
    texts = [o["content"].get("text") or o["content"].get("evalue") or "" for o in outputs
             if o["header"]["msg_type"] in ("stream", "error", "execute_result")]  # fmt: skip
    values = [o["content"]["data"]["text/plain"] for o in outputs
              if o["header"]["msg_type"] == "execute_result"]  # fmt: skip
    return reply["content"], "".join(texts), values


def _eventually(client, code, within=30.0):
    """The values of ``code`` once the link is back: a cell sent while IOPub was still being
    subscribed again may lose its outputs (as in Jupyter itself), so it is sent again."""
    deadline = time.monotonic() + within
    while True:
        try:
            reply, _, values = _run(client, code, timeout=5)
        except TimeoutError:
            assert time.monotonic() < deadline, "the kernel did not come back"
            continue
        if values or time.monotonic() > deadline:
            return values


@pytest.fixture
def jupyter(client, instance, sandbox, tmp_path, monkeypatch):
    """The kernelspec installed under a private prefix and a KernelManager for it."""
    name = client.install_kernelspec(instance, prefix=str(tmp_path / "prefix"))
    kernels = tmp_path / "prefix" / "share" / "jupyter" / "kernels"
    monkeypatch.setenv("NOVITA_API_KEY", sandbox.api_key)  # the Jupyter server's environment
    manager = KernelManager(kernel_name=name,
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))  # fmt: skip
    manager.start_kernel()
    kernel_client = manager.client()
    kernel_client.start_channels()
    kernel_client.wait_for_ready(timeout=60)
    yield manager, kernel_client, kernels / name
    kernel_client.stop_channels()
    if manager.has_kernel:
        manager.shutdown_kernel(now=True)


def test_the_kernelspec_runs_the_notebook_on_the_instance(jupyter, instance, sandbox):
    manager, kernel, folder = jupyter
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["display_name"] == "Novita: remote-1" and spec["interrupt_mode"] == "message"
    assert "variables end with it" in spec["metadata"]["novita"]["note"]
    assert sandbox.api_key not in json.dumps(spec)
    _, _, values = _run(kernel, "import os\nx = 20\nos.getcwd()")
    assert values == [repr(sandbox.instance_home(instance.id))]
    assert _run(kernel, "x * 2")[2] == ["40"]

    sandbox.sever_ssh(instance.id)  # a dropped connection: the launcher makes it again
    assert _eventually(kernel, "x + 1") == ["21"]

    kernel.execute("import time\ntime.sleep(30)")
    time.sleep(1)
    started = time.monotonic()
    manager.interrupt_kernel()
    reply = kernel.get_shell_msg(timeout=20)
    assert reply["content"]["ename"] == "KeyboardInterrupt" and time.monotonic() - started < 10

    kernels = Path(sandbox.instance_home(instance.id)) / ".novita" / "kernels"
    assert list(kernels.glob("*.json"))
    manager.shutdown_kernel()
    assert not manager.is_alive()
    assert not list(kernels.glob("*.json"))  # the remote kernel ended with it


def test_a_stopped_instance_is_answered_in_the_cell(jupyter, client, instance):
    manager, kernel, _ = jupyter
    assert _run(kernel, "y = 1")[0]["status"] == "ok"
    client.stop(instance.id)
    client.wait(instance.id, until="exited", timeout=30)
    deadline = time.monotonic() + 30
    while True:  # the first cell may meet the kernel's end half-way
        try:
            reply, text, _ = _run(kernel, "y", timeout=5)
        except TimeoutError:
            continue
        if reply["status"] == "error" or time.monotonic() > deadline:
            break
    assert reply["ename"] == "InstanceStopped"
    assert "was stopped" in text and "variables" in text and "Restart" in text
    assert manager.is_alive()  # no "kernel died" loop: it stays and says why
