"""What a run leaves on the instance, in ``~/.novita/runs/<id>/``: the code, a POSIX-shell
supervisor (``run.sh``: works on images without Python), and for Python runs a small wrapper
(``main.py``: values in and out, the traceback written down). Every value that reaches a
shell is quoted by commands.quote; the user's code is a file, never part of a command line.

The files a run writes: ``pid`` (its process group), ``stdout`` and ``stderr`` (the whole
output, appended as it comes), ``exit`` (the exit status, written last and atomically),
``timed_out``/``interrupted`` (markers), ``error.json`` (a Python failure), ``get.pickle``,
``written`` (the files the code wrote under the home).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import ValidationError
from .commands import quote

RUNS_DIR = ".novita/runs"  # relative to the home, for SFTP and the shell alike
KILL_GRACE_SECONDS = 5  # after a timeout's SIGTERM, SIGKILL follows this much later
SCAN_SECONDS, SCAN_DEPTH, SCAN_FILES = 3, 4, 500  # the look for the files a run wrote
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def run_dir(run_id: str) -> str:
    return f"{RUNS_DIR}/{run_id}"


def check_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """Environment variables for a run: names a shell can export, text values."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise ValidationError("env must be a dict of names to text values", field="env")
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValidationError(
                f"env: {name!r} is not a variable name (letters, digits, _; not first a digit)",
                field="env",
            )
        if not isinstance(value, str) or "\0" in value:
            raise ValidationError(f"env: the value of {name} must be text", field="env")
    return dict(env)


def supervisor(
    *, python: str | None, argument: str, env: Mapping[str, str], timeout: float | None
) -> str:
    """``run.sh``: runs the code once in the home (``python`` runs main.py with ``argument``;
    None runs code.sh with bash, else sh), output to files, the exit status to a file. It
    outlives the SSH session (started with setsid) and lives through SIGINT and SIGTERM
    itself, so it can write down how the code ended."""
    exports = "".join(f"export {name}={quote(value)}\n" for name, value in env.items())
    if python is not None:
        line = f'{quote(python)} -u "$D/main.py" {quote(argument)}'
    else:
        # bash when the image has it; SIGINT back to its default where env can (a detached
        # start leaves it ignored); C programs' output line-buffered where stdbuf exists.
        line = (
            "SH=sh; command -v bash >/dev/null 2>&1 && SH=bash\n"
            "env --default-signal=INT true 2>/dev/null && set -- env --default-signal=INT\n"
            'command -v stdbuf >/dev/null 2>&1 && set -- "$@" stdbuf -oL -eL\n'
            '"$@" "$SH" "$D/code.sh"'
        )
    watchdog = ""
    if timeout is not None:
        seconds = max(1, round(timeout))
        # In the run's process group, so "kill 0" reaches every process of the run.
        watchdog = f"""(
    trap '' INT TERM
    sleep {seconds} &
    echo $! > "$D/watchdog"
    wait $!
    [ -e "$D/exit" ] && exit 0
    : > "$D/timed_out"
    kill -TERM 0 2>/dev/null
    sleep {KILL_GRACE_SECONDS}
    [ -e "$D/exit" ] || kill -KILL 0 2>/dev/null
) &
"""
    return f"""#!/bin/sh
# A novita-notebook run: runs the code in ./code once; see the package's remote/scripts.py.
D=$(cd "$(dirname "$0")" && pwd) || exit 1
cd "$HOME" 2>/dev/null || cd /
echo "$$" > "$D/pid.tmp" && mv "$D/pid.tmp" "$D/pid"
trap ':' INT TERM
trap '' HUP
export PYTHONUNBUFFERED=1 NOVITA_RUN_DIR="$D"
{exports}{watchdog}set --
{line} > "$D/stdout" 2> "$D/stderr" < /dev/null
code=$?
{WRITTEN_SCAN}echo "$code" > "$D/exit.tmp" && mv "$D/exit.tmp" "$D/exit"
[ -f "$D/watchdog" ] && kill "$(cat "$D/watchdog")" 2>/dev/null
exit 0
"""


#: After the code: the files it wrote under the home (newer than ``pid``, hidden folders such
#: as ~/.novita and ~/.cache left out, a bounded walk), one per line in ``written``, so a stop
#: or a delete can name them with the pull call. Skipped when the run is not in a home.
WRITTEN_SCAN = f"""if [ "$(pwd)" != / ] && command -v find >/dev/null 2>&1; then
  set --; command -v timeout >/dev/null 2>&1 && set -- timeout {SCAN_SECONDS}
  "$@" find . -mindepth 1 -maxdepth {SCAN_DEPTH} -name '.*' -prune -o -type f -newer "$D/pid" \\
    -print 2>/dev/null | head -n {SCAN_FILES} > "$D/written.tmp"
  mv "$D/written.tmp" "$D/written"
fi
"""


def launch_command(run_id: str) -> list[str]:
    """Start ``run.sh`` detached, at most once: ``mkdir launched`` succeeds for one caller
    only, so a retried or repeated launch never starts the code twice. Prints ``started`` or
    ``already``."""
    script = (
        'cd "$HOME" 2>/dev/null || cd /; D="$1"; '
        'if mkdir "$D/launched" 2>/dev/null; then '
        "if command -v setsid >/dev/null 2>&1; then "
        'setsid sh "$D/run.sh" </dev/null >/dev/null 2>&1 & '
        'else nohup sh "$D/run.sh" </dev/null >/dev/null 2>&1 & fi; '
        "echo started; else echo already; fi"
    )
    return ["sh", "-c", script, "sh", run_dir(run_id)]


def signal_command(run_id: str, signal_name: str, marker: str | None) -> list[str]:
    """Send a signal to the run's process group (and leave a marker saying why). dash's
    kill cannot name a group: bash's, procps' or busybox's can; else the supervisor alone."""
    script = (
        'cd "$HOME" 2>/dev/null || cd /; D="$1"; S="$2"; '
        '[ -n "$3" ] && [ ! -e "$D/exit" ] && : > "$D/$3"; '
        '[ -f "$D/pid" ] || exit 0; P=$(cat "$D/pid"); '
        "if command -v bash >/dev/null 2>&1; then "
        'bash -c \'kill -s "$1" -- "-$2"\' sh "$S" "$P"; '
        'elif [ -x /bin/kill ]; then /bin/kill -s "$S" -- "-$P"; '
        'elif command -v busybox >/dev/null 2>&1; then busybox kill -s "$S" "-$P"; '
        'else kill -s "$S" "$P"; fi 2>/dev/null; exit 0'
    )
    return ["sh", "-c", script, "sh", run_dir(run_id), signal_name, marker or ""]


#: The follower's exit statuses: the exit status is written; the supervisor died without
#: writing it; the run was never launched, or did not start within FOLLOW_START_SECONDS; nobody reads any more (a
#: tail died writing to a closed channel); the image has no tail.
FOLLOW_ENDED, FOLLOW_VANISHED, FOLLOW_NOT_STARTED, FOLLOW_ORPHANED = 0, 3, 4, 5
FOLLOW_UNABLE = 127
FOLLOW_START_SECONDS = 30


def follow_command(run_id: str, stdout_offset: int, stderr_offset: int) -> list[str]:
    """Push the run's logs from these byte offsets as they grow (``tail -f``: inotify where
    there is one), stdout on stdout and stderr on stderr, until the exit status is written."""
    script = (
        'cd "$HOME" 2>/dev/null || cd /; D="$1"; '
        "command -v tail >/dev/null 2>&1 || exit 127; "
        "S=0.05; sleep 0.01 2>/dev/null || S=1; i=0; "
        '[ -d "$D/launched" ] || exit 4; '
        'while [ ! -e "$D/stdout" ] || [ ! -e "$D/stderr" ]; do '
        f'i=$((i+1)); [ "$i" -gt {FOLLOW_START_SECONDS * 20} ] && exit 4; sleep $S; done; '
        'P=$(cat "$D/pid" 2>/dev/null); '
        'tail -c +"$2" -f "$D/stdout" & T1=$!; '
        'tail -c +"$3" -f "$D/stderr" >&2 & T2=$!; '
        'while [ ! -e "$D/exit" ]; do '
        'if [ -n "$P" ] && ! kill -0 "$P" 2>/dev/null && [ ! -e "$D/exit" ]; then '
        'kill "$T1" "$T2" 2>/dev/null; exit 3; fi; '
        # Nobody reads any more (a tail died writing to a closed channel): stop following.
        'kill -0 "$T1" 2>/dev/null && kill -0 "$T2" 2>/dev/null || { kill "$T1" "$T2" 2>/dev/null; exit 5; }; '
        "sleep $S; done; "
        'sleep $S; kill "$T1" "$T2" 2>/dev/null; exit 0'
    )
    return [
        "sh",
        "-c",
        script,
        "sh",
        run_dir(run_id),
        str(stdout_offset + 1),
        str(stderr_offset + 1),
    ]


def alive_command(run_id: str) -> list[str]:
    """Prints ``alive`` while the run's supervisor lives (it outlives the code by an
    instant, to write the exit status)."""
    script = (
        'cd "$HOME" 2>/dev/null || cd /; D="$1"; '
        '[ -f "$D/pid" ] && kill -0 "$(cat "$D/pid")" 2>/dev/null && echo alive; exit 0'
    )
    return ["sh", "-c", script, "sh", run_dir(run_id)]


#: The Python wrapper: compatible with Python 3.6 and later (what old images carry).
PYTHON_MAIN = r"""# A novita-notebook run: runs ./code.py once; see the package's remote/scripts.py.
import json, linecache, os, signal, sys

D = os.path.dirname(os.path.abspath(__file__))
NAME = "<cell>"
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)


def write_json(name, data):
    with open(os.path.join(D, name + ".tmp"), "w") as out:
        json.dump(data, out)
    os.replace(os.path.join(D, name + ".tmp"), os.path.join(D, name))


def fail(kind, message, lines):
    write_json("error.json", {"type": kind, "message": message[:2000], "traceback": lines[-30:]})


with open(os.path.join(D, "code.py"), encoding="utf-8") as source_file:
    source = source_file.read()
linecache.cache[NAME] = (len(source), None, source.splitlines(True), NAME)
options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
if os.path.exists(os.path.join(D, "put.pickle")):
    import pickle
    with open(os.path.join(D, "put.pickle"), "rb") as values:
        namespace.update(pickle.load(values))
try:
    exec(compile(source, NAME, "exec"), namespace)
except SystemExit as stop:
    sys.stdout.flush()
    raise
except BaseException as error:
    import traceback
    tb = error.__traceback__.tb_next if error.__traceback__ else None
    lines = traceback.format_exception(type(error), error, tb)
    sys.stdout.flush()
    sys.stderr.write("".join(lines))
    sys.stderr.flush()
    fail(type(error).__name__, str(error), "".join(lines).splitlines())
    sys.exit(130 if isinstance(error, KeyboardInterrupt) else 1)
wanted = options.get("get") or []
missing = [name for name in wanted if name not in namespace]
if missing:
    message = "the code defined no " + ", ".join(missing) + " to bring back"
    sys.stderr.write("NameError: " + message + "\n")
    fail("NameError", message, [])
    sys.exit(1)
if wanted:
    import pickle
    try:
        with open(os.path.join(D, "get.tmp"), "wb") as out:
            pickle.dump({name: namespace[name] for name in wanted}, out, options.get("protocol", 4))
        os.replace(os.path.join(D, "get.tmp"), os.path.join(D, "get.pickle"))
    except Exception as error:
        message = "the values to bring back cannot be pickled: %s: %s" % (type(error).__name__, error)
        sys.stderr.write(message + "\n")
        fail(type(error).__name__, message, [])
        sys.exit(1)
sys.stdout.flush()
"""

#: Asks an interpreter what values need: its version, pickle protocol, module versions.
PYTHON_PROBE = (
    "import json, pickle, sys\n"
    "found = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        module = __import__(name)\n"
    "        found[name] = str(getattr(module, '__version__', ''))\n"
    "    except Exception:\n"
    "        found[name] = None\n"
    "print(json.dumps({'version': list(sys.version_info[:3]), "
    "'protocol': pickle.HIGHEST_PROTOCOL, 'modules': found}))\n"
)
