"""The specification's example documents, kept in the package as data (`ops/data/examples/`):
what `make run` and `blueprint seed-demo` load, the demo story.

Every value is the specification's but one, so that the demo tells one consistent story:
- `lab_001.contract_end` is 2099-01-01 (the specification's 2026-01-01 has passed: the demo
  customer would be billed on an ended contract); no test relies on the original date.
- `lab_001.scenes_generated_this_month` stays 45 with no record behind it: loaded this month, it
  is the count the month started with (the legacy rule: a document without bookkeeping counts
  the month of its last write, and the fold adds records to it). `blueprint usage report` says
  so: "started the month at 45 (counted before the records)". The tests of the models, the
  reset and the fold rely on 45.
"""

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
