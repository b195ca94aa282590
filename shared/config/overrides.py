"""The override file (`BLUEPRINT_CONFIG_FILE`): read once, checked, merged field by field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.config.ports import KINDS
from shared.errors import ConfigurationError

Overrides = dict[str, dict[str, dict[str, Any]]]
"""`{collection kind: {document id: {field: value}}}`."""


def load_override_file(path: str | Path) -> Overrides:
    """Read the override file: `{"customers": {id: {field: value}}, "scenes": ..., ...}`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            f"BLUEPRINT_CONFIG_FILE={str(path)!r}: cannot read: {exc.strerror}"
        ) from None
    except ValueError as exc:
        raise ConfigurationError(f"BLUEPRINT_CONFIG_FILE={str(path)!r}: not JSON: {exc}") from None
    return check_overrides(data, f"BLUEPRINT_CONFIG_FILE={str(path)!r}")


def check_overrides(data: Any, origin: str = "overrides") -> Overrides:
    """Check the shape `{collection: {document id: {field: value}}}` of an override mapping."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"{origin}: expected a JSON object of collections")
    out: Overrides = {}
    for collection, docs in data.items():
        if collection.startswith("_"):
            continue  # `_comment` and friends
        if collection not in KINDS:
            raise ConfigurationError(
                f"{origin}: unknown collection {collection!r}; expected one of {list(KINDS)}"
            )
        if not isinstance(docs, dict) or not all(isinstance(d, dict) for d in docs.values()):
            raise ConfigurationError(
                f"{origin}: {collection} must map document ids to objects of fields"
            )
        out[collection] = {str(k): dict(v) for k, v in docs.items()}
    return out


def apply_override(
    data: Mapping[str, Any] | None, override: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """`data` with the override's fields on top (a None value removes the field); a document
    absent from Firestore (`data` None) is the override alone."""
    if override is None:
        return data
    merged = dict(data or {})
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)  # null in the file removes the field
        else:
            merged[key] = value
    return merged


__all__ = ["Overrides", "apply_override", "check_overrides", "load_override_file"]
