"""A sandbox served from a child process, for figures where the client's own CPU or the
sandbox's own throughput must not share one interpreter (and one GIL) with the other side.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class RemoteSandbox:
    url: str
    api_url: str
    api_key: str

    def control(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        """Call a ``/_sandbox/...`` control endpoint (no auth) and return its JSON."""
        response = requests.request(
            method, f"{self.url}/_sandbox/{endpoint}", json=body, timeout=(3.05, 60)
        )
        response.raise_for_status()
        return response.json() if response.content else None


def _serve(speed: float, seed: int, ready: Any, stop: Any) -> None:
    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=speed, seed=seed) as sandbox:
        ready.put((sandbox.url, sandbox.api_url, sandbox.api_key))
        stop.wait()


@contextmanager
def sandbox_in_subprocess(speed: float = 1.0, seed: int = 0) -> Iterator[RemoteSandbox]:
    """Start a Sandbox in a spawned process; stop it on exit."""
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    stop = context.Event()
    process = context.Process(target=_serve, args=(speed, seed, ready, stop), daemon=True)
    process.start()
    try:
        url, api_url, api_key = ready.get(timeout=60)
        yield RemoteSandbox(url, api_url, api_key)
    finally:
        stop.set()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


@contextmanager
def serving_sandbox(quick: bool, speed: float = 1.0, seed: int = 0) -> Iterator[RemoteSandbox]:
    """A child-process sandbox for real figures; in quick (smoke) mode an in-process one,
    since spawning a process costs more than the whole quick measurement."""
    if not quick:
        with sandbox_in_subprocess(speed, seed) as sandbox:
            yield sandbox
        return
    from novita_notebook.sandbox import Sandbox

    with Sandbox(speed=speed, seed=seed) as local:
        yield RemoteSandbox(local.url, local.api_url, local.api_key)
