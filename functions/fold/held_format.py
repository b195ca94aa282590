"""How a bucket's held tallies are stored: one compact JSON text in `usage_fold_state/{b}.held`.

One string instead of a map of maps: the Firestore client decodes and deep-copies every value
of a document it reads, and 16 buckets of 2,000 entries as maps cost a fold 7.6 s of CPU for
that alone (`bench/fold_held_state.py`); as one string per bucket it is one value. The text is
`{"format": 2, "rows": [row, ...]}`, a row being `[customer_id, month, base, upto, records,
scenes_generated, episodes_generated, cost_cents, compute_minutes, storage_gb, headroom,
written_at, owed]`, times as integer microseconds since the epoch (exact), null where absent.
Format 1 (rows without `owed`) is read as owing nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from functions.fold.ports import HeldTally
from shared.counters import SHARD_FLOAT_FIELDS, SHARD_INT_FIELDS

FORMAT: Final = 2
_READS: Final = {1: 12, 2: 13}
"""Row width by format."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_SEPARATORS: Final = (",", ":")


class UnreadableRowError(ValueError):
    """A stored row that is not an entry (only the fold writes them: a bug or a hand edit)."""


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _MICRO


def _time(value: Any) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnreadableRowError(f"expected integer microseconds, got {value!r}")
    return _EPOCH + value * _MICRO


def row(held: HeldTally) -> list[Any]:
    """One entry as stored."""
    return [
        held.customer_id,
        held.month,
        _micros(held.base),
        _micros(held.upto),
        *(int(held.values.get(name, 0)) for name in SHARD_INT_FIELDS),
        *(float(held.values.get(name, 0.0)) for name in SHARD_FLOAT_FIELDS),
        held.headroom,
        _micros(held.written_at),
        _micros(held.owed),
    ]


def held_size(held: HeldTally) -> int:
    """Bytes one entry adds to the stored text."""
    return len(json.dumps(row(held), separators=_SEPARATORS).encode()) + 1


def from_row(data: Any, form: int = FORMAT) -> HeldTally:
    """An entry from its stored row; UnreadableRowError naming what is wrong."""
    width = _READS[form]
    if not isinstance(data, list) or len(data) != width:
        raise UnreadableRowError(f"expected a list of {width} values")
    owed = data[12] if form >= 2 else None
    customer_id, month, base, upto = data[:4]
    ints = data[4 : 4 + len(SHARD_INT_FIELDS)]
    floats = data[4 + len(SHARD_INT_FIELDS) : 10]
    headroom, written_at = data[10:12]
    if not isinstance(customer_id, str) or not isinstance(month, str):
        raise UnreadableRowError("expected the customer id and month as text")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
        raise UnreadableRowError(f"expected integer counts, got {ints!r}")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in floats):
        raise UnreadableRowError(f"expected finite amounts, got {floats!r}")
    if headroom is not None and (not isinstance(headroom, int) or isinstance(headroom, bool)):
        raise UnreadableRowError(f"expected an integer headroom, got {headroom!r}")
    values: dict[str, int | float] = dict(zip(SHARD_INT_FIELDS, ints, strict=True))
    values.update(zip(SHARD_FLOAT_FIELDS, (float(v) for v in floats), strict=True))
    return HeldTally(
        customer_id,
        month,
        None if base is None else _time(base),
        _time(upto),
        values,
        headroom,
        _time(written_at),
        None if owed is None else _time(owed),
    )


def encode(held: Mapping[str, HeldTally]) -> str:
    """The stored text of a held map."""
    rows = [row(h) for h in held.values()]
    return json.dumps({"format": FORMAT, "rows": rows}, separators=_SEPARATORS)


def decode(text: Any) -> tuple[dict[str, HeldTally], list[str]]:
    """The held map of a stored text, and a description of each row that could not be read
    (an absent or empty value is an empty map)."""
    if text is None or text == "":
        return {}, []
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError as exc:
        return {}, [f"held: not JSON ({exc})"]
    form = data.get("format") if isinstance(data, dict) else None
    if not isinstance(form, int) or form not in _READS or not isinstance(data, dict):
        return {}, [f"held: expected format {FORMAT}, got {str(text)[:80]!r}"]
    out: dict[str, HeldTally] = {}
    problems: list[str] = []
    for n, item in enumerate(data.get("rows") or []):
        try:
            entry = from_row(item, form)
        except UnreadableRowError as exc:
            problems.append(f"held row {n}: {exc}: {str(item)[:200]}")
            continue
        out[entry.key] = entry
    return out, problems
