"""Bulk column builders for the package's DataFrames: each column converted once from plain
values to its dtype, and a frame assembled from those arrays without copies or re-inference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from .parsing import STATUS_ORDER

try:  # the documented low-level constructor (pandas >= 3.0)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pragma: no cover - older pandas
    _from_blocks = None

__all__ = [
    "assemble",
    "columns_of",
    "frame_from_records",
    "micros",
    "status_categories",
    "timedeltas",
]


def frame_from_records(
    records: Sequence[tuple[Any, ...]], names: Sequence[str], kinds: Mapping[str, str]
) -> pd.DataFrame:
    """A frame from row tuples: transposed at C speed, each column converted once to its
    dtype in ``kinds`` (string, float64, Int64, boolean, int64, bool, status, utc)."""
    return assemble(columns_of(records, names, kinds), names, len(records))


def columns_of(
    records: Sequence[tuple[Any, ...]], names: Sequence[str], kinds: Mapping[str, str]
) -> dict[str, Any]:
    """The columns of ``frame_from_records``, by name, before assembly."""
    values = list(zip(*records, strict=True)) if records else [()] * len(names)
    return {
        name: _CONVERTERS[kinds[name]](column) for name, column in zip(names, values, strict=True)
    }


def status_categories(statuses: Iterable[str]) -> list[str]:
    """STATUS_ORDER followed by any unknown status strings (sorted), for an ordered categorical."""
    known = set(STATUS_ORDER)
    extra = sorted({s for s in statuses if s and s not in known})
    return [*STATUS_ORDER, *extra]


_STRING_ARRAY = pd.StringDtype().construct_array_type()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min
_STATUS_DTYPE = pd.CategoricalDtype(list(STATUS_ORDER), ordered=True)
_STATUS_CODES = {status: index for index, status in enumerate(STATUS_ORDER)}
_DATETIME_ARRAY = pd.arrays.DatetimeArray
_TIMEDELTA_ARRAY = pd.arrays.TimedeltaArray
_UTC_NS = pd.DatetimeTZDtype("ns", UTC)


def _bulk_strings(values: Sequence[Any]) -> Any:
    """A ``string`` array in one conversion (None → <NA>), as ``pd.Series(dtype="string")``.
    A column of nothing but None (no ssh, no jupyter, no error: most of a listing) is a copy
    of one made before, a twentieth of converting it."""
    if values and values.count(None) == len(values):
        missing = _MISSING_STRINGS.get(len(values))
        if missing is None:
            if len(_MISSING_STRINGS) > 16:
                _MISSING_STRINGS.clear()
            missing = _MISSING_STRINGS[len(values)] = _STRING_ARRAY._from_sequence(
                values, dtype=pd.StringDtype()
            )
        return missing.copy()
    return _STRING_ARRAY._from_sequence(values, dtype=pd.StringDtype())


_MISSING_STRINGS: dict[int, Any] = {}


def _bulk_categories(statuses: Sequence[str]) -> pd.Categorical:
    """The ordered status categorical from codes (a dict lookup each, no value inference)."""
    categories = status_categories(statuses)
    if len(categories) == len(STATUS_ORDER):
        code, dtype = _STATUS_CODES, _STATUS_DTYPE
    else:
        code = {status: index for index, status in enumerate(categories)}
        dtype = pd.CategoricalDtype(categories, ordered=True)
    codes = np.fromiter((code.get(s, -1) for s in statuses), dtype=np.int16, count=len(statuses))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _bulk_ints(values: Sequence[Any]) -> Any:
    """An ``Int64`` array (None → <NA>), built from a value array and a mask when every value
    is an int or None (what the parse gives), else by pandas' own conversion."""
    count = len(values)
    if all(type(v) is int or v is None for v in values):
        try:
            data = np.fromiter((0 if v is None else v for v in values), np.int64, count)
        except OverflowError:
            return pd.array(values, dtype="Int64")
        mask = np.fromiter((v is None for v in values), bool, count)
        return pd.arrays.IntegerArray(data, mask)
    return pd.array(values, dtype="Int64")


def _bulk_floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype="float64")


def micros(value: datetime) -> int:
    """Microseconds since the epoch (a naive time is UTC)."""
    if value.tzinfo is None:  # naive times are UTC, as pd.to_datetime(utc=True) reads them
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


def assemble(columns: Mapping[str, Any], names: Sequence[str], length: int) -> pd.DataFrame:
    """The frame from ready-made column arrays (each already ``length`` long and of its final
    dtype), handed to pandas as its blocks (numpy columns of one dtype stacked into one, as
    pandas consolidates them), so nothing is re-checked or re-inferred: that was most of
    building a small frame. Falls back to ``_from_arrays``, then to the public constructor,
    on a pandas without the block API."""
    arrays = [columns[name] for name in names]
    labels = _column_index(tuple(names))
    if _from_blocks is not None:
        blocks: list[tuple[Any, np.ndarray]] = []
        stacked: dict[np.dtype, list[int]] = {}
        for position, array in enumerate(arrays):
            if isinstance(array, np.ndarray):
                stacked.setdefault(array.dtype, []).append(position)
            else:
                blocks.append((array, np.array([position], dtype=np.intp)))
        for positions in stacked.values():
            block = np.vstack([arrays[position] for position in positions])
            blocks.append((block, np.array(positions, dtype=np.intp)))
        return _from_blocks(blocks, pd.RangeIndex(length), labels)
    try:  # pragma: no cover - pandas before 3.0
        return pd.DataFrame._from_arrays(
            arrays, columns=labels, index=pd.RangeIndex(length), verify_integrity=False
        )
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the fast path
        return pd.DataFrame(dict(zip(names, arrays, strict=True)), copy=False)


_COLUMN_INDEXES: dict[tuple[str, ...], pd.Index] = {}


def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The columns Index of a frame: made once per set of names (inferring its dtype was a
    tenth of a small frame), handed out as a copy so that renaming one frame's columns never
    reaches another."""
    index = _COLUMN_INDEXES.get(names)
    if index is None:
        index = _COLUMN_INDEXES[names] = pd.Index(names)
    return index.copy()


def _naive_times(values: Sequence[datetime | None]) -> np.ndarray:
    """UTC wall times as naive ``datetime64[ns]`` (NaT for None), exact to the microsecond."""
    counts = np.fromiter(
        (_NAT if v is None else micros(v) for v in values), dtype=np.int64, count=len(values)
    )
    return counts.view("datetime64[us]").astype("datetime64[ns]")


def _utc_times(naive: np.ndarray) -> Any:
    """Naive UTC ``datetime64[ns]`` wall times → an aware UTC array, without a copy (they
    already are the UTC instants); as ``DatetimeIndex(naive).tz_localize(UTC).array``."""
    try:
        return _DATETIME_ARRAY._simple_new(naive, dtype=_UTC_NS)
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the fast path
        return pd.DatetimeIndex(naive).tz_localize(UTC).array


def timedeltas(values: np.ndarray) -> Any:
    """``timedelta64[ns]`` values (NaT where unknown) as pandas' array of them, without the
    re-validation a plain numpy column gets when the frame is assembled."""
    try:
        return _TIMEDELTA_ARRAY._simple_new(values, dtype=values.dtype)
    except (AttributeError, TypeError):  # pragma: no cover - a pandas without the fast path
        return values


_CONVERTERS: dict[str, Any] = {
    "string": _bulk_strings,
    "float64": _bulk_floats,
    "Int64": _bulk_ints,
    "boolean": lambda values: pd.array(values, dtype="boolean"),
    "int64": lambda values: np.array(values, dtype=np.int64),
    "bool": lambda values: np.array(values, dtype=bool),
    "status": _bulk_categories,
    "utc": lambda values: _utc_times(_naive_times(values)),
}
