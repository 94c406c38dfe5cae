"""``novita-notebook doctor``: reads the key and URL like the client does (argument,
environment, .env), runs the doctor and prints its report. Exit status: 0 everything the
package relies on was verified, 1 something differs or failed, 2 bad input, 3 nothing
differs but something the package relies on could not be verified.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="novita-notebook doctor",
        description="Check the client's assumptions against the Novita API your key reaches. "
        "Read-only: it lists, it never creates or changes anything. The key comes from "
        "NOVITA_API_KEY or a .env file, never from the command line (shell history).",
        epilog="Exit status: 0 everything verified; 1 something differs or failed; 2 bad "
        "input; 3 nothing differs, but something the package relies on could not be verified "
        "(e.g. no running or spot instance to look at). docs/assumptions.md lists every check.",
    )
    parser.add_argument(
        "--api-url",
        dest="api_url",
        help="API host (default: NOVITA_API_URL or https://api.novita.ai)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (10)")
    parser.add_argument(
        "--bug-report",
        action="store_true",
        help="print only the paste-able bug report (empty when all is ok)",
    )
    args = parser.parse_args(argv)

    from ..config import load_config
    from ..errors import ValidationError
    from .run import run_doctor

    try:
        config, key = load_config(api_url=args.api_url)
        report = run_doctor(config.api_url, key, timeout=args.timeout)
    except ValidationError as exc:
        print(f"novita-notebook doctor: {exc}", file=sys.stderr)
        return 2
    print(report.bug_report() if args.bug_report else report.text())
    return report.exit_code
