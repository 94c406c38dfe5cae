"""``python -m novita_notebook.guard``: run the guard process (one per ledger and API URL).
The API key and URL come from the environment or .env, never from the command line.
"""

from __future__ import annotations

import argparse
import json
import sys

PROG = "python -m novita_notebook.guard"


def main(argv: list[str] | None = None) -> int:
    """Run the guard; a setting it cannot use (a bad NOVITA_GUARD_INTERVAL, a missing key)
    ends it with one line saying which and why, exit status 2, never a traceback."""
    from ..errors import NovitaError

    try:
        return _run(argv)
    except NovitaError as error:
        problems = getattr(error, "problems", None) or []
        said = "; ".join(
            rule if rule.startswith(str(field)) else f"{field}: {rule}" for field, rule in problems
        )
        print(f"{PROG}: {' '.join((said or str(error)).split())}", file=sys.stderr)
        return 2


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Enforce the stored guard rules (deadlines, idle stop, budgets, spot "
        "reclaims) until no guarded live instance remains. Reads NOVITA_API_KEY and "
        "NOVITA_API_URL from the environment or .env.",
    )
    parser.add_argument("--interval", type=float, help="seconds between ticks (default 30)")
    parser.add_argument("--once", action="store_true", help="one tick, then exit")
    parser.add_argument("--status", action="store_true", help="print the guard's status")
    args = parser.parse_args(argv)
    if args.interval is not None and not args.interval > 0:
        parser.error("--interval must be a positive number of seconds")
    if args.status:
        from ..config import load_config
        from .process import guard_status

        config, _ = load_config()
        print(json.dumps(guard_status(config.api_url), indent=1, sort_keys=True))
        return 0
    from .process import run_guard

    return run_guard(interval=args.interval, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
