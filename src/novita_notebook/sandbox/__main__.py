"""``python -m novita_notebook.sandbox`` / ``novita-notebook sandbox``: serve the sandbox on
loopback until Ctrl-C, printing its URL and API key.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from .app import DEFAULT_API_KEY, Sandbox


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("--speed must be > 0")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--phase-jitter must be a number, got {text!r}") from None
    if not 0 <= value <= 0.9:
        raise argparse.ArgumentTypeError("--phase-jitter must be between 0 and 0.9")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--spot-notice-rate must be a number, got {text!r}"
        ) from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("--spot-notice-rate must be >= 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("--port must be between 0 and 65535 (0 = any free port)")
    return value


def _switch(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` → (name, value): true/false, a number, or the word itself."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--switch must look like NAME=VALUE, got {text!r}")
    value: Any = raw.strip()
    if value in ("true", "false"):
        value = value == "true"
    else:
        for kind in (int, float):
            try:
                value = kind(value)
                break
            except ValueError:
                continue
    return name.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="novita-notebook sandbox",
        description="Run the offline Novita GPU cloud (v1 API) on loopback until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8787, help="port (default 8787, 0 = free)")
    parser.add_argument("--api-key", default=None, help=f"accepted key (default {DEFAULT_API_KEY})")
    parser.add_argument(
        "--speed", type=_speed, default=1.0, help="clock speed-up factor (default 1 = real time)"
    )
    parser.add_argument("--seed", type=int, default=0, help="catalog and stock seed (default 0)")
    parser.add_argument(
        "--page-base",
        type=int,
        choices=(0, 1),
        default=0,
        help="first pageNum: 0 (default, as live) or 1 (then 0 also means the first page)",
    )
    parser.add_argument(
        "--not-found-status",
        type=int,
        choices=(404, 400),
        default=404,
        help="GET /gpu/instance for an unknown id: 404 (default) or the documented 400",
    )
    parser.add_argument(
        "--phase-jitter",
        type=_fraction,
        default=0.0,
        help="seeded ±fraction on every provisioning phase's duration (default 0, e.g. 0.2)",
    )
    parser.add_argument(
        "--spot-notice-rate",
        type=_non_negative,
        default=0.0,
        help="random reclaim notices per running spot instance-hour (default 0 = none)",
    )
    parser.add_argument(
        "--switch",
        type=_switch,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any behaviour switch of docs/sandbox.md, e.g. --switch clusterNames=city "
        "(repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sandbox = Sandbox(
            speed=args.speed,
            seed=args.seed,
            api_key=args.api_key,
            host=args.host,
            port=args.port,
            page_base=args.page_base,
            not_found_status=args.not_found_status,
            phase_jitter=args.phase_jitter,
            spot_notice_rate=args.spot_notice_rate,
            switches=dict(args.switch),
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        sandbox.start()
    except OSError as exc:
        print(f"novita sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    # Ctrl-C and SIGTERM both end the process cleanly; SIGINT is installed explicitly because
    # a shell starting us in the background leaves it ignored.
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    print(f"Novita sandbox running at {sandbox.url}", flush=True)
    print(f"API URL: {sandbox.api_url}", flush=True)
    print(f"API key: {sandbox.api_key}", flush=True)
    print(f"speed x{sandbox.speed:g}, seed {sandbox.seed}. Press Ctrl-C to stop.", flush=True)
    print(f"switches: {sandbox.config}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        print("Novita sandbox stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
