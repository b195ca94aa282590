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
- The usage record is stored as the usage function stores one (`stored_example`): with the
  fields the fold finds and sums it by, and `recorded_at` = the server's time, so the fold
  counts it like any other record.
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


def stored_example(collection: str, model: BaseModel, buckets: int) -> dict[str, Any]:
    """An example as Firestore stores it; a usage record with the ledger's fields
    (`shared.counters.record_fields`) and its commit time, as the usage function writes one."""
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

    from shared.counters import RECORDED_AT_FIELD, record_fields  # noqa: PLC0415
    from shared.firestore_values import to_firestore  # noqa: PLC0415
    from shared.pricing import to_decimal  # noqa: PLC0415
    from shared.times import month_of  # noqa: PLC0415

    data: dict[str, Any] = to_firestore(model)
    if isinstance(model, UsageRecord):
        amount = to_decimal(model.estimated_cost)
        month = month_of(model.timestamp)
        data.update(record_fields(model.customer_id, month, model.action, amount, buckets))
        data[RECORDED_AT_FIELD] = SERVER_TIMESTAMP
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
