"""The doctor's cost against the catalog's size: a run with 60,000 junk products (each with a
field and a region label of its own) against a run with 6,000, on the in-process sandbox.
Linear means about 10x; the quadratic field and label lookups it replaced made it ~100x.
"""

from __future__ import annotations

import time
from typing import Any

from novita_notebook.doctor import run_doctor
from novita_notebook.doctor.probe import Probe
from novita_notebook.sandbox import Sandbox

from .harness import Figure

LINEAR_LIMIT = 15.0  # x for 10x the items: linear, with room for noise and cache effects


def junk_products(count: int) -> list[dict[str, Any]]:
    """Products no fixture knows: a field and a region label each, like a catalog gone odd."""
    return [
        {"id": f"junk-{i}", "name": f"X {i}", "regions": [f"R-{i} (Nowhere)"], f"odd{i}": {"k": 1}}
        for i in range(count)
    ]


def doctor_seconds(count: int) -> float:
    """Seconds of one doctor run whose unfiltered GET /products holds ``count`` junk items."""
    junk = junk_products(count)
    original = Probe._get_once

    def with_junk(self: Probe, path: str, params: Any, **kw: Any) -> Any:
        reply = original(self, path, params, **kw)
        if path == "/products" and reply.status == 200 and not (params or {}).get("clusterId"):
            reply.data = {"data": reply.data["data"] + junk}
        return reply

    Probe._get_once = with_junk  # type: ignore[method-assign]
    try:
        with Sandbox(speed=300, seed=7) as sandbox:
            started = time.perf_counter()
            run_doctor(sandbox.api_url, sandbox.api_key, timeout=30)
            return time.perf_counter() - started
    finally:
        Probe._get_once = original  # type: ignore[method-assign]


def linear_in_catalog_size(quick: bool) -> list[Figure]:
    """One doctor run on the in-process sandbox whose unfiltered product listing carries
    60,000 junk items (6,000 in quick mode), each with a field and a region label of its own,
    against a run with a tenth of them: linear cost reads about 10x."""
    small, large = (600, 6_000) if quick else (6_000, 60_000)
    base, big = doctor_seconds(small), doctor_seconds(large)
    return [
        Figure(
            f"doctor with {large:,} catalog items vs {small:,}",
            big,
            "s",
            base,
            target=f"<= {LINEAR_LIMIT:g}x for 10x the items (linear)",
            met=big / base <= LINEAR_LIMIT if base else None,
        )
    ]
