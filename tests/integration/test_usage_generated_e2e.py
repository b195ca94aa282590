"""A fixed sample of the property tests' generated usage messages, end to end on the local suite.

The same generator as tests/unit/test_usage_entry_properties.py (`tests/usage_cases.py`), a
fixed seed: 40 bodies, taken in turn from each predicted outcome (valid events with extreme
values, and one or several defects each), are published on `usage-events` through the real
Pub/Sub emulator, pushed to `on-usage-event` in the functions host, written to the real
Firestore emulator. Each must end exactly as predicted: one record in `usage_tracking`, which
the fold counts once in the summary of its own month, or one document in `usage_rejections` of
the predicted kind naming the field; and the host answered no 5xx.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.ids import message_doc_id
from shared.times import month_of
from tests.integration.test_usage_local_suite import fold_until, summary_doc
from tests.usage_cases import RECORDED, Case, body_cases

SAMPLE = 40
DRAWN = 400
WAIT_SECONDS = 180


def draw_sample(run: str, now: datetime) -> list[tuple[str, Case]]:
    """SAMPLE generated cases (fixed seed), each for its own customer `g{run}_{n:03d}`: drawn
    DRAWN times, distinct shapes kept, then taken in turn from each predicted outcome."""
    drawn: list[tuple[str, Case]] = []

    @settings(
        max_examples=DRAWN,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def collect(data: st.DataObject) -> None:
        customer = f"g{run}_{len(drawn):03d}"
        drawn.append((customer, data.draw(body_cases(customer, now))))

    collect()
    by_outcome: dict[str, list[tuple[str, Case]]] = {}
    shapes: set[str] = set()
    for customer, case in drawn:
        shape = case.body.decode(errors="replace") if case.expected == RECORDED else case.label
        if shape not in shapes:
            shapes.add(shape)
            by_outcome.setdefault(case.expected, []).append((customer, case))
    sample: list[tuple[str, Case]] = []
    while len(sample) < SAMPLE and any(by_outcome.values()):
        for cases in by_outcome.values():
            if cases and len(sample) < SAMPLE:
                sample.append(cases.pop(0))
    return sample


def _outcome(suite: Any, customer: str, message_id: str) -> tuple[list[Any], Any]:
    settings_ = suite.settings
    records = [
        snap.to_dict()
        for snap in suite.firestore.collection(settings_.usage_tracking_collection)
        .where(filter=FieldFilter("customer_id", "==", customer))
        .stream(timeout=10)
    ]
    rejection = (
        suite.firestore.collection(settings_.usage_rejections_collection)
        .document(message_doc_id(message_id))
        .get(timeout=10)
    )
    return records, rejection.to_dict() if rejection.exists else None


def test_a_generated_sample_ends_recorded_or_rejected_as_predicted(local_suite: Any) -> None:
    suite = local_suite
    run = uuid.uuid4().hex[:8]
    sample = draw_sample(run, datetime.now(UTC))
    assert len(sample) == SAMPLE
    kinds = {case.expected for _, case in sample}
    assert RECORDED in kinds
    assert len(kinds) >= 6, kinds  # a sample, not one shape 40 times
    customers = suite.firestore.collection(suite.settings.customers_collection)
    for customer, _ in sample:
        customers.document(customer).set({"schema_version": 1, "bundle_tier": "pro"})
    mark = suite.mark()
    published = [
        suite.publish(suite.settings.usage_events_topic, case.body, case=str(n))
        for n, (_, case) in enumerate(sample)
    ]

    outcomes: dict[int, tuple[list[Any], Any]] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    while len(outcomes) < SAMPLE and time.monotonic() < deadline:
        for n, (customer, _) in enumerate(sample):
            if n not in outcomes:
                records, rejection = _outcome(suite, customer, published[n])
                if records or rejection:
                    outcomes[n] = (records, rejection)
        time.sleep(0.5)
    time.sleep(1)  # a late second record or rejection would show now
    # The fold counts each record in the summary of its own month, however old that month.
    recorded = {
        sample[n][0]: month_of(records[0]["timestamp"])
        for n, (records, _) in outcomes.items()
        if len(records) == 1
    }
    assert recorded, "no generated event was recorded"

    def counted() -> bool:
        return all(summary_doc(suite, c, m).get("records", 0) >= 1 for c, m in recorded.items())

    fold_until(suite, counted)
    wrong = []
    for n, (customer, case) in enumerate(sample):
        records, rejection = _outcome(suite, customer, published[n])
        got = "nothing"
        if case.expected == RECORDED and rejection is None and len(records) == 1:
            month = month_of(records[0]["timestamp"])
            folded = summary_doc(suite, customer, month).get("records", 0)
            if records[0]["message_id"] == published[n] and folded == 1:
                continue
            got = f"record counted {folded} times in {month}'s summary"
        elif rejection is not None and not records:
            named = [e["field"] for e in rejection["errors"]]
            if rejection["kind"] == case.expected and all(
                any(f == w or f.startswith(w + ".") for f in named) for w in case.fields
            ):
                continue
            got = f"rejection {rejection['kind']}: {rejection['reason'][:200]}"
        elif records or rejection:
            got = f"{len(records)} records, rejection {rejection and rejection['kind']}"
        wrong.append(f"#{n} {case.label[:60]!r}: expected {case.expected}, got {got}")
    assert wrong == [], "\n".join(wrong)
    answers = suite.invocations(since=mark, function="on-usage-event")
    assert len(answers) >= SAMPLE
    assert [a for a in answers if a["status"] >= 500] == []
