"""`docs/data-model.md`, generated from the pydantic models (`shared/models`) and the settings.

    python -m ops.datamodel            # rewrite docs/data-model.md
    python -m ops.datamodel --check    # exit 1 when the file is stale (a unit test does the same)

Every documented collection gets its model's docstring and one row per field: the stored name,
its type in words (with the model's constraints), whether it is required, and the field's
docstring. Collections without a model (written by the functions only) are listed with the
setting that names them. Nothing here is written by hand: edit the models, then regenerate.
"""

from __future__ import annotations

import argparse
import enum
import sys
import types
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin, get_type_hints

import annotated_types as at
from pydantic import BaseModel, JsonValue
from pydantic.fields import FieldInfo

from shared import names
from shared import types as st
from shared.models import (
    Action,
    Customer,
    Email,
    Feature,
    FeatureFlags,
    LanguageCode,
    ModelName,
    Scene,
    ShortText,
    TtsVoice,
    UsageEvent,
    UsageRecord,
)
from shared.settings import Settings

ROOT: Final = Path(__file__).resolve().parents[1]
TARGET: Final = ROOT / "docs" / "data-model.md"

DOCUMENTS: Final[tuple[tuple[str, str, type[BaseModel]], ...]] = (
    (names.CUSTOMERS, "customer id", Customer),
    (names.SCENES, "scene id", Scene),
    (names.FEATURE_FLAGS, "customer id, or `_global` for the kill switches", FeatureFlags),
    (names.USAGE_TRACKING, "record id (from the event; `shared.ids`)", UsageRecord),
)
"""Collections with a model: name, what the document id is, model."""

MESSAGES: Final[tuple[tuple[str, type[BaseModel]], ...]] = ((names.USAGE_EVENTS_TOPIC, UsageEvent),)
"""Pub/Sub message bodies with a model: topic, model."""

NAMED: Final[tuple[tuple[Any, str], ...]] = (
    (st.UtcDatetime, "timestamp (RFC 3339 with a time zone, stored in UTC)"),
    (st.DocumentId, "document id (no `/`, not `__...__`, at most 1500 bytes)"),
    (st.NonNegInt, "integer >= 0"),
    (st.EventCount, "integer from 0 to 10^12"),
    (st.NonNegFloat, "number >= 0 (finite)"),
    (st.UnitFloat, "number from 0 to 1"),
    (st.StrictBool, "boolean"),
    (st.Month, "month `YYYY-MM`"),
    (Email, "email address"),
    (LanguageCode, "BCP 47 language code (`en-US`)"),
    (TtsVoice, "Cloud TTS voice id (`en-US-Neural2-D`)"),
    (ModelName, "lowercase name (`[a-z0-9_.-]`, at most 64 characters)"),
    (Action, "action name (`scene_generated`; `[a-z0-9_.-]`)"),
    (ShortText, "text, at most 1024 characters"),
    (Feature, "feature name (a boolean field of `feature_flags`)"),
)
"""The shared field types, said by name rather than unfolded (compared by equality)."""

_SIMPLE: Final[dict[Any, str]] = {
    str: "text",
    int: "integer",
    float: "number",
    bool: "boolean",
    datetime: "timestamp",
    Any: "any value",
}


def type_text(  # noqa: PLR0911 - one return per kind of type
    annotation: Any, metadata: Iterable[Any] = ()
) -> str:
    """A field type in words: `integer >= 1`, `map of feature to boolean`, `one of a, b`."""
    for alias, text in NAMED:
        if annotation == alias and not list(metadata):
            return text
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        return type_text(base, [*meta, *metadata])
    if origin in (Union, types.UnionType):
        parts = [type_text(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(parts) + _constraints(metadata)
    if origin is Literal:
        return " or ".join(f"`{v}`" for v in get_args(annotation))
    if origin is dict:
        key, value = get_args(annotation)
        return f"map of {type_text(key)} to {type_text(value)}"
    if origin is list:
        return f"list of {type_text(get_args(annotation)[0])}"
    if annotation == JsonValue:
        return "any JSON value"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    base = _SIMPLE.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = _constraints(metadata)
    return f"{base},{bounds}" if bounds and annotation is str else base + bounds


def _constraints(metadata: Iterable[Any]) -> str:
    """The bounds of annotated-types metadata (pydantic keeps `Field(ge=...)` as these)."""
    said = []
    for item in metadata:
        inner = item.metadata if isinstance(item, FieldInfo) else [item]
        for rule in inner:
            if isinstance(rule, at.Ge):
                said.append(f">= {rule.ge}")
            elif isinstance(rule, at.Gt):
                said.append(f"> {rule.gt}")
            elif isinstance(rule, at.Le):
                said.append(f"<= {rule.le}")
            elif isinstance(rule, at.Lt):
                said.append(f"< {rule.lt}")
            elif isinstance(rule, at.MinLen) and rule.min_length > 0:
                said.append(f"length >= {rule.min_length}")
            elif isinstance(rule, at.MaxLen):
                said.append(f"length <= {rule.max_length}")
            elif getattr(rule, "pattern", None):
                said.append(f"matching `{rule.pattern}`")
    return (" " + ", ".join(said)) if said else ""


def _cell(text: str | None) -> str:
    """One Markdown table cell: one line, pipes escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def field_rows(model: type[BaseModel]) -> list[str]:
    """The model's fields as Markdown table rows, in declaration order."""
    rows = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    # The annotations as written (pydantic's FieldInfo unfolds a shared alias such as
    # DocumentId into its parts): what lets NAMED say "document id".
    hints = get_type_hints(model, include_extras=True)
    for name, info in model.model_fields.items():
        stored = info.alias or name
        kind = type_text(hints[name])
        required = "yes" if info.is_required() else "no"
        rows.append(f"| `{stored}` | {_cell(kind)} | {required} | {_cell(info.description)} |")
    return rows


def _other_collections() -> list[str]:
    documented = {name for name, _, _ in DOCUMENTS}
    rows = ["| collection | setting | description |", "| --- | --- | --- |"]
    for field_name, info in Settings.model_fields.items():
        if not field_name.endswith("_collection") or info.default in documented:
            continue
        setting = info.validation_alias
        rows.append(f"| `{info.default}` | `{setting}` | {_cell(info.description)} |")
    return rows


def render() -> str:
    """The whole of docs/data-model.md."""
    out = [
        "# Data model",
        "",
        "<!-- Generated by `python -m ops.datamodel` from shared/models and shared/settings.py:",
        "     edit the models' docstrings, then regenerate (a unit test fails when stale). -->",
        "",
        "Every Firestore document the suite validates, field by field, from its pydantic model",
        "(`shared/models`). Models refuse unknown fields, and numbers and booleans are strict",
        '(`"45"` is not 45). Collection names are the defaults; each can be renamed by its',
        "setting (`shared/settings.py`).",
        "",
        "| collection | document id | model |",
        "| --- | --- | --- |",
    ]
    for collection, doc_id, model in DOCUMENTS:
        out.append(f"| [`{collection}`](#{collection}) | {doc_id} | `{model.__name__}` |")
    for collection, _, model in DOCUMENTS:
        out += ["", f"## {collection}", "", f"`{model.__name__}`: {_doc(model)}", ""]
        out += field_rows(model)
    for topic, model in MESSAGES:
        out += ["", f"## Message on `{topic}`", "", f"`{model.__name__}`: {_doc(model)}", ""]
        out += field_rows(model)
    out += [
        "",
        "## Collections without a model",
        "",
        "Written and read by the functions and the CLI only (see docs/counters.md, docs/reset.md,",
        "docs/dead-letters.md); not validated by a document model.",
        "",
        *_other_collections(),
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the file, or with `--check` say whether it is current (exit 1 when stale)."""
    parser = argparse.ArgumentParser(prog="python -m ops.datamodel", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text("utf-8") if TARGET.exists() else ""
        if current != text:
            sys.stderr.write(f"{TARGET.name} is stale: run python -m ops.datamodel\n")
            return 1
        return 0
    TARGET.write_text(text, "utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
