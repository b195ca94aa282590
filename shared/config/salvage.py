"""Trusting stored documents: validate, replace bad top-level fields by defaults, say which."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel

from shared import logs, names
from shared.config.answers import DocProblem
from shared.errors import FieldError
from shared.models import CONFIG_MODELS, document_errors
from shared.tiers import DEFAULT_TIER

_MODELS: Final[dict[str, type[BaseModel]]] = dict(CONFIG_MODELS)
# What a required field that is missing or bad falls back to.
_REQUIRED_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    names.CUSTOMERS: {"schema_version": 1, "bundle_tier": DEFAULT_TIER.value},
    names.SCENES: {"schema_version": 1},
    names.FEATURE_FLAGS: {"schema_version": 1},
}
# Each round drops or defaults every field the previous one found bad; the document-level rule
# (contract order) only shows once the fields pass, so two rounds settle any document.
_ROUNDS: Final = 4


def salvage(
    kind: str, data: Mapping[str, Any], distrust: Sequence[str] = ()
) -> tuple[BaseModel | None, list[FieldError]]:
    """Validate a document; replace bad top-level fields by their defaults (drop or required
    default) and list them. None when even that does not give a valid document."""
    model = _MODELS[kind]
    required = _REQUIRED_DEFAULTS[kind]
    clean = dict(data)
    problems: list[FieldError] = []
    for name in distrust:
        top = name.split(".")[0]
        if top in clean:
            problems.append(FieldError(top, clean[top], "marked invalid by the writer's trigger"))
            clean.pop(top)
    for _ in range(_ROUNDS):
        errors = document_errors(model, clean)
        if not errors:
            return model.model_validate(clean), problems
        problems.extend(errors)
        for err in errors:
            top = err.field.split(".")[0]
            if top == "(document)":
                # The only document-level rule is contract_end >= contract_start.
                top = "contract_end"
            if top in required:
                clean[top] = required[top]
            elif top in clean:
                clean.pop(top)
            else:
                return None, problems
    return None, problems


def trust(
    kind: str, collection: str, doc_id: str, data: Mapping[str, Any], distrust: Sequence[str] = ()
) -> tuple[BaseModel | None, tuple[DocProblem, ...]]:
    """`salvage` a document read from `collection` and log one WARNING naming what was not
    trusted (nothing when the document is valid)."""
    model, errors = salvage(kind, data, distrust)
    problems = tuple(DocProblem(collection, doc_id, e) for e in errors)
    if problems:
        logs.warning(
            f"untrusted fields in {collection}/{doc_id}: "
            + "; ".join(str(p.error) for p in problems)
            + ("; defaults used" if model is not None else "; whole document ignored"),
            collection=collection,
            document=doc_id,
            errors=[p.error.as_dict() for p in problems],
            component="config_service",
        )
    return model, problems


__all__ = ["salvage", "trust"]
