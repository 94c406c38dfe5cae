"""The guard store's document, ``guard.json``, read record by record: a record that cannot be used
is set aside with its reason (never the whole file), a file cut short or holding bytes that are
not UTF-8 gives back every record still readable, and what was lost is named.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..files import has_bad_bytes, read_text_marked, recover_objects
from .records import GuardIntent, GuardRecord, scope_url

__all__ = [
    "Problem",
    "StoreDocument",
    "read_document",
    "render",
    "rebuild",
    "announce_losses",
    "QUARANTINE_FILE",
]

log = logging.getLogger(__name__)

STORE_VERSION = 2
QUARANTINE_FILE = "guard-quarantine.jsonl"
#: Characters of a damaged record kept in the quarantine file (for a person to look at).
FRAGMENT_KEEP = 4000

_ID = re.compile(r'"id"\s*:\s*"([^"\\]{1,200})"')
_NAME = re.compile(r'"name"\s*:\s*"([^"\\]{1,200})"')
_API_URL = re.compile(r'"api_url"\s*:\s*"([^"\\]{1,500})"')
_BAD_BYTES = re.compile("[\udc80-\udcff]")
_DOCUMENT_KEYS = frozenset({"version", "counts", "instances", "intents", "claims", "units"})
_COUNTS = re.compile(r'"counts"\s*:\s*\{"instances":\s*(\d+),\s*"intents":\s*(\d+)')
#: Keys that only a record, an intent or a claim has: a lost fragment holding one lost one.
_ITEM_KEYS = re.compile(r'"(?:id|token|api_url|rules)"\s*:')


@dataclass
class Problem:
    """A part of the store that could not be used: ``kind`` (record, intent, claim, part),
    the instance it names (or None), the API URL it names (or None), why, and its text."""

    kind: str
    instance: str | None
    reason: str
    fragment: str = ""
    api_url: str | None = None
    count: int = 1  # records it stands for (several cut away whole name none)

    def to_dict(self) -> dict[str, Any]:
        text = self.fragment[:FRAGMENT_KEEP].encode("utf-8", "replace").decode("utf-8")
        return {
            "time": datetime.now(UTC).isoformat(),
            "kind": self.kind,
            "instance_id": self.instance,
            "api_url": self.api_url,
            "reason": self.reason,
            "fragment": text,
        }

    def who(self) -> str:
        return f"instance {self.instance}" if self.instance else "instances it cannot name"


@dataclass
class StoreDocument:
    """What ``guard.json`` holds, as plain dicts that each passed their check; ``problems``
    lists what did not; ``damaged`` means the file must be repaired (rewritten)."""

    instances: list[dict[str, Any]] = field(default_factory=list)
    intents: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    damaged: bool = False
    missing: bool = False
    rebuilt_intents: int = 0

    def as_data(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "intents": self.intents,
            "claims": self.claims,
            "units": self.units,
        }


def _clean(text: str | None) -> str | None:
    """A name read from damaged text, without the bytes that were not UTF-8."""
    return _BAD_BYTES.sub("", text) or None if text else None


def _names(fragment: str) -> tuple[str | None, str | None]:
    found = _ID.search(fragment) or _NAME.search(fragment)
    url = _API_URL.search(fragment)
    return _clean(found.group(1) if found else None), _clean(url.group(1) if url else None)


def _check(kind: str, item: Any, doc: StoreDocument, fragment: str) -> None:
    """Keep a record (``kind`` "record") or an intent that passes its checks; make a Problem
    naming its instance (or create) of one that does not."""
    named, url = _names(fragment)
    if kind == "record" and isinstance(item, dict):
        named = _clean(str(item.get("id") or named or ""))
    parse, kept = (
        (GuardRecord.from_dict, doc.instances) if kind == "record" else (GuardIntent.from_dict,
                                                                          doc.intents)
    )  # fmt: skip
    try:
        if has_bad_bytes(item):
            raise ValueError("bytes that are not UTF-8")
        parse(item)
    except (ValidationError, ValueError, TypeError, OverflowError) as error:
        reason = getattr(error, "message", None) or str(error)
        doc.problems.append(Problem(kind, named, reason, fragment, url))
        return
    kept.append(item)


def _is_claim(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("instance_id"), str)
        and isinstance(item.get("action"), str)
        and not has_bad_bytes(item)
    )


def _whole(data: Any, doc: StoreDocument) -> bool:
    """Check a document that parsed as JSON, item by item; False if it is no guard store, or
    its structure is damaged (a key that is not ours, a count that does not add up): then it
    is read object by object instead."""
    if not isinstance(data, dict) or not set(data) <= _DOCUMENT_KEYS:
        return False
    parts = {key: data.get(key, []) for key in ("instances", "intents", "claims")}
    if not all(isinstance(value, list) for value in parts.values()):
        return False
    counts = data.get("counts")
    if isinstance(counts, dict) and any(
        counts.get(key) != len(parts[key]) for key in ("instances", "intents")
    ):
        return False
    for item in parts["instances"]:
        _check("record", item, doc, json.dumps(item, ensure_ascii=False, default=str))
    for item in parts["intents"]:
        _check("intent", item, doc, json.dumps(item, ensure_ascii=False, default=str))
    doc.claims = [c for c in parts["claims"] if _is_claim(c)]
    dropped_claims = len(parts["claims"]) - len(doc.claims)
    units = data.get("units")
    doc.units = units if isinstance(units, dict) and not has_bad_bytes(units) else {}
    doc.damaged = bool(doc.problems) or dropped_claims > 0
    return True


def _recovered(text: str, doc: StoreDocument) -> None:
    """Read a damaged document object by object."""
    doc.damaged = True
    for start, end, item in recover_objects(text):
        fragment = text[start:end]
        if item is None:
            if _ITEM_KEYS.search(fragment):
                instance, url = _names(fragment)
                doc.problems.append(Problem("part", instance, "cut short or not JSON", fragment,
                                            url))  # fmt: skip
        elif (
            item
            and not has_bad_bytes(item)
            and all(isinstance(v, dict) and "unit" in v for v in item.values())
        ):
            doc.units = item  # what was learned of the API (the metrics unit)
        else:
            _classify(item, doc, fragment)
    _count_the_vanished(text, doc)


def _classify(item: Any, doc: StoreDocument, fragment: str) -> None:
    """File one object found in a damaged document by its shape."""
    if not isinstance(item, dict) or has_bad_bytes(item):
        if _ITEM_KEYS.search(fragment):
            instance, url = _names(fragment)
            doc.problems.append(
                Problem("part", instance, "bytes that are not UTF-8", fragment, url)
            )
    elif "rules" in item and "id" in item:
        _check("record", item, doc, fragment)
    elif "token" in item and "sent_at" in item:
        _check("intent", item, doc, fragment)
    elif _is_claim(item):
        doc.claims.append(item)


def _from_parsed(data: dict[str, Any], text: str, doc: StoreDocument) -> None:
    """Read a document that parsed as JSON but whose structure is damaged (a key spoiled by
    bytes that are not UTF-8, counts that do not add up): every item of every list."""
    doc.damaged = True
    for value in data.values():
        for item in value if isinstance(value, list) else ():
            _classify(item, doc, json.dumps(item, ensure_ascii=False, default=str))
    units = data.get("units")
    doc.units = units if isinstance(units, dict) and not has_bad_bytes(units) else {}
    _count_the_vanished(text, doc)


def _count_the_vanished(text: str, doc: StoreDocument) -> None:
    """Records cut away whole leave no fragment to name: the header's count still tells."""
    found = _COUNTS.search(text)
    if found is None:
        return
    seen = len(doc.instances) + sum(1 for p in doc.problems if _is_record_part(p))
    missing = int(found.group(1)) - seen
    if missing > 0:
        reason = f"{missing} record(s) cut away whole (the file says it held {found.group(1)})"
        doc.problems.append(Problem("record", None, reason, count=missing))
    seen = len(doc.intents) + sum(1 for p in doc.problems if _is_intent_part(p))
    missing = int(found.group(2)) - seen
    if missing > 0:
        reason = (
            f"{missing} create intent(s) cut away whole (the file says it held {found.group(2)})"
        )
        doc.problems.append(Problem("intent", None, reason, count=missing))


def _is_intent_part(problem: Problem) -> bool:
    return problem.kind == "intent" or (problem.kind == "part" and '"token"' in problem.fragment)


def _is_record_part(problem: Problem) -> bool:
    """Does a problem stand for one guarded instance's record (not a claim or an intent)?"""
    if problem.kind == "record":
        return True
    fragment = problem.fragment
    return (
        problem.kind == "part"
        and '"token"' not in fragment
        and (_ID.search(fragment) is not None or '"rules"' in fragment)
    )


def parse_document(data: bytes) -> StoreDocument:
    """The document in ``guard.json``'s bytes, never an exception: every usable item is
    kept, every unusable one becomes a Problem."""
    doc = StoreDocument()
    text = read_text_marked(data)
    if not text.strip():
        doc.damaged = bool(data)  # an empty file is a new store; whitespace alone is not
        return doc
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if parsed is not None and _whole(parsed, doc):
        return doc
    doc.instances, doc.intents, doc.claims, doc.problems = [], [], [], []
    if isinstance(parsed, dict):  # JSON, but its structure is damaged: go by each item's shape
        _from_parsed(parsed, text, doc)
    else:
        _recovered(text, doc)
    if not (doc.instances or doc.intents or doc.claims or doc.problems):
        doc.problems.append(Problem("part", None, "not a guard store", text))
    return doc


def read_document(path: Path) -> StoreDocument:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return StoreDocument(missing=True)
    return parse_document(data)


def render(data: dict[str, Any]) -> str:
    """The file's text: one line per record, intent and claim (so that a file cut short
    loses as little as possible), atomically replaced by the caller."""
    counts = {key: len(data.get(key) or []) for key in ("instances", "intents")}
    lines = ["{", f' "version": {STORE_VERSION},', f' "counts": {json.dumps(counts)},']
    for key in ("instances", "intents", "claims"):
        items = data.get(key) or []
        body = ",\n".join("  " + json.dumps(item, sort_keys=True) for item in items)
        lines.append(f' "{key}": [' + (f"\n{body}\n ]," if items else "],"))
    lines.append(f' "units": {json.dumps(data.get("units") or {}, sort_keys=True)}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def rebuild(
    doc: StoreDocument, copies: list[dict[str, Any]], pending: list[dict[str, Any]]
) -> list[GuardRecord]:
    """Add to ``doc`` the records the ledger has a copy of (``copies``) and the intents its
    create intents carry (``pending``) that the file lost; returns the records added."""
    have = {(i.get("id"), scope_url(i.get("api_url"))) for i in doc.instances}
    rebuilt = []
    for copy in copies:
        if (copy.get("id"), scope_url(copy.get("api_url"))) in have:
            continue
        try:
            record = GuardRecord.from_dict(copy)
        except (ValidationError, ValueError, TypeError, OverflowError):
            continue
        doc.instances.append(record.to_dict())
        have.add((record.id, record.api_url))
        rebuilt.append(record)
    tokens = {i.get("token") for i in doc.intents}
    for claim in pending:
        intent = intent_from_claim(claim)
        if intent is not None and intent.token not in tokens:
            doc.intents.append(intent.to_dict())
            doc.rebuilt_intents += 1
    return rebuilt


def intent_from_claim(claim: Mapping[str, Any]) -> GuardIntent | None:
    """The guard intent a ledger create intent carries (pending.py), if it carries one."""
    guard, sent = claim.get("guard"), claim.get("sent_at")
    if not isinstance(guard, Mapping) or not isinstance(sent, int | float):
        return None
    try:
        return GuardIntent.from_dict(
            {
                "token": claim.get("token"),
                "name": claim.get("name"),
                "rules": guard.get("rules"),
                "sent_at": datetime.fromtimestamp(float(sent), UTC).isoformat(),
                "api_url": guard.get("api_url") or claim.get("api_url"),
                "price_per_hour": guard.get("price_per_hour"),
            }
        )
    except (ValidationError, ValueError, TypeError, OverflowError):
        return None


def announce_losses(
    path: Path,
    quarantine: Path,
    problems: list[Problem],
    rebuilt: list[GuardRecord],
    rebuilt_intents: int = 0,
) -> list[tuple[str, str, str, int, str]]:
    """Write the problems to the quarantine file and warn about each, naming the instance
    (for a create in flight, its name); returns ``(instance or name, reason, result, count,
    kind)`` per loss and per record rebuilt, for the log (``count``: how many records an
    unnamed loss stands for)."""
    if problems:
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        with open(quarantine, "a", encoding="utf-8") as file:
            for problem in problems:
                file.write(json.dumps(problem.to_dict(), sort_keys=True) + "\n")
    back = {r.id for r in rebuilt}
    # rebuilt records no problem names stand in for those the file lost without a trace
    spare = len(back - {p.instance for p in problems})
    out = []
    for problem in problems:
        saved = problem.instance in back
        if problem.instance is None and _is_record_part(problem) and spare >= problem.count:
            spare -= problem.count
            saved = True
        if _is_intent_part(problem) and rebuilt_intents >= problem.count:
            rebuilt_intents -= problem.count  # the ledger's create intents carried them
            saved = True
        message = _loss_message(path, problem, saved, len(rebuilt))
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=7)
        result = "rebuilt from the ledger's copy" if saved else "rules lost: not guarded"
        kind = "intent" if _is_intent_part(problem) else "record"
        out.append((problem.instance or "", problem.reason, result, problem.count, kind))
    named = {p.instance for p in problems}
    for record in rebuilt:
        if record.id not in named:
            message = (
                f"novita-notebook: the guard rules of instance {record.id} were missing from "
                f"{path}; they were rebuilt from the ledger's copy"
            )
            log.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=7)
            out.append(
                (
                    record.id,
                    "missing from the guard store",
                    "rebuilt from the ledger's copy",
                    1,
                    "record",
                )  # fmt: skip
            )
    return out


def _loss_message(path: Path, problem: Problem, saved: bool, rebuilt: int) -> str:
    head = (
        f"novita-notebook: the guard store {path} was unreadable in part ({problem.reason}): "
        f"the guard rules of {problem.who()}"
    )
    if saved:
        return f"{head} were rebuilt from the ledger's copy"
    extra = f" ({rebuilt} records were rebuilt from the ledger)" if rebuilt else ""
    if problem.instance is None:
        return (
            f"{head} are lost and the ledger has no copy: those instances are NOT guarded "
            "until you set their rules again (novita.guard(...); mine() lists what exists)"
            f"{extra}"
        )
    return (
        f"{head} are lost and the ledger has no copy: it is NOT guarded until you set its "
        f"rules again (novita.guard(...)); the record is kept in {QUARANTINE_FILE}{extra}"
    )
