"""What the doctor's checks share: the probe, the lines found so far, the answers by endpoint
(for the field check), the ids and names seen (anonymised in the bug report), and the
answers that were no API answer (not JSON, another host): a check that met one fails.
"""

from __future__ import annotations

from typing import Any

from .probe import API_PREFIX, Probe, Reply
from .report import FAILED, Line

# The user's own things; the catalog (product and cluster ids) is public and stays readable.
ACCOUNT_PATHS = frozenset(
    {"/gpu/instances", "/gpu/instance", "/templates", "/repository/auths", "/networkstorages/list"}
)
PRIVATE_KEYS = frozenset(
    {"id", "Id", "name", "storageId", "storageName", "username", "instanceId", "templateId"}
)


class Context:
    """State of one doctor run."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.lines: dict[str, Line] = {}
        self.answers: dict[str, list[Any]] = {}
        self.refused: dict[
            str, str
        ] = {}  # endpoint -> "HTTP 404 REASON" when it did not answer 200
        self.private: set[str] = set()
        # Answers that were no API answer, since the current check began (begin_check).
        self.broken: list[str] = []

    def begin_check(self) -> None:
        """A new check starts: answers broken before it do not fail its lines."""
        self.broken = []

    def add(self, name: str, status: str, detail: str, *, relied_on: bool = True) -> None:
        """Record line ``name``. A check that met an answer which was not JSON from the API
        host fails, whatever it concluded: its conclusion rests on no real answer."""
        if self.broken and status != FAILED:
            status, detail = FAILED, f"{'; '.join(dict.fromkeys(self.broken))} ({detail})"
        self.lines[name] = Line(name, status, self.probe.scrub(detail), relied_on)

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        collect: bool = True,
        namespace: str = API_PREFIX,
    ) -> Reply:
        """GET ``path``; a 200 answer is kept for the field check (unless ``collect`` is
        False), anything else is noted against the endpoint; an answer that is no API answer
        (``Reply.problem``) is neither, and fails the check that asked."""
        reply = self.probe.get(path, params, namespace=namespace)
        endpoint = f"GET {path}" if namespace == API_PREFIX else f"GET {namespace}{path}"
        if reply.problem:
            self.broken.append(f"{endpoint}: {reply.problem}")
            self.refused[endpoint] = reply.problem
            return reply
        if reply.status == 200:
            self.refused.pop(endpoint, None)
            if collect:
                self.answers.setdefault(endpoint, []).append(reply.data)
            if path in ACCOUNT_PATHS:
                self._remember_private(reply.data, None)
        elif collect and endpoint not in self.answers:
            self.refused[endpoint] = describe(reply)
        return reply

    def _remember_private(self, value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            for k, item in value.items():
                self._remember_private(item, k)
        elif isinstance(value, list):
            for item in value:
                self._remember_private(item, key)
        elif key in PRIVATE_KEYS and isinstance(value, str):
            self.private.add(value)


def describe(reply: Reply) -> str:
    """``HTTP 400 RESOURCE_NOT_FOUND``, or the transport error when nothing answered."""
    if reply.status == 0:
        return reply.error or "no answer"
    return f"HTTP {reply.status}" + (f" {reply.reason}" if reply.reason else "")


def items(data: Any, key: str) -> list[dict[str, Any]]:
    """The list under ``key`` of an answer, keeping only objects ([] when absent)."""
    value = data.get(key) if isinstance(data, dict) else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def item_id(item: dict[str, Any]) -> str | None:
    """An item's id: ``id`` (instances, products) or ``Id`` (templates)."""
    value = item.get("id", item.get("Id"))
    return str(value) if value is not None else None


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
