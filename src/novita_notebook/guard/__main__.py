"""``python -m novita_notebook.guard``: run the guard process (one per ledger and API URL).
The API key and URL come from the environment or .env, never from the command line.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m novita_notebook.guard",
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
