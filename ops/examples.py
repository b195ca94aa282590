"""schema.md's example documents, kept in the package as data (`ops/data/examples/`)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final

from pydantic import BaseModel

from shared import names
from shared.models import Customer, FeatureFlags, Scene, UsageRecord, validate

EXAMPLE_FILES: Final[dict[str, tuple[str, type[BaseModel]]]] = {
    names.CUSTOMERS: ("customers.json", Customer),
    names.SCENES: ("scenes.json", Scene),
    names.FEATURE_FLAGS: ("feature_flags.json", FeatureFlags),
    names.USAGE_TRACKING: ("usage_tracking.json", UsageRecord),
}


def raw_examples(collection: str) -> dict[str, dict[str, Any]]:
    """The example documents of a collection as parsed JSON, by document id."""
    filename, _ = EXAMPLE_FILES[collection]
    text = resources.files("ops").joinpath(f"data/examples/{filename}").read_text("utf-8")
    data: dict[str, dict[str, Any]] = json.loads(text)
    return data


def example_models() -> dict[str, dict[str, BaseModel]]:
    """Every example document validated through its model: collection -> id -> model."""
    return {
        collection: {
            doc_id: validate(model, doc, kind=f"{collection}/{doc_id}")
            for doc_id, doc in raw_examples(collection).items()
        }
        for collection, (_, model) in EXAMPLE_FILES.items()
    }
