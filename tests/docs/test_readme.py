"""Every code block of README.md and notebooks/README.md runs as a user would paste it.

Notebook blocks (``python`` and untagged ones) run in a real kernel (nbclient) on the sandbox,
in the order the file shows them: once with each block as one cell, once with each statement
as its own cell (as someone pasting line by line). Every cell must run without an exception
and without an error message on stderr (magics print their errors there). Shell blocks are
checked for syntax; the commands they name must exist; the curl block runs against a sandbox
served on the port it names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "notebooks/README.md")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)
SHELL = ("bash", "sh", "shell", "console")
#: An error a magic printed (``NotFoundError: ...``) or a traceback.
ERROR_LINE = re.compile(r"^(\w+(Error|Exception)|Traceback)\b", re.M)


def blocks(name: str) -> list[tuple[int, str, str]]:
    """(line, language, code) of every fenced block in a file."""
    text = (ROOT / name).read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 1, m.group(1).lower(), m.group(2))
        for m in FENCE.finditer(text)
    ]


def notebook_blocks(name: str) -> list[tuple[int, str]]:
    return [(line, code) for line, lang, code in blocks(name) if lang not in SHELL]


def statements(code: str) -> list[str]:
    """The block cut where a person would paste a new cell: at each complete statement
    (a multi-line call stays whole; blank and comment-only lines go with what follows). A
    cell magic's block is one cell whatever it holds: its first line names the cell."""
    if code.lstrip().startswith("%%"):
        return [code.strip("\n")]
    from IPython.core.inputtransformer2 import TransformerManager

    manager = TransformerManager()
    out: list[str] = []
    pending: list[str] = []
    for line in code.splitlines():
        pending.append(line)
        source = "\n".join(pending)
        if all(not part.strip() or part.strip().startswith("#") for part in pending):
            continue  # blank or comment lines only: they go with the statement after them
        status, _ = manager.check_complete(source + "\n")
        if status == "complete":
            out.append(source.strip("\n"))
            pending = []
    if "".join(pending).strip():
        out.append("\n".join(pending))
    return out


def errors_of(notebook) -> list[str]:
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("name") == "stderr" else ""
            if output.get("output_type") == "error" or ERROR_LINE.search(text):
                found.append(f"cell {index}:\n{cell.source}\n--> {text or output}")
    return found


def magic_lines_take_comments() -> bool:
    """Whether ``%novita ...  # a comment`` runs (IPython hands the comment to the magic,
    which must drop it, as the README's first hour writes its magics)."""
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "novita_notebook")
    try:
        shell.run_line_magic("novita", "sandbox status  # a comment")
    except UsageError:
        return False
    return True


@pytest.mark.parametrize("mode", ["block", "statement"])
@pytest.mark.parametrize("name", DOCS)
def test_notebook_blocks_run_as_pasted(run_in_kernel, name, mode):
    found = notebook_blocks(name)
    commented = any("%novita" in line and "#" in line for _, c in found for line in c.splitlines())
    if commented and not magic_lines_take_comments():
        pytest.xfail("the magics do not yet drop a trailing # comment (a change under way)")
    if not found:
        assert name == "notebooks/README.md", f"{name} lost its code blocks"
        return  # nothing to paste (yet): the file is still checked for new blocks
    cells = [code for _, code in found]
    if mode == "statement":
        cells = [piece for code in cells for piece in statements(code)]
    notebook = run_in_kernel(cells, timeout=180)
    assert errors_of(notebook) == []


def test_statements_split_where_a_person_would():
    code = "a = 1  # one\n\n# two\nb = f(\n    1,\n)\n%novita mine\n"
    assert statements(code) == ["a = 1  # one", "# two\nb = f(\n    1,\n)", "%novita mine"]
    cell = "%%novita run demo-1\nimport os\n\nprint(os.getcwd())\n"
    assert statements(cell) == [cell.strip()]


# -- shell blocks -------------------------------------------------------------------------------


def shell_blocks() -> list[tuple[str, int, str]]:
    return [
        (name, line, code) for name in DOCS for line, lang, code in blocks(name) if lang in SHELL
    ]


def commands_of(code: str) -> list[list[str]]:
    """Each command line of a shell block as words (comments and continuations folded)."""
    import shlex

    joined = code.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


@pytest.mark.parametrize(("name", "line", "code"), shell_blocks(),
                         ids=[f"{n}:{line}" for n, line, _ in shell_blocks()])  # fmt: skip
def test_shell_blocks_parse_and_name_real_commands(name, line, code):
    subprocess.run(["bash", "-n"], input=code, text=True, check=True)
    makefile = (ROOT / "Makefile").read_text()
    cli = shutil.which("novita-notebook", path=str(Path(sys.executable).parent))
    for words in commands_of(code):
        if not words:
            continue
        command = words[0]
        if command == "make":
            assert re.search(rf"^{re.escape(words[1])}:", makefile, re.M), words
        elif command == "novita-notebook":
            assert cli is not None
            subprocess.run([cli, words[1], "--help"], capture_output=True, check=True, timeout=60)
        elif command not in ("export", "curl"):
            raise AssertionError(f"{name}:{line}: unknown command {command!r}")


def test_the_curl_block_answers_from_the_sandbox(tmp_path):
    (code,) = [c for _, _, c in shell_blocks() if c.lstrip().startswith("curl")]
    port = int(re.search(r"127\.0\.0\.1:(\d+)", code).group(1))
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            pytest.skip(f"port {port} is taken here; the block needs it")
    cli = Path(sys.executable).parent / "novita-notebook"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVITA_")}
    server = subprocess.Popen(
        [str(cli), "sandbox", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and server.poll() is None, "no sandbox"
            time.sleep(0.1)
        answer = subprocess.run(
            ["bash", "-c", code], capture_output=True, text=True, check=True, timeout=30
        )
        assert json.loads(answer.stdout)["data"], answer.stdout
    finally:
        server.terminate()
        server.wait(timeout=15)
