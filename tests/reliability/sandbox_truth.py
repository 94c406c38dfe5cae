"""Ground truth for the reliability tests, read straight from the sandbox (faults cleared)
with bare requests, so a bug in the client cannot hide a duplicate or a leftover instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from novita_notebook.errors import NovitaError

T = TypeVar("T")

GONE = {"toRemove", "removing", "removed"}


def all_instances(sandbox: Any) -> list[dict[str, Any]]:
    """Every instance the sandbox holds, all pages, via a bare GET (faults must be cleared)."""
    headers = {"Authorization": f"Bearer {sandbox.api_key}", "Content-Type": "application/json"}
    items: list[dict[str, Any]] = []
    page = 0  # the first page is 0 (docs, live clients; the sandbox default)
    while True:
        response = requests.get(
            f"{sandbox.api_url}/gpu/instances",
            params={"pageSize": 100, "pageNum": page},
            headers=headers,
            timeout=(3.05, 30),
        )
        response.raise_for_status()
        body = response.json()
        batch = body.get("instances") or []
        items.extend(batch)
        if not batch or len(items) >= int(body.get("total") or 0):
            return items
        page += 1


def live_instances(sandbox: Any, name_prefix: str = "") -> list[dict[str, Any]]:
    """Instances not being removed, optionally only those whose name starts with a prefix."""
    return [
        item
        for item in all_instances(sandbox)
        if item.get("status") not in GONE and str(item.get("name", "")).startswith(name_prefix)
    ]


def outcome(call: Callable[[], T]) -> T | NovitaError:
    """Run a call; return its result or the NovitaError it raised.

    Any other exception type (requests, urllib3, socket, ValueError...) is a leak of an
    implementation detail and fails the test right here, naming the type.
    """
    try:
        return call()
    except NovitaError as error:
        return error
    except BaseException as error:  # noqa: BLE001 - the point is to catch what should not escape
        raise AssertionError(
            f"{type(error).__module__}.{type(error).__qualname__} escaped instead of a "
            f"NovitaError: {error!r}"
        ) from error


def requests_to(sandbox: Any, method: str, path_suffix: str) -> list[dict[str, Any]]:
    """The sandbox's request log filtered to one endpoint (path without the API prefix)."""
    # The sandbox stamps a request's status just after writing the answer: let it finish.
    time.sleep(0.05)
    return [
        r for r in sandbox.requests() if r["method"] == method and r["path"].endswith(path_suffix)
    ]
