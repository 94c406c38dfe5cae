"""Figures of the HTTP layer: the client's per-call overhead over bare requests, connection
pooling, and the HTTP calls saved by the products cache.
"""

from __future__ import annotations

import requests

from novita_notebook import Novita
from novita_notebook.sandbox import Sandbox

from .harness import Figure, interleaved_per_call


def _bare_headers(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def client_overhead(quick: bool) -> list[Figure]:
    """Per-call time of ``client.api.clusters()`` (no cache, JSON parsed into models) vs a bare
    ``requests.Session().get`` with the same headers; medians of 5 alternating rounds."""
    repeats = 40 if quick else 600
    with Sandbox(speed=1.0, seed=0) as sandbox:
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        bare = requests.Session()
        url = f"{sandbox.api_url}/clusters"
        headers = _bare_headers(sandbox.api_key)
        try:

            def bare_get() -> None:
                response = bare.get(url, headers=headers, timeout=(3.05, 30))
                response.raise_for_status()
                response.json()

            # The client turns requests' trust_env off (no proxy/netrc lookup per call); a bare
            # Session tuned the same way shows what is left of the client's own overhead.
            tuned = requests.Session()
            tuned.trust_env = False

            def tuned_get() -> None:
                response = tuned.get(url, headers=headers, timeout=(3.05, 30))
                response.raise_for_status()
                response.json()

            # warm every pool so the first TCP handshake is not in any figure
            client.api.clusters()
            bare_get()
            tuned_get()
            with_client, with_bare = interleaved_per_call(client.api.clusters, bare_get, repeats)
            _, with_tuned = interleaved_per_call(client.api.clusters, tuned_get, repeats // 2)
        finally:
            bare.close()
            tuned.close()
            client.close()
    return [
        Figure(
            "client overhead per call vs bare requests (GET /clusters, parsed)",
            with_client * 1000,
            "ms",
            with_bare * 1000,
            target="ratio <= 1.3",
            met=with_client / with_bare <= 1.3,
            notes={
                "bare Session with trust_env=False": f"{with_tuned * 1000:.3f} ms "
                f"(client ratio {with_client / with_tuned:.2f}x)"
            },
        )
    ]


def pooling(quick: bool) -> list[Figure]:
    """The client's pooled transport vs a new connection (new Session) for every call."""
    repeats = 30 if quick else 300
    with Sandbox(speed=1.0, seed=0) as sandbox:
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        url = f"{sandbox.api_url}/clusters"
        headers = {**_bare_headers(sandbox.api_key), "Connection": "close"}
        try:

            def fresh_connection_get() -> None:
                with requests.Session() as session:
                    session.get(url, headers=headers, timeout=(3.05, 30)).json()

            client.api.clusters()
            pooled, unpooled = interleaved_per_call(
                client.api.clusters, fresh_connection_get, repeats
            )
        finally:
            client.close()
    return [
        Figure(
            "pooled vs unpooled call time (client transport vs a new connection per call)",
            pooled * 1000,
            "ms",
            unpooled * 1000,
            target="faster than a new connection per call",
            met=pooled < unpooled,
        )
    ]


def cached_products(quick: bool) -> list[Figure]:
    """HTTP calls for N repeated ``products()`` within the TTL vs N uncached listings."""
    repeats = 10 if quick else 50
    with Sandbox(speed=1.0, seed=0) as sandbox:
        client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
        try:
            client.products()  # the one listing that fills the cache
            before = client.api.requests_made
            for _ in range(repeats):
                client.products()
            cached_calls = client.api.requests_made - before
            before = client.api.requests_made
            for _ in range(repeats):
                client.api.products()
            uncached_calls = client.api.requests_made - before
        finally:
            client.close()
    return [
        Figure(
            f"HTTP calls for {repeats} cached products() calls vs uncached listings",
            cached_calls,
            "calls",
            uncached_calls,
            target="0 calls",
            met=cached_calls == 0,
        )
    ]


#: instances() (list call + parse + prices + frame) over the raw list call (HTTP and JSON)
FRAME_RATIO_TARGETS = {40: 2.0, 100: 1.6}


def frames_overhead(quick: bool) -> list[Figure]:
    """``client.instances()`` (the list call, parsing, prices from the cached catalog, the
    DataFrame) vs ``client.api.list_instances()`` (HTTP and JSON only) for 40 and 100
    instances, measured interleaved in one run (sandbox in its own process, medians of 5
    alternating rounds); plus, for reference, the frame alone (``listed_instances_frame`` of
    the parsed listing fields, as ``instances()`` builds it)."""
    from novita_notebook.frames import listed_instances_frame
    from novita_notebook.models import listing_fields

    from .figures_sandbox import _fill
    from .remote_sandbox import serving_sandbox

    repeats = 20 if quick else 200
    figures = []
    for count, limit in FRAME_RATIO_TARGETS.items():
        with serving_sandbox(quick, speed=1.0) as sandbox:
            _fill(sandbox, count)
            client = Novita(api_key=sandbox.api_key, api_url=sandbox.url)
            try:
                client.products()  # the price catalog is cached outside the timing
                client.instances()
                frame_call, list_call = interleaved_per_call(
                    client.instances, client.api.list_instances, repeats
                )
                rows = [listing_fields(raw) for raw in client.api.list_instances()]
                for row in rows:
                    row["price_per_hour"] = None
                _, frame_only = interleaved_per_call(
                    lambda: None, lambda rows=rows: listed_instances_frame(rows), repeats // 2
                )
            finally:
                client.close()
        ratio = frame_call / list_call
        figures.append(
            Figure(
                f"instances() vs api.list_instances() for {count} instances",
                frame_call * 1000,
                "ms",
                list_call * 1000,
                target=f"ratio <= {limit:g}",
                met=ratio <= limit,
                notes={"frame alone": f"{frame_only * 1000:.2f} ms"},
            )
        )
    return figures
