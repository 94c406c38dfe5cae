"""The ``%novita`` grammar: an argparse parser whose mistakes raise UsageError (with the
subcommand's own usage) and whose --help prints and returns, so neither ends the kernel. Every
option flag is generated from the option families (options/), converted by the option's own
rule, so a bad value reads as it does from Python, a cell or ``%config``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from IPython.core.error import UsageError

from ..options import CREATE, FILES, GUARD, RUN, WAITING, Option
from ..validation import TEMPLATE_CHANNELS

__all__ = [
    "ParserExit",
    "MagicArgumentParser",
    "add_option_flags",
    "option_values",
    "build_parser",
    "build_cell_parser",
    "build_on_parser",
    "strip_comment",
    "CREATE_FLAGS",
    "RUN_FLAGS",
    "SHELL_RUN_FLAGS",
]

#: The options ``%novita create`` (and the cell form's first line) takes: create's, then the
#: guard rules.
CREATE_FLAGS: tuple[Option, ...] = (*CREATE.options, *GUARD.options)
#: Every option a run takes (``%%novita run``'s first line); a shell cell takes those that
#: need no Python.
RUN_FLAGS: tuple[Option, ...] = RUN.options
SHELL_RUN_FLAGS: tuple[Option, ...] = tuple(
    o for o in RUN_FLAGS if o.name not in ("put", "get", "python", "shell")
)


class ParserExit(Exception):
    """argparse wanted to exit (after --help): end the command quietly, keep the kernel."""


class MagicArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError on bad input and never calls sys.exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, MagicArgumentParser] = {}

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr)
        raise ParserExit()

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Like argparse, but an unknown option is reported by the subcommand it was given to,
        with that subcommand's usage and the closest option it does have."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            owner = self.commands.get(getattr(parsed, "subcommand", None) or "", self)
            owner.error(owner.unrecognized(extra))
        return parsed

    def unrecognized(self, extra: list[str]) -> str:
        import difflib  # only on a mistake: it costs ~10 ms at %load_ext

        message = f"unrecognized arguments: {' '.join(extra)}"
        known = [o for o in self._option_string_actions if o.startswith("--")]
        for word in extra:
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1)
            if word.startswith("-") and close:
                return f"{message} (did you mean {close[0]}?)"
        return message


def strip_comment(line: str) -> str:
    """The line without an unquoted trailing ``# comment`` (a ``#`` that starts a word), as a
    shell reads it: ``sandbox start  # offline`` → ``sandbox start``; ``"a # b"`` and
    ``--envs A=x#1`` keep theirs."""
    quote: str | None = None
    escaped = False
    word_start = True  # at the start of the line or after unquoted, unescaped whitespace
    for index, char in enumerate(line):
        if escaped:
            escaped, word_start = False, False
        elif char == "\\" and quote != "'":
            escaped, word_start = True, False
        elif quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote, word_start = char, False
        elif char == "#" and word_start:
            return line[:index].rstrip()
        else:
            word_start = char.isspace()
    return line


def _converter(option: Option) -> Any:
    """An argparse ``type``: the option's own rule, its words in the usage error."""

    def convert(text: str) -> Any:
        try:
            return option.parse_text(text)
        except ValueError as error:  # ValidationError is a ValueError
            problems = getattr(error, "problems", None) or [(option.name, str(error))]
            raise argparse.ArgumentTypeError(problems[0][1]) from None

    convert.__name__ = option.kind.name  # what argparse names in "invalid <type> value"
    return convert


def add_option_flags(
    parser: argparse.ArgumentParser,
    options: Iterable[Option],
    *,
    exclusive: Iterable[str] = (),
) -> None:
    """One flag per option that declares one: a switch for yes/no kinds, repeatable for
    lists, else one value converted by the option's rule. ``exclusive`` options share a
    mutually exclusive group."""
    together = set(exclusive)
    group = parser.add_mutually_exclusive_group() if together else None
    for option in options:
        if not option.flag:
            continue
        target = group if group is not None and option.name in together else parser
        help_text = option.help.replace("%", "%%")
        if option.kind.switch:
            target.add_argument(
                *option.flags, dest=option.name, action="store_true", help=help_text
            )
        else:
            target.add_argument(
                *option.flags,
                dest=option.name,
                type=_converter(option),
                action="append" if option.repeat else "store",
                metavar=option.kind.metavar,
                help=help_text,
            )


def option_values(args: argparse.Namespace, options: Iterable[Option]) -> dict[str, Any]:
    """The options given on the line (typed), repeated flags' lists flattened; switches only
    when set."""
    values: dict[str, Any] = {}
    for option in options:
        value = getattr(args, option.name, None)
        if value is None or value is False:
            continue
        if option.repeat and isinstance(value, list):
            value = [
                item for part in value for item in (part if isinstance(part, list) else [part])
            ]
        values[option.name] = value
    return values


def build_parser() -> MagicArgumentParser:
    """The full ``%novita`` grammar; each subcommand has its own --help."""
    parser = MagicArgumentParser(
        prog="%novita",
        description="Provision and manage Novita GPU instances from the notebook.",
        epilog=(
            "Offline: %novita sandbox start. Real cloud: set NOVITA_API_KEY, then "
            "%novita config --reload. Cell form: %%novita create, then one 'key: value' per "
            "line: name and the options of %novita create (gpu: RTX 4090, max_price: 0.5). "
            "Options: %config NovitaMagics.<option>; every option is listed in docs/options.md."
        ),
    )
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    _add_catalog(sub)
    _add_instance_commands(sub)
    _add_run_commands(sub)
    _add_guard_commands(sub)
    _add_remote_work_commands(sub)
    _add_many_commands(sub)
    _add_session_commands(sub)
    parser.commands = dict(sub.choices)
    return parser


def _add_catalog(sub: Any) -> None:
    """products, browse, regions, instances, templates, volumes."""
    p = sub.add_parser("products", help="GPU products by region with price and stock")
    add_option_flags(p, [CREATE[n] for n in ("gpu", "region", "gpu_num", "billing", "max_price")])
    p.add_argument("--available", action="store_true", help="only products in stock")
    p.add_argument("--refresh", action="store_true", help="bypass the product cache")

    p = sub.add_parser("browse", help="interactive product browser with a create form")
    p.add_argument("--gpu", help="initial GPU filter")
    p.add_argument("--region", help="initial region filter")

    sub.add_parser("regions", help="regions (clusters) and their GPU types")

    p = sub.add_parser("instances", help="instances on the account")
    p.add_argument("--status", help="only this status or phase, e.g. running")

    p = sub.add_parser("templates", help="templates you can create from")
    p.add_argument("--name", help="only templates with this name")
    p.add_argument("--type", help="only templates of this type")
    p.add_argument("--channel", choices=TEMPLATE_CHANNELS, help="only this channel")

    sub.add_parser("storages", help="network volumes (the same as %%novita volumes)")
    p = sub.add_parser(
        "volumes",
        help="network volumes: list, create NAME --region R --size GB, delete NAME",
        description="%novita volumes | volumes create NAME --region R --size GB | "
        "volumes delete NAME",
    )
    p.add_argument("action", nargs="?", choices=("list", "create", "delete"), default="list")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--region", help="the volume's region (create)")
    p.add_argument("--size", help="size in GB, 10 to 10240 (create)")


def _add_instance_commands(sub: Any) -> None:
    """create, wait, watch and the lifecycle verbs."""
    p = sub.add_parser(
        "create",
        help="create an instance (cheapest match, region fallback)",
        usage="%(prog)s NAME [--gpu GPU] [--wait | --background] [options: --help lists them]",
    )
    p.add_argument("name", help="instance name (letters, digits, hyphens)")
    add_option_flags(p, CREATE_FLAGS, exclusive=("wait", "background"))

    p = sub.add_parser("wait", help="wait for an instance to reach a status")
    p.add_argument("target", metavar="ID_OR_NAME")
    add_option_flags(p, [WAITING["until"], WAITING["timeout"]])

    p = sub.add_parser("watch", help="live panel of instances, updated in the background")
    p.add_argument("targets", nargs="*", metavar="ID_OR_NAME")
    add_option_flags(p, [WAITING["interval"], WAITING["keep"]])

    for action in ("start", "stop", "restart", "delete"):
        p = sub.add_parser(action, help=f"{action} an instance")
        p.add_argument("target", metavar="ID_OR_NAME")


def _add_run_commands(sub: Any) -> None:
    """The cell forms run and sh (their first line), attach and runs."""
    for verb, flags, usage, words in (
        ("run", RUN_FLAGS, "[--detach] [--put A,B] [--get C,D] [options: --help lists them]",
         "the cell's code runs on the instance"),
        ("sh", SHELL_RUN_FLAGS, "[--detach] [--timeout WHEN] [--env A=1,B=2]",
         "the cell runs as a shell script on the instance (images without Python)"),
    ):  # fmt: skip
        p = sub.add_parser(
            verb,
            prog=f"%%novita {verb}",
            usage=f"%(prog)s NAME {usage}",
            help=f"%%%%novita {verb} NAME: {words}",
            description=f"{words[0].upper()}{words[1:]} as a durable run; its output streams "
            "here and Ctrl-C interrupts it there.",
        )
        p.add_argument("target", metavar="NAME", help="the instance (name or id)")
        add_option_flags(p, flags)

    p = sub.add_parser(
        "attach", help="follow a run to its end here: what it printed, then what comes"
    )
    p.add_argument("run", nargs="?", metavar="RUN", help="a run id (default: the latest run)")

    p = sub.add_parser("runs", help="the runs remembered here, newest first")
    p.add_argument("target", nargs="?", metavar="NAME", help="only the runs on this instance")


def _add_guard_commands(sub: Any) -> None:
    """guard (set rules, --no-guard, status) and extend."""
    p = sub.add_parser(
        "guard",
        usage="%(prog)s NAME_OR_ID [--stop-after WHEN] [rules: --help lists them] | status",
        help="bound an instance's life: deadline, idle stop, budget, spot policy; or status",
        description="%novita guard NAME --stop-after 2h --idle-stop 30m | NAME --no-guard | status",
    )
    p.add_argument("target", metavar="NAME_OR_ID|status")
    add_option_flags(p, GUARD)
    p.add_argument("--replace", action="store_true", help="replace the rules, not merge")
    p.add_argument(
        "--no-guard", dest="no_guard", nargs="*", metavar="RULE",
        help="remove all rules, or the named ones (stop_after, idle, budget...)",
    )  # fmt: skip

    p = sub.add_parser("extend", help="push a guarded instance's deadline back, e.g. 1h")
    p.add_argument("target", metavar="NAME_OR_ID")
    p.add_argument("duration", nargs="?", default="1h", help="how much later (default 1h)")
    p.add_argument("--rule", choices=("stop_after", "delete_after"), help="only this deadline")


def _add_remote_work_commands(sub: Any) -> None:
    """kernel, push, pull and top: working on an instance over SSH (``%%novita on`` is the
    cell form, with its own parser)."""
    p = sub.add_parser(
        "kernel",
        usage="%(prog)s NAME [--install | --stop] [--python PYTHON] [--new]",
        help="start (or find again) the instance's remote IPython kernel; or install/stop it",
        description="%novita kernel NAME, then %%novita on NAME cells run in it, variables kept. "
        "--install adds 'Novita: NAME' to the kernel menu; --stop ends the kernel.",
    )
    p.add_argument("target", metavar="NAME_OR_ID")
    act = p.add_mutually_exclusive_group()
    act.add_argument(
        "--install",
        action="store_true",
        help="install the kernelspec 'Novita: NAME' (the whole notebook runs there)",
    )
    act.add_argument("--stop", action="store_true", help="end the kernel (its variables go)")
    p.add_argument("--python", help="the instance's Python that runs the kernel (python3)")
    p.add_argument("--new", action="store_true", help="start afresh, ending the running kernel")
    p.add_argument("--pip-install", dest="pip_install", action="store_true",
                   help="pip-install ipykernel on the instance when it is missing")  # fmt: skip

    for verb, paths, what in (
        ("push", ("LOCAL", "REMOTE"), "copy a local file or folder to the instance"),
        ("pull", ("REMOTE", "LOCAL"), "copy a file or folder of the instance here"),
    ):
        p = sub.add_parser(
            verb,
            usage=f"%(prog)s NAME {paths[0]} [{paths[1]}] [--ignore PATTERN] [--checksum]"
            + (" | NAME [LOCAL] --run RUN" if verb == "pull" else ""),
            help=f"{what} (SFTP; unchanged files skipped, interrupted ones resumed)",
            description="A relative remote path starts at the instance's home. Left out by "
            "default: .git, virtual environments and caches (--no-default-ignore sends them).",
        )
        p.add_argument("target", metavar="NAME_OR_ID")
        p.add_argument("source", metavar=paths[0], nargs="?" if verb == "pull" else None)
        p.add_argument("destination", nargs="?", metavar=paths[1])
        add_option_flags(p, FILES)
    p.add_argument("--run", metavar="RUN", help="bring back every place run RUN wrote "
                   "(to LOCAL, default novita-outputs/NAME), instead of REMOTE")  # fmt: skip

    p = sub.add_parser(
        "top",
        usage="%(prog)s NAME [--live [--interval SECONDS]]",
        help="the instance's GPUs (nvidia-smi over SSH) with price and spend; --live keeps it fresh",
    )
    p.add_argument("target", metavar="NAME_OR_ID")
    p.add_argument("--live", action="store_true", help="a widget refreshed in the background")
    p.add_argument("--interval", type=_converter(WAITING["interval"]), metavar="SECONDS",
                   help="seconds between readings of --live (default 5)")  # fmt: skip


def build_on_parser() -> MagicArgumentParser:
    """The first line of ``%%novita on NAME``: the code below runs in that instance's kernel."""
    parser = MagicArgumentParser(
        prog="%%novita on",
        usage="%(prog)s NAME, then the code to run in the instance's remote kernel",
        description="Run the cell in the instance's remote IPython kernel; variables stay "
        "between cells. %novita kernel NAME starts it (this does too, the first time).",
    )
    parser.add_argument("target", metavar="NAME_OR_ID")
    add_option_flags(parser, [RUN["timeout"]])
    return parser


def _add_many_commands(sub: Any) -> None:
    """batch and classroom: several instances in one command."""
    shared = [o for o in CREATE_FLAGS if o.name not in ("wait", "background", "unique_name")]
    p = sub.add_parser(
        "batch",
        usage="%(prog)s N [--prefix PREFIX] [--gpu GPU] [options: --help lists them]",
        help="create N instances at once (PREFIX-1..N), one row each",
        description="%novita batch 3 --gpu 4090 --prefix demo [create options]",
    )
    p.add_argument("count", type=int, metavar="N")
    p.add_argument("--prefix", default="batch", help="names are PREFIX-1 .. PREFIX-N")
    p.add_argument("--all-or-nothing", dest="all_or_nothing", action="store_true",
                   help="delete what was made if any create fails")  # fmt: skip
    add_option_flags(p, shared)

    p = sub.add_parser(
        "classroom",
        usage="%(prog)s N [--gpu GPU] [--stop-after WHEN] [options: --help lists them]",
        help="teaching: N guarded instances under one deadline, and a handout",
        description="%novita classroom 12 --gpu 4090 --stop-after 3h --budget-total 40",
    )
    p.add_argument("count", type=int, metavar="N")
    p.add_argument("--prefix", default="student", help="seat names are PREFIX-1 .. PREFIX-N")
    add_option_flags(p, [o for o in shared if o.name != "no_guard"])


def _add_session_commands(sub: Any) -> None:
    """mine, cleanup, config, sandbox, doctor."""
    p = sub.add_parser("mine", help="instances this notebook created (survives kernel restarts)")
    p.add_argument("--status", help="only this status or phase, e.g. running")
    p.add_argument("--name", help="only names containing this text")

    p = sub.add_parser(
        "cleanup",
        help="stop or delete the instances this notebook created",
        description="Without --stop or --delete: a preview of what each would do, row by row.",
    )
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="only show the plan")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--stop", action="store_true", help="stop the running ones")
    act.add_argument("--delete", action="store_true", help="delete them")

    p = sub.add_parser("config", help="effective settings (API key masked)")
    p.add_argument("--reload", action="store_true", help="rebuild the session client from env/.env")

    p = sub.add_parser("sandbox", help="the offline in-process Novita cloud")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--speed", type=float, help="clock speed-up (default from config)")
    p.add_argument("--seed", type=int, help="catalog seed")

    p = sub.add_parser("doctor", help="check the client's assumptions against the API (read-only)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per call (10)")


def build_cell_parser() -> MagicArgumentParser:
    """The first line of ``%%novita create``: the same options as the line magic; the cell
    body gives the rest, one ``key: value`` per line."""
    parser = MagicArgumentParser(
        prog="%%novita create",
        usage="%(prog)s [NAME] [options: --help lists them], then one 'key: value' per line",
        description="Create an instance from a cell: one 'key: value' per line.",
    )
    parser.add_argument("name", nargs="?", help="instance name (or name: in the cell)")
    add_option_flags(parser, CREATE_FLAGS, exclusive=("wait", "background"))
    return parser
