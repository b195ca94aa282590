"""`blueprint usage replay` on the real emulators: dead letters and rejections delivered again
through the usage service as deployed, exactly once, through the real CLI.

Dead letters are stored by the real recorder (`functions.deadletter`) from a message carrying
Pub/Sub's `CloudPubSubDeadLetterSource*` attributes; rejections by the real usage service;
the fold is the real one (`run_fold` on Firestore and the Pub/Sub emulator).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.emulators import Emulators, free_port
from devstack.pubsub import PubSubHelper
from functions.deadletter.adapters import FirestoreDeadLetterStore
from functions.deadletter.ports import Source
from functions.deadletter.service import DeadLetterService, dead_letter_of, doc_id_of
from functions.edge.pubsub import Message
from functions.fold.adapters import FirestoreFoldRepository, PubSubAlertPublisher
from functions.fold.service import FoldConfig, run_fold
from functions.usage.entry import build_service
from functions.usage.ports import Outcome as ServiceOutcome
from ops.cli import main
from ops.console import reads
from shared import logs
from shared.counters import counter_doc_id
from shared.firestore_values import server_timestamp
from shared.ids import message_doc_id, usage_record_id
from shared.models import UsageEvent
from shared.settings import Settings, load_settings
from shared.times import month_bounds, month_of
from tests.usage_support import sum_records

NOW = datetime.now(UTC).replace(microsecond=0)
MONTH = month_of(NOW)
SUBSCRIPTION = "on-usage-event-push"


@pytest.fixture(autouse=True)
def _fresh_log_handler() -> Iterator[None]:
    yield
    logs.get_logger().handlers.clear()


@pytest.fixture
def settings(clean_firestore: Emulators) -> Settings:
    return load_settings({**clean_firestore.env, "GOOGLE_CLOUD_PROJECT": clean_firestore.project})


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(["usage", "replay", *argv], out=out)
    return code, out.getvalue(), capsys.readouterr().err


def cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = cli([*argv, "--json"], capsys)
    assert code == 0, err
    assert out.count("\n") == 1, out
    result: dict[str, Any] = json.loads(out)
    return result


def body(cid: str, event_id: str, **over: Any) -> bytes:
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id,
        "customer_id": cid,
        "scene_id": "scene_1",
        "action": "scene_generated",
        "timestamp": NOW.isoformat(),
        "episodes_generated": 5,
        "compute_minutes": 1.5,
    }
    event.update(over)
    return json.dumps(event).encode()


def record_id(data: bytes) -> str:
    return usage_record_id(UsageEvent.model_validate_json(data))


def customer(client: Any, cid: str, **fields: Any) -> None:
    client.collection("customers").document(cid).set(
        {
            "schema_version": 1,
            "bundle_tier": "pro",
            "monthly_scene_quota": -1,
            "quota_period": MONTH,
            **fields,
        }
    )


def dead_letter(settings: Settings, client: Any, data: bytes, n: int = 0) -> str:
    """Store `data` as Pub/Sub's dead letter of the usage subscription, as the recorder does."""
    published = f"{NOW.strftime('%Y-%m-%dT%H:%M:%S')}.{n:03d}Z"
    attributes = {
        "origin": "test",
        "CloudPubSubDeadLetterSourceSubscription": SUBSCRIPTION,
        "CloudPubSubDeadLetterSourceSubscriptionProject": settings.project_id,
        "CloudPubSubDeadLetterSourceDeliveryCount": "10",
        "CloudPubSubDeadLetterSourceTopicPublishTime": published,
    }
    message = Message(f"dl-{uuid.uuid4().hex[:8]}", data, attributes, published)
    letter = dead_letter_of(message, Source.USAGE)
    service = DeadLetterService(FirestoreDeadLetterStore(settings, client))
    service.handle(letter, NOW)
    return doc_id_of(letter)


def doc(client: Any, collection: str, doc_id: str) -> dict[str, Any]:
    snap = client.collection(collection).document(doc_id).get()
    assert snap.exists, f"{collection}/{doc_id} missing"
    return snap.to_dict() or {}


def everything(client: Any) -> dict[str, Any]:
    """Every document of the database with its update time (any write changes it)."""
    found: dict[str, Any] = {}

    def walk(collections: Any) -> None:
        for collection in collections:
            for snap in collection.stream():
                found[snap.reference.path] = (snap.update_time, snap.to_dict())
                walk(snap.reference.collections())

    walk(client.collections())
    return found


def fold(settings: Settings, client: Any, pubsub: PubSubHelper, run_id: str) -> list[Any]:
    """One fold of every bucket; returns the alerts it published."""
    pubsub.create_topic(settings.quota_alerts_topic)
    subscription = pubsub.create_subscription(settings.quota_alerts_topic)
    config = FoldConfig(lag=timedelta(seconds=1))
    time.sleep(config.lag.total_seconds() + 0.5)  # the records written so far count now
    run_fold(
        FirestoreFoldRepository(settings, client),
        PubSubAlertPublisher(settings, pubsub.publisher),
        now=NOW + timedelta(seconds=5),
        run_id=run_id,
        config=config,
        server_time=server_timestamp(),
    )
    return [json.loads(m.data) for m in pubsub.drain(subscription)]


def test_a_dead_letter_replayed_is_recorded_and_counted_once_and_a_second_replay_is_a_duplicate(
    settings: Settings,
    firestore_client: Any,
    pubsub: PubSubHelper,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = firestore_client
    customer(db, "dl_cust", monthly_scene_quota=2)
    first, second = body("dl_cust", "e1"), body("dl_cust", "e2", episodes_generated=7)
    dl_first = dead_letter(settings, db, first, 1)
    dl_second = dead_letter(settings, db, second, 2)

    later = doc(db, "usage_rejections", dl_second)["rejected_at"]
    assert doc(db, "usage_rejections", dl_first)["rejected_at"] < later
    since = cli_json(["--since", later.rfc3339(), "--dry-run"], capsys)
    assert [i["id"] for i in since["items"]] == [dl_second]

    result = cli_json(["--page-size", "1"], capsys)  # default: --kind dead_letter; 2 pages
    assert result["counts"] == {
        "recorded": 2,
        "still_rejected": 0,
        "duplicate": 0,
        "skipped": 0,
        "would_replay": 0,
    }
    assert [(i["id"], i["record_id"]) for i in result["items"]] == [
        (dl_first, record_id(first)),
        (dl_second, record_id(second)),
    ]  # oldest first
    record = doc(db, "usage_tracking", record_id(first))
    assert record["event_id"] == "e1"
    assert record["message_id"] == dl_first  # the original id is not in a dead letter
    marked = doc(db, "usage_rejections", dl_first)
    assert marked["kind"] == "dead_letter"  # the document stays what it was
    assert marked["replay_outcome"] == "recorded"
    assert marked["replay_record_id"] == record_id(first)
    assert marked["replayed_at"] is not None
    assert marked["replay_count"] == 1

    alerts = fold(settings, db, pubsub, "run-1")
    counts = doc(db, "usage_counters", counter_doc_id("dl_cust", MONTH))
    assert (counts["records"], counts["scenes_total"], counts["episodes_generated"]) == (2, 2, 12)
    cust = doc(db, "customers", "dl_cust")
    assert (cust["scenes_generated_this_month"], cust["total_episodes_generated"]) == (2, 12)
    assert sorted(a["alert_id"] for a in alerts) == [
        f"dl_cust_{MONTH}_100",
        f"dl_cust_{MONTH}_80",
    ]

    # Replayed before: skipped; with --again: a duplicate, nothing counted again.
    skipped = cli_json([], capsys)
    assert skipped["counts"]["skipped"] == 2
    assert all("replayed before (recorded)" in i["reason"] for i in skipped["items"])
    again = cli_json(["--again"], capsys)
    assert again["counts"]["duplicate"] == 2
    assert [i["record_id"] for i in again["items"]] == [record_id(first), record_id(second)]
    assert doc(db, "usage_rejections", dl_first)["replay_count"] == 2
    assert doc(db, "usage_rejections", dl_first)["replay_outcome"] == "duplicate"
    assert fold(settings, db, pubsub, "run-2") == []  # no alert twice
    assert sum_records(db, "dl_cust", MONTH).records == 2
    counts = doc(db, "usage_counters", counter_doc_id("dl_cust", MONTH))
    assert (counts["records"], counts["scenes_total"], counts["episodes_generated"]) == (2, 2, 12)
    assert len(list(db.collection("usage_tracking").stream())) == 2


def test_an_event_recorded_before_it_was_dead_lettered_replays_as_a_duplicate(
    settings: Settings, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    db = firestore_client
    customer(db, "both")
    data = body("both", "e1")
    delivered = Message("m-original", data, {}, NOW.isoformat())
    assert build_service(settings, db).handle(delivered, NOW).outcome is ServiceOutcome.RECORDED
    dl = dead_letter(settings, db, data)  # the answer was lost; Pub/Sub gave up on it

    result = cli_json([], capsys)
    assert result["counts"]["duplicate"] == 1
    assert result["items"][0]["record_id"] == record_id(data)
    assert doc(db, "usage_tracking", record_id(data))["message_id"] == "m-original"
    assert sum_records(db, "both", MONTH).records == 1
    assert doc(db, "usage_rejections", dl)["replay_outcome"] == "duplicate"


def test_unknown_customer_replayed_once_the_customer_exists_keeps_its_message_id(
    settings: Settings, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    db = firestore_client
    service = build_service(settings, db)
    lab = Message("m-lab", body("lab_001", "e1"), {"origin": "x"}, NOW.isoformat())
    ghost = Message("m-ghost", body("ghost", "e1"), {}, NOW.isoformat())
    for message in (lab, ghost):
        assert service.handle(message, NOW).outcome is ServiceOutcome.REJECTED
    assert main(["seed-demo"], out=io.StringIO()) == 0  # creates customers/lab_001
    capsys.readouterr()

    dry = cli_json(["--kind", "unknown_customer", "--customer", "lab_001", "--dry-run"], capsys)
    assert dry["counts"]["would_replay"] == 1
    result = cli_json(["--kind", "unknown_customer", "--customer", "lab_001"], capsys)
    assert result["counts"]["recorded"] == 1
    [item] = result["items"]
    assert (item["id"], item["old_kind"]) == (message_doc_id("m-lab"), "unknown_customer")
    record = doc(db, "usage_tracking", record_id(lab.data))
    assert (record["customer_id"], record["message_id"]) == ("lab_001", "m-lab")
    assert sum_records(db, "lab_001", MONTH).records == 1
    assert "replayed_at" not in doc(db, "usage_rejections", message_doc_id("m-ghost"))

    # Every unknown_customer: lab_001's was replayed before; ghost is still unknown, and its
    # rejection stays the one document it was (no second one).
    every = cli_json(["--kind", "unknown_customer"], capsys)
    outcomes = {i["customer_id"]: i for i in every["items"]}
    assert outcomes["lab_001"]["outcome"] == "skipped"
    assert outcomes["ghost"]["outcome"] == "still_rejected"
    assert outcomes["ghost"]["kind"] == "unknown_customer"
    assert "customer_id='ghost'" in outcomes["ghost"]["reason"]
    assert outcomes["ghost"]["rejection_id"] == message_doc_id("m-ghost")
    assert len(list(db.collection("usage_rejections").stream())) == 2
    marked = doc(db, "usage_rejections", message_doc_id("m-ghost"))
    assert (marked["replay_outcome"], marked["replay_kind"]) == (
        "still_rejected",
        "unknown_customer",
    )


def test_still_invalid_is_still_rejected_and_a_dead_letter_rejected_again_is_stored_once(
    settings: Settings, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    db = firestore_client
    customer(db, "inv")
    bad = Message("m-bad", body("inv", "e1", episodes_generated=-1), {}, NOW.isoformat())
    assert build_service(settings, db).handle(bad, NOW).outcome is ServiceOutcome.REJECTED
    dl = dead_letter(settings, db, body("nobody_yet", "e9"))

    result = cli_json(["--kind", "invalid_event"], capsys)
    [item] = result["items"]
    assert (item["outcome"], item["kind"]) == ("still_rejected", "invalid_event")
    assert "episodes_generated" in item["reason"]
    assert item["rejection_id"] == message_doc_id("m-bad")

    # A dead letter whose event is refused now: its rejection is stored under its usual id
    # (the message id standing in is the dead letter's document id), once, replays or not.
    first = cli_json([], capsys)
    [item] = first["items"]
    assert (item["outcome"], item["kind"]) == ("still_rejected", "unknown_customer")
    assert item["rejection_id"] == message_doc_id(dl)
    stored = doc(db, "usage_rejections", message_doc_id(dl))
    assert (stored["kind"], stored["message_id"]) == ("unknown_customer", dl)
    assert doc(db, "usage_rejections", dl)["replay_rejection_id"] == message_doc_id(dl)
    again = cli_json(["--again"], capsys)
    assert again["items"][0]["rejection_id"] == message_doc_id(dl)
    assert len(list(db.collection("usage_rejections").stream())) == 3
    assert list(db.collection("usage_tracking").stream()) == []

    # Once the customer exists, the new rejection replays into a record.
    customer(db, "nobody_yet")
    recorded = cli_json(["--kind", "unknown_customer"], capsys)
    assert recorded["counts"]["recorded"] == 1
    assert doc(db, "usage_tracking", recorded["items"][0]["record_id"])["message_id"] == dl


def test_a_dry_run_writes_nothing_and_a_truncated_payload_is_skipped(
    settings: Settings, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    db = firestore_client
    customer(db, "dry")
    dead_letter(settings, db, body("dry", "e1"))
    huge = Message("m-huge", body("dry", "e2", details={"x": "y" * 70_000}), {}, NOW.isoformat())
    assert build_service(settings, db).handle(huge, NOW).outcome is ServiceOutcome.REJECTED
    before = everything(db)

    dry = cli_json(["--dry-run"], capsys)
    assert dry["dry_run"] is True
    assert dry["counts"]["would_replay"] == 1
    code, out, err = cli(["--dry-run"], capsys)  # the table too
    assert code == 0, err
    assert "would_replay" in out
    assert "would_replay 1, skipped 0" in out
    assert everything(db) == before

    oversized = cli_json(["--kind", "oversized"], capsys)
    [item] = oversized["items"]
    assert item["outcome"] == "skipped"
    assert "payload truncated" in item["reason"]
    assert everything(db) == before  # a skipped document is not marked


def test_before_replays_only_what_was_rejected_before_it_as_a_past_months_console_command(
    settings: Settings, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    db = firestore_client
    customer(db, "span")
    first, second = body("span", "e1"), body("span", "e2")
    earlier = dead_letter(settings, db, first, 1)
    later = dead_letter(settings, db, second, 2)
    this_month = month_bounds(MONTH)[0]
    last_month = month_of(this_month - timedelta(days=1))
    since = month_bounds(last_month)[0]
    rejected = since + timedelta(days=10)
    db.collection("usage_rejections").document(earlier).update({"rejected_at": rejected})

    def rfc(value: datetime) -> str:
        return f"{value:%Y-%m-%dT%H:%M:%S}Z"

    # Without an end, a span from last month's start reaches this month's too.
    every = cli_json(["--since", rfc(since), "--dry-run"], capsys)
    assert [i["id"] for i in every["items"]] == [earlier, later]
    # The console's page of last month lists the earlier one; its command, run dry, finds it
    # and nothing more.
    view = reads.customer_view(db, "span", month=last_month, now=NOW, settings=settings)
    assert view is not None
    [group] = view.problems
    assert [p.id for p in group.items] == [earlier]
    argv = shlex.split(group.dry_run_command)
    assert argv[:3] == ["blueprint", "usage", "replay"]
    assert argv[argv.index("--before") + 1] == rfc(this_month)
    dry = cli_json(argv[3:], capsys)
    assert [i["id"] for i in dry["items"]] == [earlier]
    assert (dry["since"], dry["before"]) == (since.isoformat(), this_month.isoformat())

    # Replayed for real (a page at a time), only the earlier one is delivered and marked.
    done = cli_json(["--before", rfc(this_month), "--page-size", "1"], capsys)
    assert [(i["id"], i["outcome"]) for i in done["items"]] == [(earlier, "recorded")]
    assert doc(db, "usage_rejections", earlier)["replay_outcome"] == "recorded"
    assert "replayed_at" not in doc(db, "usage_rejections", later)
    assert not db.collection("usage_tracking").document(record_id(second)).get().exists
    rest = cli_json(["--since", rfc(this_month)], capsys)
    assert [(i["id"], i["outcome"]) for i in rest["items"]] == [(later, "recorded")]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--since", "yesterday"], "--since 'yesterday': expected RFC 3339"),
        (["--since", "2026-12-01T00:00:00"], "expected RFC 3339"),  # no offset: ambiguous
        (["--before", "2026-12-01T00:00:00"], "--before '2026-12-01T00:00:00': expected RFC"),
        (
            ["--since", "2026-12-01T00:00:00Z", "--before", "2026-11-01T00:00:00Z"],
            "--before '2026-11-01T00:00:00Z' is not after --since '2026-12-01T00:00:00Z'",
        ),
        (["--kind", "typo"], "Invalid value for '--kind': 'typo': expected one of dead_letter"),
        (["--customer", "a/b"], "--customer"),
        (["--page-size", "0"], "--page-size"),
    ],
)
def test_bad_usage_exits_2_on_one_line(
    clean_firestore: Emulators, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = cli(argv, capsys)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("blueprint: error: usage replay: ")
    assert says in err


def test_the_installed_script_replays_and_exits_1_when_firestore_is_unreachable(
    settings: Settings, firestore_client: Any, clean_firestore: Emulators
) -> None:
    db = firestore_client
    customer(db, "script")
    dead_letter(settings, db, body("script", "e1"))
    script = Path(sys.executable).with_name("blueprint")
    env = {**os.environ, **clean_firestore.env}

    def blueprint(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "usage", "replay", *argv],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    done = blueprint("--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["recorded"] == 1
    table = blueprint()
    assert table.returncode == 0, table.stderr
    assert "replayed before (recorded)" in table.stdout
    assert "recorded 0, still_rejected 0, duplicate 0, skipped 1" in table.stdout
    down = blueprint(FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}")
    assert down.returncode == 1
    assert "not reachable" in down.stderr
    assert "Traceback" not in down.stderr
