"""``%%novita run`` / ``%%novita sh``, ``%novita attach`` and ``%novita runs`` in a real IPython
shell, on a sandbox instance over real SSH: output written as it comes (stdout and stderr apart,
``\\r`` kept), values through the notebook's variables, a failure that fails the cell in a few
lines, Ctrl-C that interrupts the code there, detached runs followed later, shell cells, bad
flags refused before any call, and an instance that is not running named with its state.
"""

from __future__ import annotations

import sys
import time

import pandas as pd
import pytest

from novita_notebook.errors import RemoteRunError


@pytest.fixture
def instance(client):
    created = client.create("remote-1", gpu="RTX 4090", image="ubuntu:22.04")
    return client.wait(created, until="running", timeout=30)


class Recorder:
    """A stream that keeps each write with the moment it came; ``interrupt_on`` raises
    KeyboardInterrupt once, at the first write holding that text (a Ctrl-C mid-cell)."""

    def __init__(self, interrupt_on: str | None = None) -> None:
        self.writes: list[tuple[float, str]] = []
        self.interrupt_on = interrupt_on

    def write(self, text: str) -> int:
        self.writes.append((time.monotonic(), text))
        if self.interrupt_on and self.interrupt_on in text:
            self.interrupt_on = None
            raise KeyboardInterrupt
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.writes)


def cell(ip, line: str, body: str):
    return ip.run_cell(f"%%novita {line}\n{body}")


def test_output_is_written_into_the_cell_as_it_comes(ip, instance, monkeypatch):
    out, err = Recorder(), Recorder()
    code = (
        "import sys, time\n"
        "print('first line', flush=True)\n"
        "time.sleep(0.8)\n"
        "for step in range(3):\n"
        "    print(f'\\rtraining {step + 1}/3', end='', flush=True)\n"
        "print()\n"
        "print('a warning', file=sys.stderr)\n"
    )
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stdout", out)
        patched.setattr(sys, "stderr", err)
        result = cell(ip, "run remote-1", code)
        ended = time.monotonic()
    assert result.error_in_exec is None and result.result is None
    first = next(at for at, text in out.writes if "first line" in text)
    assert ended - first > 0.6, "the first line came only at the end"
    assert out.text == "first line\n\rtraining 1/3\rtraining 2/3\rtraining 3/3\n"
    assert err.text == "a warning\n"


def test_put_reads_the_notebooks_variables_and_get_writes_them_back(ip, instance):
    ip.user_ns["frame"] = pd.DataFrame({"loss": [0.9, 0.5, 0.3]})
    ip.user_ns["settings"] = {"scale": 10}
    result = cell(
        ip,
        "run remote-1 --put frame,settings --get best --get scaled",
        "best = float(frame['loss'].min())\nscaled = best * settings['scale']\n",
    )
    assert result.error_in_exec is None
    assert ip.user_ns["best"] == 0.3 and ip.user_ns["scaled"] == pytest.approx(3.0)


def test_a_failure_fails_the_cell_in_a_few_lines_after_the_streamed_traceback(ip, instance, capsys):
    result = cell(ip, "run remote-1", "def divide(a):\n    return 1 / a\n\ndivide(0)\n")
    assert isinstance(result.error_in_exec, RemoteRunError)
    captured = capsys.readouterr()
    assert "Traceback (most recent call last)" in captured.err  # streamed from the instance
    shown = captured.out.replace("\x1b[0;31m", "").replace("\x1b[0m", "")
    run_id = result.error_in_exec.run_id
    assert f"RemoteRunError: run {run_id} on remote-1 failed with exit code 1: " in shown
    assert "ZeroDivisionError: division by zero" in shown and "return 1 / a" in shown
    assert f"%novita attach {run_id}" in shown
    assert "site-packages" not in shown and "novita_notebook" not in shown  # no local frames
    assert "line 4, in <module>" not in shown  # only the innermost frame is repeated


def test_ctrl_c_interrupts_the_code_there_and_says_so_in_one_line(
    ip, instance, client, monkeypatch, capsys
):
    out = Recorder(interrupt_on="ready")
    code = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.01)\n"
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stdout", out)
        result = cell(ip, "run remote-1", code)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    (line,) = [text for _, text in out.writes if "was interrupted on" in text]
    assert line.startswith("\x1b[0;31mKeyboardInterrupt\x1b[0m: run r-")
    run_id = client.runs().iloc[0]["run"]
    assert f"run {run_id} was interrupted on remote-1 (now interrupted);" in line
    assert "%novita runs remote-1" in line
    table = ip.run_line_magic("novita", "runs remote-1")
    assert table.iloc[0]["state"] == "interrupted" and table.iloc[0]["exit_code"] == 130


def test_a_detached_cell_returns_its_run_and_attach_follows_it(ip, instance, capsys):
    result = cell(ip, "run remote-1 --detach", "import time\ntime.sleep(0.5)\nprint('done')\n")
    run = result.result
    said = capsys.readouterr().out
    assert run.id in said and f"%novita attach {run.id}" in said
    assert "done" not in said
    followed = ip.run_line_magic("novita", f"attach {run.id}")
    assert capsys.readouterr().out.startswith("done\n")
    assert followed.state == "succeeded" and followed.output == "done\n"
    again = ip.run_line_magic("novita", "attach")  # the latest run
    assert again.id == run.id and capsys.readouterr().out.startswith("done\n")


def test_a_detached_runs_values_reach_the_notebook_when_it_is_attached(ip, instance, capsys):
    ip.user_ns.pop("answer", None)
    run = cell(ip, "run remote-1 --detach --get answer", "answer = 6 * 7\n").result
    assert "answer" not in ip.user_ns
    ip.run_line_magic("novita", f"attach {run.id}")
    assert ip.user_ns["answer"] == 42
    assert "brought back answer into the notebook's variables" in capsys.readouterr().out


def test_a_shell_cell_runs_as_a_script_with_its_env_never_expanded_here(ip, instance, capsys):
    ip.user_ns["WHO"] = "the notebook"  # $WHO is the instance's, not a notebook variable
    body = 'echo "$GREETING $WHO {1 + 1}"\nexit 0\n'
    result = cell(ip, "sh remote-1 --env GREETING=hi,WHO=gpu", body)
    assert result.error_in_exec is None
    assert capsys.readouterr().out.startswith("hi gpu {1 + 1}\n")
    assert ip.run_line_magic("novita", "runs").iloc[0]["state"] == "succeeded"


@pytest.mark.parametrize(
    ("line", "body", "words"),
    [
        ("run remote-1 --timeout soon", "print(1)", "--timeout"),
        ("run remote-1 --env 1A=x", "print(1)", "--env"),
        ("run remote-1 --get 'not a name'", "print(1)", "--get"),
        ("run remote-1 --put missing_variable", "print(1)", "no variable named missing_variable"),
        ("run remote-1", "   \n", "the cell has no code"),
        ("sh remote-1 --get x", "echo", "%%novita sh takes no --get"),
        ("run remote-1 --shell --put frame", "echo", "shell"),
    ],
)
def test_bad_flags_are_refused_before_any_call(ip, client, capsys, line, body, words):
    ip.user_ns["frame"] = pd.DataFrame({"a": [1]})
    client.instances()  # the session is warmed: what follows must add no request
    before = client.requests_made
    result = cell(ip, line, body)
    captured = capsys.readouterr()
    assert words in captured.out + captured.err + str(result.error_in_exec or "")
    assert client.requests_made == before


def test_an_instance_that_is_not_running_is_named_with_its_state(ip, client, instance, capsys):
    client.stop(instance)
    client.wait(instance.id, until="exited", timeout=30)
    capsys.readouterr()
    result = cell(ip, "run remote-1", "print('never')")
    assert result.error_in_exec is None  # a usage problem: said, not raised
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("RemoteError: instance remote-1 (")
    assert "is stopped (API status exited), not running" in line
    assert line.endswith("start it first with %novita start remote-1")


def test_runs_are_a_table_in_the_packages_look_newest_first(ip, client, instance):
    empty = ip.run_line_magic("novita", "runs")
    assert len(empty) == 0 and "No runs remembered" in repr(empty)
    cell(ip, "sh remote-1", "echo one")
    cell(ip, "sh remote-1", "exit 3")
    table = ip.run_line_magic("novita", "runs remote-1")
    assert list(table["exit_code"]) == [3, 0] and list(table["state"]) == ["failed", "succeeded"]
    page = table._repr_html_()
    assert "novita-runs" in page and f"%novita attach {table.iloc[0]['run']}" in page
    assert "failed" in page and "succeeded" in page and "2 runs on remote-1" in page
    assert len(ip.run_line_magic("novita", f"runs {instance.id}")) == 2
    assert "No runs on other-1" in repr(ip.run_line_magic("novita", "runs other-1"))


def test_the_line_form_of_a_cell_verb_says_how_to_write_it(ip, capsys):
    ip.run_line_magic("novita", "run remote-1")
    assert "write %%novita run remote-1 on the first line" in capsys.readouterr().err


def test_ctrl_c_in_attach_stops_following_and_leaves_the_run_going(
    ip, instance, client, monkeypatch
):
    code = "import time\nprint('ready', flush=True)\ntime.sleep(1)\nprint('finished')\n"
    run = cell(ip, "run remote-1 --detach", code).result
    out = Recorder(interrupt_on="ready")
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stdout", out)
        result = ip.run_cell(f"%novita attach {run.id}")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert f"Stopped following {run.id}; it keeps running on remote-1" in out.text
    assert client.attach(run.id, on_output=lambda *_: None).state == "succeeded"


def test_ctrl_c_while_the_run_is_sent_says_it_may_be_running_and_how_to_follow_it(
    ip, instance, monkeypatch
):
    from novita_notebook.remote import launch

    real_start = launch.start

    def start_then_ctrl_c(*args, **kwargs):  # Ctrl-C lands as the launch's answer comes
        real_start(*args, **kwargs)
        raise KeyboardInterrupt

    out = Recorder()
    with monkeypatch.context() as patched:
        patched.setattr(launch, "start", start_then_ctrl_c)
        patched.setattr(sys, "stdout", out)
        result = cell(ip, "run remote-1", "print('went on')")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "may still be running on remote-1; %novita attach r-" in out.text
    followed = ip.run_line_magic("novita", "attach")
    assert followed.state == "succeeded" and followed.output == "went on\n"
