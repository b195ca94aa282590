"""`blueprint usage recount` through the real CLI on the emulators: after a record is deleted by
hand, a dry run reports the difference and changes nothing; the recount corrects the summary
and the customer's lifetime total; a second recount finds nothing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from functions.fold.adapters import FirestoreFoldRepository, PubSubAlertPublisher
from functions.fold.service import FoldConfig, run_fold
from functions.usage.entry import build_service
from shared.counters import counter_doc_id
from shared.firestore_values import server_timestamp
from shared.settings import load_settings
from shared.times import month_of
from tests.cli_support import Case, exit_code_test, run
from tests.usage_support import event_body, message

pytestmark = pytest.mark.usefixtures("cli_logs")
THIS = month_of(datetime.now(UTC))

CASES: list[Case] = [
    (["usage", "recount"], 2, "--month"),
    (["usage", "recount", "--month", "2026-13"], 2, "expected YYYY-MM"),
]

test_exit_codes = exit_code_test(CASES)


def summary(db: Any, cid: str) -> dict[str, Any]:
    return db.collection("usage_counters").document(counter_doc_id(cid, THIS)).get().to_dict()


def test_a_record_deleted_by_hand_is_found_and_corrected(
    clean_firestore: Emulators,
    firestore_client: Any,
    pubsub: PubSubHelper,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = firestore_client
    settings = load_settings(
        {**clean_firestore.env, "GOOGLE_CLOUD_PROJECT": clean_firestore.project}
    )
    pubsub.create_topic(settings.quota_alerts_topic)
    for cid in ("keep", "lose"):
        db.collection("customers").document(cid).set(
            {"schema_version": 1, "bundle_tier": "pro", "quota_period": THIS}
        )
    usage = build_service(settings, db)
    now = datetime.now(UTC)
    stamp = now.isoformat().replace("+00:00", "Z")
    for n in range(3):
        for cid in ("keep", "lose"):
            body = event_body(customer_id=cid, event_id=f"{cid}-{n}", timestamp=stamp, details=None)
            usage.handle(message(body, f"m-{cid}-{n}"), now)
    time.sleep(1.2)
    run_fold(
        FirestoreFoldRepository(settings, db),
        PubSubAlertPublisher(settings, pubsub.publisher),
        now=now,
        run_id="fold",
        config=FoldConfig(lag=timedelta(seconds=1)),
        server_time=server_timestamp(),
    )
    assert summary(db, "lose")["episodes_generated"] == 300
    gone = next(
        s for s in db.collection("usage_tracking").stream() if s.get("customer_id") == "lose"
    )
    gone.reference.delete()

    code, out, err = run(["usage", "recount", "--month", THIS, "--dry-run", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert (report["recounted"], report["differ"]) == (2, 1)
    (lost,) = [c for c in report["customers"] if c["differs"]]
    assert (lost["customer_id"], lost["summary"]["records"], lost["records"]["records"]) == (
        "lose",
        3,
        2,
    )
    assert summary(db, "lose")["records"] == 3  # a dry run changes nothing

    code, out, err = run(["usage", "recount", "--month", THIS, "--customer", "lose"], capsys)
    assert code == 0, err
    assert "corrected 1" in out
    assert (summary(db, "lose")["records"], summary(db, "lose")["episodes_generated"]) == (2, 200)
    assert summary(db, "lose")["closed"] is False  # the month has not ended
    customer = db.collection("customers").document("lose").get().to_dict()
    assert customer["total_episodes_generated"] == 200

    code, out, err = run(["usage", "recount", "--month", THIS], capsys)
    assert code == 0, err
    assert "recounted 2 customer-months of every customer; corrected 0" in out
