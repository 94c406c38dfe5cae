"""The remote kernel against the sandbox over real SSH: ipykernel runs on the instance (the
sandbox's python3), jupyter_client talks to it through forwarded ports. State stays between
executions, rich outputs come back, a severed connection is survived, a stopped instance ends
it in words, a server that refuses forwarding is reported with the way out.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from novita_notebook import Novita
from novita_notebook.errors import (
    ForwardingRefusedError,
    RemoteExecutionError,
    RemoteKernelError,
    TimeoutError,
)
from novita_notebook.remote import activity


def test_a_variable_stays_between_executions_and_outputs_come_back(client, instance, sandbox):
    kernel = client.kernel(instance)
    first = kernel.execute("x = 41\nprint('hello'); import sys; print('oops', file=sys.stderr)")
    assert first.ok and first.stdout == "hello\n" and first.stderr == "oops\n"
    second = kernel.execute("x + 1")
    assert second.value == "42" and second.execution_count == first.execution_count + 1
    assert kernel.execute("import os; os.getcwd()").value == repr(
        sandbox.instance_home(instance.id)
    )  # it really runs on the instance, in its home
    assert client.kernel(instance.name) is kernel  # one kernel per instance


def test_a_matplotlib_figure_and_rich_displays_come_back(client, instance):
    kernel = client.kernel(instance)
    shown = []
    result = kernel.execute(
        "import matplotlib.pyplot as plt\n"
        "from IPython.display import HTML, display\n"
        "display(HTML('<b>bold</b>'))\n"
        "plt.plot([1, 3, 2]); plt.title('remote'); plt.show()",
        output=shown.append,
    )
    ((mime, png),) = result.images
    assert mime == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert {"text/html": "<b>bold</b>"}.items() <= result.displays[0].items()
    assert [o["output_type"] for o in shown] == ["display_data", "display_data"]


def test_an_error_raises_with_the_remote_traceback_and_keeps_the_state(client, instance):
    kernel = client.kernel(instance)
    kernel.execute("kept = 'yes'")
    with pytest.raises(RemoteExecutionError) as caught:
        kernel.execute("def f():\n    return 1 / 0\nf()")
    error = caught.value
    assert error.ename == "ZeroDivisionError" and "division by zero" in error.evalue
    assert any("return 1 / 0" in line for line in error.traceback)
    assert not any("\x1b[" in line for line in error.traceback)
    assert error.result.status == "error"
    assert kernel.execute("kept").value == "'yes'"
    quiet = kernel.execute("undefined_name", raise_on_error=False)
    assert quiet.error["ename"] == "NameError"


def test_a_severed_connection_is_survived_with_the_state(client, instance, sandbox):
    kernel = client.kernel(instance)
    kernel.execute("counter = 1")
    assert sandbox.sever_ssh(instance.id) >= 1
    assert kernel.execute("counter += 1; counter").value == "2"
    assert kernel.reconnects == 1

    # Severed while a cell runs: the cell completes, its effect is there exactly once.
    result: dict = {}

    def cell():
        result["run"] = kernel.execute(
            "import time\nprint('start', flush=True)\ntime.sleep(1.5)\ncounter += 1\nprint('end')"
        )

    running = threading.Thread(target=cell)
    running.start()
    time.sleep(0.6)
    sandbox.sever_ssh(instance.id)
    running.join(30)
    assert not running.is_alive()
    assert result["run"].ok
    assert kernel.execute("counter").value == "3"
    assert kernel.reconnects == 2


def test_a_stopped_instance_ends_the_kernel_with_a_message_that_says_so(client, instance, sandbox):
    kernel = client.kernel(instance)
    kernel.execute("x = 1")
    client.stop(instance.id)
    client.wait(instance.id, until="exited", timeout=30)
    with pytest.raises(RemoteKernelError) as caught:
        kernel.execute("x")
    message = str(caught.value)
    assert "ended" in message and "stopped" in message and "variables" in message
    assert "novita.start" in message
    assert kernel.state == "ended"
    with pytest.raises(RemoteKernelError, match="stopped"):
        kernel.execute("1")  # and again, at once


def test_a_server_that_refuses_forwarding_is_named_and_points_to_run(client, instance, sandbox):
    sandbox.allow_forwarding(False)
    with pytest.raises(ForwardingRefusedError) as caught:
        client.kernel(instance)
    text = str(caught.value)
    assert "refuses port forwarding" in text and "novita.run(" in text
    kernels = Path(sandbox.instance_home(instance.id)) / ".novita" / "kernels"
    deadline = time.monotonic() + 5
    while list(kernels.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(kernels.glob("*.json"))  # the kernel it started is ended again
    sandbox.allow_forwarding(True)
    assert client.kernel(instance).execute("1 + 1").value == "2"


def test_a_new_client_finds_the_kernel_and_its_variables(client, instance, sandbox):
    client.kernel(instance).execute("remembered = [1, 2, 3]")
    client.close()  # lets go of the kernel; it runs on
    with Novita(api_key=sandbox.api_key, api_url=sandbox.url) as other:
        again = other.kernel(instance.name)
        assert again.execute("sum(remembered)").value == "6"
        fresh = other.kernel(instance.name, new=True)
        assert fresh.kernel_id != again.kernel_id
        assert fresh.execute("'remembered' in dir()").value == "False"
        fresh.shutdown()
        assert fresh.ended is None and other.remote.kernels.opened() == []


def test_a_timeout_interrupts_the_cell_and_the_kernel_goes_on(client, instance):
    kernel = client.kernel(instance)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        kernel.execute("import time\nfor i in range(300):\n    time.sleep(0.1)", timeout=1.0)
    assert time.monotonic() - started < 10
    assert caught.value.result.error["ename"] == "KeyboardInterrupt"
    assert kernel.execute("i < 299").value == "True"


def test_a_running_cell_marks_the_instance_busy(client, instance):
    kernel = client.kernel(instance)
    seen = []

    def look(_output):
        seen.append(activity.busy_reason(client.config.api_url, instance.id))

    kernel.execute("print('working')", output=look)
    assert seen and "remote kernel is running a cell" in seen[0]
    assert activity.busy(client.config.api_url, instance.id) == []
