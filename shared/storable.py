"""What Firestore can store: the problems of a value a producer sent (a usage event's
`details`), each naming its path, the value and what was expected (pure)."""

from __future__ import annotations

import math
from typing import Any, Final

from shared.errors import FieldError

_MAX_DETAILS_DEPTH: Final = 20
_INT64: Final = 2**63
_MAX_KEY_BYTES: Final = 1500
_MAX_KEY_CHARS: Final = _MAX_KEY_BYTES // 4
"""A key of at most this many characters is within the byte limit whatever its characters."""

_PLAIN: Final = (str, bool, type(None))


def _problems(value: Any, path: str, depth: int, in_array: bool) -> list[FieldError]:
    """What Firestore would refuse in a `details` value (or we do: non-finite numbers)."""
    kind = type(value)
    problem: FieldError | None = None
    if kind in _PLAIN:
        pass
    elif kind is int:
        if not -_INT64 <= value < _INT64:
            problem = FieldError(path, value, "a 64-bit integer")
    elif kind is float:
        if not math.isfinite(value):
            problem = FieldError(path, value, "a finite number")
    elif depth > _MAX_DETAILS_DEPTH:
        problem = FieldError(path, "...", f"at most {_MAX_DETAILS_DEPTH} levels of nesting")
    elif kind is dict or kind is list:
        return _container_problems(value, path, depth, in_array)
    else:
        problem = FieldError(path, value, "a JSON value")
    return [] if problem is None else [problem]


def _key_problem(path: str, key: str) -> FieldError | None:
    """What Firestore refuses in a map key: empty, over 1500 bytes, or reserved (__name__)."""
    if key == "":
        return FieldError(path, "", "map keys that are not empty")
    if len(key.encode()) > _MAX_KEY_BYTES:
        return FieldError(path, key, f"map keys of at most {_MAX_KEY_BYTES} bytes (Firestore)")
    if len(key) >= 4 and key.startswith("__") and key.endswith("__"):
        return FieldError(f"{path}.{key}", key, "a key not like __name__ (Firestore)")
    return None


def _container_problems(value: Any, path: str, depth: int, in_array: bool) -> list[FieldError]:
    out: list[FieldError] = []
    if isinstance(value, dict):
        for key, item in value.items():
            # The common key (not empty, short, no leading "_") needs no closer look.
            bad = (
                None
                if key and len(key) <= _MAX_KEY_CHARS and key[0] != "_"
                else _key_problem(path, key)
            )
            if bad is None:
                out += _problems(item, f"{path}.{key}", depth + 1, False)
            else:
                out.append(bad)
        return out
    if in_array:
        return [FieldError(path, value, "no array directly inside an array (Firestore)")]
    for i, item in enumerate(value):
        out += _problems(item, f"{path}.{i}", depth + 1, True)
    return out


def storable_problems(value: Any, path: str) -> list[FieldError]:
    """What Firestore would refuse in `value` stored at `path` (or we do: non-finite numbers),
    nesting counted from 1."""
    return _problems(value, path, 1, False)
