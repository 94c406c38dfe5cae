"""How long each provisioning phase took, per (product, region, image, phase), in the ledger dir.
Bounded, file-locked, atomically replaced; robust summaries and a documented prior for no history.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..files import atomic_write_text
from ..files import move_aside as move_file_aside

__all__ = ["Estimate", "PhaseHistory", "phase_durations", "prior_estimate", "step_of", "path_for"]

log = logging.getLogger(__name__)

HISTORY_FILE = "phase-history.json"
HISTORY_VERSION = 1
LOCK_TIMEOUT = 30.0
MAX_SAMPLES = 50  # per key: the last 50 durations
MAX_KEYS = 400  # least recently updated keys go first
MAX_BYTES = 512_000  # the file never grows past this; a bigger one on disk is not even parsed
MAX_SECONDS = 86_400.0  # a phase longer than a day is a broken clock, not a data point
MAX_INFLATION = 4.0
MIN_SAMPLES = 3  # fewer than this and the prior answers
RESTART_FACTOR = 100.0  # a duration this far outside a key's band restarts the key

#: Status → the phase a duration is recorded under. The API's statuses are finer than the
#: phases people talk about ("queued, creating, pulling, starting"); ``models.phase_of`` is
#: coarser still (all four are its ``provisioning``/``starting``).
_STATUSES_OF_STEP: dict[str, tuple[str, ...]] = {
    "queued": ("pending", "toCreate", "toStart", "toRestart", "toReset"),
    "creating": ("creating",),
    "pulling": ("pulling",),
    "starting": ("starting", "restarting", "resetting", "migrating"),
}
_STEP_OF_STATUS = {status: step for step, all_ in _STATUSES_OF_STEP.items() for status in all_}
STEPS: tuple[str, ...] = ("queued", "creating", "pulling", "starting")
#: The phases a transition goes through before ``running``, by the kind of transition.
PATHS: dict[str, tuple[str, ...]] = {
    "create": ("queued", "creating", "pulling"),
    "start": ("queued", "starting"),
}
_START_STATUSES = frozenset(
    {"toStart", "starting", "toRestart", "restarting", "toReset", "resetting", "migrating"}
)


def step_of(status: str | None) -> str | None:
    """The recorded phase of a status (``pulling`` → ``pulling``, ``toCreate`` → ``queued``);
    None for statuses that are not on the way to running (running itself, exited, ...)."""
    return _STEP_OF_STATUS.get(status or "")


def path_for(first_status: str | None) -> tuple[str, ...]:
    """The phases ahead of an instance first seen in ``first_status`` (create or start)."""
    return PATHS["start"] if first_status in _START_STATUSES else PATHS["create"]


# ---------------------------------------------------------------------------------------------
# Summaries and the prior
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """What to expect of one phase: ``median`` seconds, a ``low``/``high`` band (about the 10th
    and 90th percentiles, widened by ``inflation`` after surprises and for few samples),
    ``count`` samples, their ``mad``; ``learned`` is False when the prior answered."""

    phase: str
    median: float
    low: float
    high: float
    count: int = 0
    mad: float = 0.0
    inflation: float = 1.0
    learned: bool = False

    def remaining(self, elapsed: float) -> float:
        """Expected seconds left in the phase after ``elapsed`` seconds in it. Past the median
        the phase is running late: expect half the way to ``high``, and past ``high`` a quarter
        of the overrun again (a slow phase tends to stay slow)."""
        elapsed = max(0.0, elapsed)
        if elapsed < self.median:
            return self.median - elapsed
        floor = 0.1 * self.median
        if elapsed < self.high:
            return max(floor, 0.5 * (self.high - elapsed))
        return max(floor, 0.25 * (elapsed - self.median))


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def summarise(phase: str, samples: Sequence[float], inflation: float = 1.0) -> Estimate:
    """Median, MAD and a 10–90 % band of ``samples``; the band is at least 5 % of the median
    (identical samples still allow for noise), grows for few samples, and is multiplied by
    ``inflation``."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    median = _quantile(ordered, 0.5)
    mad = _quantile(sorted(abs(x - median) for x in ordered), 0.5)
    robust = 1.4826 * mad * 1.2816  # the 10/90 % points of a normal with that MAD
    floor = 0.05 * median
    few = 1.0 + 2.0 / len(ordered)
    up = max(_quantile(ordered, 0.9) - median, robust, floor) * few * inflation
    down = max(median - _quantile(ordered, 0.1), robust, floor) * few * inflation
    return Estimate(
        phase=phase,
        median=median,
        low=max(0.0, median - down),
        high=median + up,
        count=len(ordered),
        mad=mad,
        inflation=inflation,
        learned=True,
    )


# Documented sandbox/Novita behaviour (docs/architecture.md): ~1 s per queued step, creating
# 4 s, pulling 15 s + 8 s/GB (capped at 4 min), starting 10 s. The band is wide (x0.3 to x3):
# real queues and registries vary far more than the sandbox.
_PRIOR_MEDIANS = {"queued": 1.0, "creating": 4.0, "starting": 10.0}
_PRIOR_BAND = (0.3, 3.0)

# Image size when nobody says: a few name patterns, else 2 GB. Deliberately coarse.
_SIZE_HINTS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("devel",), 8.0),
    (("stable-diffusion", "vllm", "sglang", "comfyui"), 9.0),
    (("pytorch", "tensorflow", "cuda", "cudnn", "jupyter", "nvidia", "torch"), 5.0),
    (("ubuntu", "debian", "alpine", "busybox", "python"), 0.3),
)


def image_size_guess(image: str | None) -> float:
    """Compressed size in GB guessed from the image name: ``*devel*`` 8, diffusion/vLLM 9,
    CUDA/PyTorch/TensorFlow/Jupyter 5, plain OS/python 0.3, anything else 2."""
    name = (image or "").lower()
    for words, size in _SIZE_HINTS:
        if any(word in name for word in words):
            return size
    return 2.0


def prior_estimate(
    phase: str, image: str | None = None, *, image_gb: float | None = None, scale: float = 1.0
) -> Estimate:
    """The documented expectation for ``phase`` when there is no history; ``scale`` divides
    nothing and multiplies everything (a sandbox at speed 10 is ``scale=0.1``)."""
    if phase == "pulling":
        size = image_gb if image_gb is not None else image_size_guess(image)
        median = min(240.0, 15.0 + 8.0 * max(0.0, float(size)))
    else:
        median = _PRIOR_MEDIANS.get(phase, 10.0)
    median *= scale
    return Estimate(
        phase=phase, median=median, low=median * _PRIOR_BAND[0], high=median * _PRIOR_BAND[1]
    )


# ---------------------------------------------------------------------------------------------
# The history file
# ---------------------------------------------------------------------------------------------


def _key_text(scope: str, product: str, region: str, image: str, phase: str) -> str:
    return json.dumps([scope, product, region, image, phase], separators=(",", ":"))


def _clean_entry(value: Any) -> dict[str, Any] | None:
    """An entry as stored, or None if any part has the wrong type or an impossible value."""
    if not isinstance(value, dict):
        return None
    samples, updated, inflation = value.get("s"), value.get("u", 0.0), value.get("f", 1.0)
    if not isinstance(samples, list) or not samples:
        return None
    numbers = [x for x in samples if isinstance(x, int | float) and not isinstance(x, bool)]
    if len(numbers) != len(samples) or not all(0 <= x <= MAX_SECONDS for x in numbers):
        return None
    for number in (updated, inflation):
        if isinstance(number, bool) or not isinstance(number, int | float):
            return None
        if not math.isfinite(number):
            return None
    return {
        "s": [float(x) for x in numbers[-MAX_SAMPLES:]],
        "u": float(updated),
        "f": min(MAX_INFLATION, max(1.0, float(inflation))),
    }


class PhaseHistory:
    """Durations of provisioning phases in ``<ledger dir>/phase-history.json``.

    Keyed by (product, region, image, phase) within a ``scope`` (the API URL, so a sandbox's
    compressed seconds never mix with Novita's). Each key keeps its last 50 durations and an
    inflation factor that a surprise raises. Every write holds a cross-process file lock and
    replaces the file atomically; a broken or oversized file is moved aside with a warning and
    a fresh history starts. The file stays under ``max_bytes`` (oldest keys go first).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        scope: str | None = None,
        max_samples: int = MAX_SAMPLES,
        max_keys: int = MAX_KEYS,
        max_bytes: int = MAX_BYTES,
        min_samples: int = MIN_SAMPLES,
    ) -> None:
        if path is not None and not isinstance(path, str | os.PathLike):
            raise ValidationError("path must be a file path", field="path")
        for name, value in (
            ("max_samples", max_samples),
            ("max_keys", max_keys),
            ("max_bytes", max_bytes),
            ("min_samples", min_samples),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be an integer >= 1, got {value!r}", field=name)
        self._explicit_path = Path(path).expanduser() if path is not None else None
        self.scope = (scope or "").rstrip("/")
        self.max_samples = max_samples
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self.min_samples = min_samples
        self._thread_lock = threading.RLock()

    @property
    def path(self) -> Path:
        if self._explicit_path is not None:
            return self._explicit_path
        from ..ledger import ledger_dir  # resolved on use: NOVITA_NOTEBOOK_HOME may change

        return ledger_dir() / HISTORY_FILE

    def __repr__(self) -> str:
        return f"<PhaseHistory {self.path}>"

    # -- writing -------------------------------------------------------------------------------
    def record(self, product: str, region: str, image: str, phase: str, seconds: float) -> None:
        """Add one duration of ``phase``; a surprise (outside the band expected so far, by half
        again) doubles the key's inflation, an expected one lets it decay toward 1."""
        self.record_many(product, region, image, {phase: seconds})

    def record_many(
        self, product: str, region: str, image: str, durations: Mapping[str, float]
    ) -> None:
        """Add one duration per phase in one locked read-modify-write."""
        clean: dict[str, float] = {}
        for phase, seconds in durations.items():
            if phase not in STEPS:
                raise ValidationError(f"phase must be one of {', '.join(STEPS)}", field="phase")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise ValidationError("seconds must be a number", field="seconds")
            if not 0 <= seconds <= MAX_SECONDS or not math.isfinite(seconds):
                raise ValidationError(
                    f"seconds must be between 0 and {MAX_SECONDS:g}", field="seconds"
                )
            clean[phase] = float(seconds)
        if not clean:
            return
        names = [str(product or ""), str(region or ""), str(image or "")]

        def change(entries: dict[str, dict[str, Any]]) -> None:
            now = time.time()
            for phase, seconds in clean.items():
                key = _key_text(self.scope, *names, phase)
                entry = entries.get(key) or {"s": [], "u": now, "f": 1.0}
                if self._moved(phase, entry, seconds):
                    entry = {"s": [], "u": now, "f": 1.0}
                entry["f"] = self._next_inflation(phase, entry, seconds)
                entry["s"] = (entry["s"] + [round(seconds, 4)])[-self.max_samples :]
                entry["u"] = now
                entries[key] = entry

        self._update(change)

    def _moved(self, phase: str, entry: Mapping[str, Any], seconds: float) -> bool:
        """True when the key's samples no longer describe it, so it starts again from
        ``seconds``: a duration a hundred times outside their band (a broken clock, day-long
        durations). A lesser surprise only widens the band (``_next_inflation``), and an
        outlier is shrugged off by the median; without this, one bad history would steer
        every wait of its key (polls far apart while an arrival is "hours" away) for dozens
        of waits."""
        if len(entry["s"]) < self.min_samples:
            return False
        expected = summarise(phase, entry["s"], float(entry.get("f", 1.0)))
        moved = seconds < expected.low / RESTART_FACTOR or seconds > expected.high * RESTART_FACTOR
        if moved:
            log.info(
                "phase %s took %.3g s against %.3g s expected: that history is forgotten",
                phase,
                seconds,
                expected.median,
            )
        return moved

    def _next_inflation(self, phase: str, entry: Mapping[str, Any], seconds: float) -> float:
        inflation = float(entry.get("f", 1.0))
        if len(entry["s"]) < self.min_samples:
            return inflation
        expected = summarise(phase, entry["s"], inflation)
        if _surprising(expected, seconds):
            log.info(
                "phase %s took %.3g s, expected %.3g s: widening", phase, seconds, expected.median
            )
            return min(MAX_INFLATION, inflation * 2.0)
        return max(1.0, inflation * 0.8)

    def record_transitions(
        self,
        product: str,
        region: str,
        image: str,
        timeline: Sequence[tuple[str, float]],
        *,
        first_is_entry: bool = True,
        expected: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Record the phases of one instance from ``timeline``: (status, first seen) pairs in
        order, on any one clock. Each phase lasts from its first sighting to the next phase's.
        When polls skipped phases (toCreate, then pulling), the span is shared among the
        skipped phases in proportion to ``expected`` medians (default: the prior). The first
        phase is recorded only if ``first_is_entry`` (the wait saw it begin). The last entry
        (running, exited, ...) ends the timeline. Returns the durations recorded."""
        durations = phase_durations(
            timeline, first_is_entry=first_is_entry, expected=expected, image=image
        )
        if durations:
            self.record_many(product, region, image, durations)
        return durations

    def clear(self) -> None:
        """Forget everything (the file is removed)."""
        with self._thread_lock, self._file_lock():
            self.path.unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------------------------
    def samples(self, product: str, region: str, image: str, phase: str) -> list[float]:
        """The stored durations of one key, oldest first."""
        entry = self._load().get(_key_text(self.scope, product, region, image, phase))
        return list(entry["s"]) if entry else []

    def estimates(
        self,
        product: str,
        region: str,
        image: str,
        *,
        image_gb: float | None = None,
        scale: float = 1.0,
    ) -> dict[str, Estimate]:
        """One Estimate per phase (all of ``STEPS``) from one read: learned where the key has
        ``min_samples`` durations, the prior elsewhere (``scale`` applies to the prior only)."""
        entries = self._load()
        result: dict[str, Estimate] = {}
        for phase in STEPS:
            entry = entries.get(_key_text(self.scope, product, region, image, phase))
            if entry and len(entry["s"]) >= self.min_samples:
                result[phase] = summarise(phase, entry["s"], entry["f"])
            else:
                result[phase] = prior_estimate(phase, image, image_gb=image_gb, scale=scale)
        return result

    def estimate(self, product: str, region: str, image: str, phase: str) -> Estimate:
        """The Estimate of one phase (learned or prior)."""
        if phase not in STEPS:
            raise ValidationError(f"phase must be one of {', '.join(STEPS)}", field="phase")
        return self.estimates(product, region, image)[phase]

    def _load(self) -> dict[str, dict[str, Any]]:
        """Readers need no lock: the file is only ever replaced whole."""
        with self._thread_lock:
            return self._read(move_aside=False)

    # -- the file ------------------------------------------------------------------------------
    def _file_lock(self) -> Any:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)

    def _update(self, change: Any) -> None:
        with self._thread_lock, self._file_lock():
            entries = self._read(move_aside=True)
            change(entries)
            self._write(entries)

    def _read(self, *, move_aside: bool) -> dict[str, dict[str, Any]]:
        path = self.path
        try:
            size = path.stat().st_size
            if size > self.max_bytes * 2:
                raise ValueError(f"{size} bytes, more than a history ever holds")
            data = json.loads(path.read_text(encoding="utf-8"))
            raw = data.get("keys") if isinstance(data, dict) else None
            if not isinstance(raw, dict):
                raise ValueError("not a phase history: expected {'keys': {...}}")
        except FileNotFoundError:
            return {}
        except (ValueError, OSError, UnicodeDecodeError, RecursionError) as error:
            if move_aside:
                self._move_aside(path, error)
            else:
                log.warning("novita-notebook: ignoring the unreadable phase history %s", path)
            return {}
        entries = {}
        for key, value in raw.items():
            entry = _clean_entry(value)
            if entry is not None and isinstance(key, str) and len(key) <= 2000:
                entries[key] = entry
        if len(entries) != len(raw):
            log.warning(
                "novita-notebook: dropped %d malformed phase-history entries",
                len(raw) - len(entries),
            )
        return entries

    @staticmethod
    def _move_aside(path: Path, error: BaseException) -> None:
        try:
            aside_name = move_file_aside(path).name
        except OSError:
            path.unlink(missing_ok=True)
            aside_name = "nowhere (deleted)"
        log.warning(
            "novita-notebook: the phase history %s was unreadable (%s); moved it to %s and "
            "started a new one",
            path,
            str(error)[:200],
            aside_name,
        )

    def _bounded(self, entries: dict[str, dict[str, Any]]) -> str:
        """The file's text, with the least recently updated keys dropped to fit both caps."""
        ordered = sorted(entries.items(), key=lambda item: item[1]["u"], reverse=True)
        ordered = ordered[: self.max_keys]
        while True:
            text = json.dumps(
                {"version": HISTORY_VERSION, "keys": dict(ordered)}, separators=(",", ":")
            )
            if len(text.encode("utf-8")) <= self.max_bytes or not ordered:
                return text
            # drop about the overflow's share of keys at once, at least one
            share = 1 - self.max_bytes / len(text.encode("utf-8"))
            ordered = ordered[: max(0, len(ordered) - max(1, int(len(ordered) * share) + 1))]

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        path = self.path
        text = self._bounded(entries)
        atomic_write_text(path, text)


def _surprising(expected: Estimate, seconds: float) -> bool:
    """Outside the band expected so far, by half again (early or late)."""
    too_early = seconds < expected.median - 1.5 * (expected.median - expected.low)
    return too_early or seconds > expected.median + 1.5 * (expected.high - expected.median)


def phase_durations(
    timeline: Sequence[tuple[str, float]],
    *,
    first_is_entry: bool = True,
    expected: Mapping[str, float] | None = None,
    image: str | None = None,
) -> dict[str, float]:
    """Per-phase seconds from (status, first seen) pairs; see ``record_transitions``."""
    points = _merged_steps(timeline)
    if len(points) < 2:
        return {}
    path = path_for(points[0][2])
    medians = dict(expected or {})
    for phase in STEPS:
        medians.setdefault(phase, prior_estimate(phase, image).median)
    durations: dict[str, float] = {}
    for index, ((phase, seen, _), (next_phase, next_seen, _)) in enumerate(
        zip(points, points[1:], strict=False)
    ):
        if phase is None or (index == 0 and not first_is_entry):
            continue
        span = max(0.0, next_seen - seen)
        shared = _skipped(path, phase, next_phase)
        weights = [max(medians[p], 1e-9) for p in shared]
        for skipped_phase, weight in zip(shared, weights, strict=True):
            durations[skipped_phase] = durations.get(skipped_phase, 0.0) + span * weight / sum(
                weights
            )
    return durations


def _merged_steps(timeline: Iterable[tuple[str, float]]) -> list[tuple[str | None, float, str]]:
    """(phase, first seen, status) with consecutive statuses of one phase merged."""
    points: list[tuple[str | None, float, str]] = []
    for item in timeline:
        status, seen = item[0], float(item[1])
        phase = step_of(status)
        if points and phase is not None and points[-1][0] == phase:
            continue
        points.append((phase, seen, status))
        if phase is None:
            break  # running, exited, removed...: the transition is over
    return points


def _skipped(path: tuple[str, ...], phase: str, next_phase: str | None) -> list[str]:
    """``phase`` plus the phases of ``path`` between it and ``next_phase`` that polls missed."""
    if phase not in path:
        return [phase]
    start = path.index(phase)
    end = path.index(next_phase) if next_phase in path else len(path)
    return list(path[start:end]) if end > start else [phase]
