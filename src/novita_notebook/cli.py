"""The ``novita-notebook`` command: sandbox, demo, webhook-receiver, guard and doctor.
Each subcommand's module is imported only when that subcommand runs.
"""

from __future__ import annotations

import sys

USAGE = """usage: novita-notebook {sandbox,demo,webhook-receiver,guard,doctor} [options]

  sandbox            run the offline Novita GPU cloud on loopback (see --help)
  demo               run the quickstart against an embedded sandbox and print what it did
  webhook-receiver   run a verifying webhook receiver on loopback (see --help)
  guard              enforce the guard rules (deadlines, idle stop, budgets, spot) until
                     none is left; --status, --once, --interval S (key from env/.env only)
  doctor             check the client's assumptions against the API your key reaches (read-only)
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "sandbox":
        from .sandbox.__main__ import main as run
    elif command == "demo":
        from .demo import main as run
    elif command == "webhook-receiver":
        from .webhooks.cli import main as run
    elif command == "guard":
        from .guard.__main__ import main as run
    elif command == "doctor":
        from .doctor import main as run
    else:
        print(f"novita-notebook: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return int(run(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
