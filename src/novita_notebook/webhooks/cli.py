"""``novita-notebook webhook-receiver``: run a verifying Receiver on loopback and print each
accepted event until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from ..errors import ValidationError
from .receiver import Receiver
from .signature import DEFAULT_TOLERANCE

__all__ = ["main"]


def _print_event(payload: dict[str, Any]) -> None:
    previous = payload.get("previousStatus") or "-"
    print(
        f"{payload.get('timestamp')}  {payload.get('event')}  {payload.get('name')} "
        f"({payload.get('instanceId')})  {previous} -> {payload.get('status')}",
        flush=True,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="novita-notebook webhook-receiver",
        description="Run a verifying webhook receiver and print each accepted event.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    parser.add_argument(
        "--secret-env",
        default="WEBHOOK_SECRET",
        help="environment variable holding the secret (default WEBHOOK_SECRET)",
    )
    parser.add_argument("--path", default="/webhook", help="path events are POSTed to")
    parser.add_argument(
        "--tolerance", type=float, default=DEFAULT_TOLERANCE, help="replay window in seconds"
    )
    return parser


def _serve_until_stopped(receiver: Receiver) -> None:
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    print(f"Listening on {receiver.url} (health: GET /health). Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        receiver.stop()
        rejected = receiver.rejected
        print(
            f"Stopped: {len(receiver.events)} event(s) accepted, "
            f"{sum(rejected.values())} rejected {rejected or ''}".rstrip(),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """``novita-notebook webhook-receiver [--host H] [--port N] [--secret-env NAME] ...``."""
    args = _parser().parse_args(argv)
    secret = os.environ.get(args.secret_env)
    if not secret:
        print(
            f"webhook-receiver: environment variable {args.secret_env} is not set",
            file=sys.stderr,
        )
        return 2
    try:
        receiver = Receiver(
            secret,
            host=args.host,
            port=args.port,
            path=args.path,
            tolerance=args.tolerance,
            callbacks=[_print_event],
        )
        receiver.start()
    except (ValidationError, OSError) as error:
        print(f"webhook-receiver: {error}", file=sys.stderr)
        return 2
    _serve_until_stopped(receiver)
    return 0
