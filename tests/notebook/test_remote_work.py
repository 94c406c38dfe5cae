"""The magics of work on an instance, through a real IPython shell on the sandbox over real SSH:
``%novita kernel`` and ``%%novita on`` (state kept, outputs drawn here as they come, the remote
traceback, a severed connection, a stopped instance, a refused forwarding, Ctrl-C), ``%novita
push``/``pull`` with their bar and summary line, ``%novita top`` once and live; bad input is
refused before any request.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from novita_notebook.notebook.gpu_top import GpuTop, TopFrame
from novita_notebook.remote.outputs import strip_ansi

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture
def gpu(client):
    created = client.create("gpu-1", gpu="RTX 4090", image="ubuntu:22.04")
    return client.wait(created, until="running", timeout=30)


def line(ip, text):
    return ip.run_line_magic("novita", text)


def cell(ip, first, body):
    with capture_output() as captured:
        ip.run_cell_magic("novita", first, body)
    return captured


def test_a_kernel_keeps_state_across_cells_and_rich_outputs_come_here(ip, gpu, capsys):
    kernel = line(ip, "kernel gpu-1")
    assert "Started the remote kernel on gpu-1" in capsys.readouterr().out
    assert line(ip, "kernel gpu-1") is kernel  # found again, not started twice
    assert "Connected to the remote kernel on gpu-1" in capsys.readouterr().out

    first = cell(
        ip, "on gpu-1", "x = 41\nprint('hello')\nimport sys; print('oops', file=sys.stderr)"
    )
    assert first.stdout == "hello\n" and first.stderr == "oops\n"
    second = cell(
        ip,
        "on gpu-1",
        "import base64\nfrom IPython.display import HTML, Image, display\n"
        "display(HTML('<b>x is %d</b>' % (x + 1)))\n"
        f"display(Image(data=base64.b64decode('{PNG}')))\n"
        "x + 1",
    )
    html, image, result = (output.data for output in second.outputs)
    assert html["text/html"] == "<b>x is 42</b>"
    assert base64.b64decode(image["image/png"]).startswith(b"\x89PNG")
    assert result["text/plain"] == "42"
    assert second.stderr == ""


def test_a_cell_is_sent_as_typed_and_display_updates_land_in_place(ip, gpu):
    ip.user_ns["here"] = "local value"
    shown = cell(
        ip,
        "on gpu-1",
        "here = '$here {not expanded}'\nprint(here)\n"
        "from IPython.display import display\nh = display('one', display_id=True)\n"
        "h.update('two')",
    )
    note, sent = shown.stdout.splitlines()
    assert note == "(started the remote kernel on gpu-1; variables stay between %%novita on cells)"
    assert sent == "$here {not expanded}"
    one, two = shown.outputs
    assert (one.data["text/plain"], one.update, two.data["text/plain"], two.update) == (
        "'one'",
        False,
        "'two'",
        True,
    )
    assert one.transient["display_id"] == two.transient["display_id"]  # updated in place


def test_an_error_shows_the_remote_traceback_and_keeps_the_state(ip, gpu):
    cell(ip, "on gpu-1", "kept = 'yes'")
    failed = cell(ip, "on gpu-1", "def f():\n    return 1 / 0\nf()")
    said = strip_ansi(failed.stderr)  # the remote kernel colours its traceback
    assert "return 1 / 0" in said and said.index("ZeroDivisionError") < said.index("f()")
    assert "RemoteExecutionError: the code raised ZeroDivisionError" in said
    assert "its variables are intact" in said
    assert cell(ip, "on gpu-1", "print(kept)").stdout == "yes\n"


def test_a_severed_connection_keeps_the_state(ip, gpu, sandbox):
    cell(ip, "on gpu-1", "counter = 1")
    assert sandbox.sever_ssh(gpu.id) >= 1
    assert cell(ip, "on gpu-1", "counter += 1; print(counter)").stdout == "2\n"


def test_a_stopped_instance_ends_the_kernel_in_words(ip, gpu, client):
    cell(ip, "on gpu-1", "x = 1")
    client.stop(gpu.id)
    client.wait(gpu.id, until="exited", timeout=30)
    ended = cell(ip, "on gpu-1", "print(x)")
    assert "has ended: the instance was stopped" in ended.stderr
    assert "%novita start gpu-1" in ended.stderr and "novita.start" not in ended.stderr


def test_a_refused_forwarding_says_so_and_points_to_run(ip, gpu, sandbox):
    sandbox.allow_forwarding(False)
    try:
        refused = cell(ip, "on gpu-1", "print(1)")
    finally:
        sandbox.allow_forwarding(True)
    assert "refuses port forwarding" in refused.stderr
    assert "%%novita run gpu-1 runs the cell" in refused.stderr


def test_ctrl_c_interrupts_the_remote_code_and_keeps_the_kernel(ip, gpu, client):
    cell(ip, "on gpu-1", "n = 0")
    kernel = client.kernel(gpu)
    main = threading.main_thread().ident

    def press_ctrl_c():
        deadline = time.monotonic() + 20
        while not kernel.busy and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        import ctypes

        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(main), ctypes.py_object(KeyboardInterrupt)
        )

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    stopped = cell(ip, "on gpu-1", "import time\nfor n in range(1, 200):\n    time.sleep(0.1)")
    assert "Interrupted: the cell was stopped in the remote kernel on gpu-1" in stopped.stderr
    left = int(cell(ip, "on gpu-1", "print(n)").stdout)
    assert 0 < left < 199  # the loop was interrupted there, its variables kept


def test_a_cell_past_its_timeout_is_interrupted_and_says_by_what(ip, gpu):
    cell(ip, "on gpu-1", "kept = 7")
    late = cell(
        ip, "on gpu-1 --timeout 1", "import time\nprint('start', flush=True)\ntime.sleep(30)"
    )
    assert late.stdout == "start\n"
    assert "ran longer than 1 s on gpu-1 and was interrupted by --timeout" in late.stderr
    assert cell(ip, "on gpu-1", "print(kept)").stdout == "7\n"


def test_kernel_stop_and_install(ip, gpu, client, tmp_path, capsys, monkeypatch):
    line(ip, "kernel gpu-1 --stop")
    assert "No remote kernel runs on gpu-1." in capsys.readouterr().out
    cell(ip, "on gpu-1", "y = 1")
    line(ip, "kernel gpu-1 --stop")
    assert "Ended the remote kernel on gpu-1" in capsys.readouterr().out
    assert client.remote.kernels.opened() == []

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    line(ip, "kernel gpu-1 --install")
    said = capsys.readouterr().out
    assert 'Installed the kernel "Novita: gpu-1"' in said and "When the instance stops" in said
    spec = next((tmp_path / "jupyter" / "kernels").glob("novita-*/kernel.json"))
    assert '"Novita: gpu-1"' in spec.read_text()


def test_push_and_pull_with_a_bar_and_one_summary_line(ip, gpu, tmp_path, sandbox, capsys):
    work = tmp_path / "course"
    (work / "data").mkdir(parents=True)
    (work / "notes.md").write_text("# week 1\n")
    (work / "data" / "big.bin").write_bytes(b"x" * 300_000)
    (work / "model.ckpt").write_bytes(b"weights")
    (work / ".git").mkdir()
    (work / ".git" / "HEAD").write_text("ref")
    with capture_output() as shown:
        sent = line(ip, f"push gpu-1 {work} course --ignore '*.ckpt'")
    assert sorted(sent.files) == ["data/big.bin", "notes.md"]
    summary = shown.stdout.strip().splitlines()[-1]
    assert summary.startswith("Pushed 2 files (0.3 MB) to gpu-1:course in ")
    assert "2 ignored" in summary
    assert any("novita-transfer" in o.data.get("text/html", "") for o in shown.outputs)
    home = Path(sandbox.instance_home(gpu.id))
    assert (home / "course" / "notes.md").read_text() == "# week 1\n"

    again = line(ip, f"push gpu-1 {work} course --ignore '*.ckpt'")
    assert again.files == [] and len(again.unchanged) == 2
    assert "Pushed 0 files (0 bytes)" in capsys.readouterr().out

    (home / "course" / "result.txt").write_text("0.93\n")
    (home / "course" / "__pycache__").mkdir()
    (home / "course" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    back = line(ip, f"pull gpu-1 course {tmp_path / 'back'} --no-default-ignore")
    assert (tmp_path / "back" / "result.txt").read_text() == "0.93\n"
    assert "result.txt" in back.files and "__pycache__/m.pyc" in back.files
    assert capsys.readouterr().out.splitlines()[-1].startswith("Pulled 4 files")


def test_top_once_and_live(ip, gpu, sandbox, client):
    sandbox.set_utilization(gpu.id, 64)
    frame = line(ip, "top gpu-1")
    assert isinstance(frame, TopFrame) and frame.loc[0, "utilization_pct"] == 64
    markup = frame._repr_html_()
    assert "GPUs of gpu-1" in markup and "64 %" in markup and "/h" in markup
    assert " / 24.0 GiB" in markup and "nvidia-smi over SSH" in markup

    top = line(ip, "top gpu-1 --live --interval 0.2")
    try:
        assert isinstance(top, GpuTop) and top.state()[0] == "live"
        assert "NVIDIA GeForce RTX 4090" in top._repr_html_()
        sandbox.set_utilization(gpu.id, 12)
        deadline = time.monotonic() + 10
        while top.frame.loc[0, "utilization_pct"] != 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert top.frame.loc[0, "utilization_pct"] == 12 and top.readings >= 2
        top.button.click()
        assert top.state()[0] == "paused" and top.button.description == "Resume"
        top.button.click()
        assert top.state()[0] == "live"
        client.stop(gpu.id)
        client.wait(gpu.id, until="exited", timeout=30)
        deadline = time.monotonic() + 10
        while top.ended is None and time.monotonic() < deadline:
            time.sleep(0.05)
        state, words = top.state()
        assert state == "ended" and "gpu-1 is not running" in words
        assert top.button.disabled
    finally:
        top.stop()


def test_one_live_view_per_instance_and_the_session_ends_them(ip, magics, gpu):
    first = line(ip, "top gpu-1 --live --interval 0.2")
    second = line(ip, "top gpu-1 --live --interval 0.2")  # replaces the first
    assert first.state()[0] == "paused" and second.state()[0] == "live"
    magics.close_client()  # what a sandbox stop or a config reload does
    assert second.state()[0] == "paused" and magics.live_tops == {}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("push gpu-1 /no/such/dir", "LOCAL: /no/such/dir does not exist here"),
        ("pull gpu-1 '~someone/x'", "~user paths are not supported"),
        ("push gpu-1 . --ignore", "expected one argument"),
        ("top gpu-1 --interval 2", "--interval goes with --live"),
        ("top gpu-1 --live --interval soon", "argument --interval"),
        ("kernel gpu-1 --install --stop", "not allowed with argument"),
        ("kernel gpu-1 --install --new", "--install takes --python only"),
        ("kernel", "the following arguments are required"),
    ],
)
def test_bad_input_is_refused_before_any_request(ip, sandbox, text, said, capsys):
    sandbox.clear_requests()
    try:
        line(ip, text)
    except UsageError as error:
        message = str(error)
    else:
        message = capsys.readouterr().err
    assert said in message
    assert sandbox.requests() == []


def test_a_cell_form_needs_a_name_and_code(ip, sandbox):
    sandbox.clear_requests()
    with pytest.raises(UsageError, match="the following arguments are required"):
        ip.run_cell_magic("novita", "on", "print(1)")
    with pytest.raises(UsageError, match="the cell is empty"):
        ip.run_cell_magic("novita", "on gpu-1", "  \n")
    assert sandbox.requests() == []


def test_pull_run_brings_back_what_a_run_wrote(ip, gpu, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with capture_output():
        ip.run_cell_magic(
            "novita", "run gpu-1", "import os\nos.makedirs('out', exist_ok=True)\n"
            "open('out/a.txt', 'w').write('A')\n",
        )  # fmt: skip
    run_id = line(ip, "runs gpu-1").iloc[0]["run"]
    capsys.readouterr()
    line(ip, f"pull gpu-1 --run {run_id}")
    out = capsys.readouterr().out
    assert (tmp_path / "novita-outputs/gpu-1/out/a.txt").read_text() == "A"
    assert out.startswith("Pulled") and out.count("\n") == 1
    line(ip, f"pull gpu-1 {tmp_path / 'mine'} --run {run_id}")
    assert (tmp_path / "mine/out/a.txt").read_text() == "A"


def test_pull_needs_a_remote_path_or_a_run(ip, gpu, sandbox, capsys):
    before = len(sandbox.requests())
    line(ip, "pull gpu-1")
    assert "give REMOTE (a path on the instance) or --run RUN" in capsys.readouterr().err
    assert len(sandbox.requests()) == before
