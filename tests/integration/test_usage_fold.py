"""The ledger and its fold on the real Firestore and Pub/Sub emulators: records written by the
real usage service, summed by the real fold, checked against independent sums."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from functions.fold.adapters import FirestoreFoldRepository, PubSubAlertPublisher
from functions.fold.ports import FoldCounts, Watermark
from functions.fold.service import FoldConfig, run_fold
from functions.usage.entry import build_service
from functions.usage.ports import Outcome
from functions.usage.service import UsageService
from shared.counters import Sums, counter_doc_id, record_fields
from shared.firestore_values import server_timestamp
from shared.settings import Settings, load_settings
from shared.times import month_of, month_start, previous_month
from tests.usage_support import event_body, log_lines, message, sum_records

NOW = datetime.now(UTC).replace(microsecond=0)
THIS = month_of(NOW)
LAST = previous_month(THIS)
LAG = timedelta(seconds=1)


@pytest.fixture
def settings(clean_firestore: Emulators) -> Settings:
    return load_settings({**clean_firestore.env, "GOOGLE_CLOUD_PROJECT": clean_firestore.project})


@pytest.fixture
def repo(settings: Settings, firestore_client: Any) -> FirestoreFoldRepository:
    return FirestoreFoldRepository(settings, firestore_client)


@pytest.fixture
def usage(settings: Settings, firestore_client: Any) -> UsageService:
    return build_service(settings, firestore_client)


class Alerts:
    """The real `quota-alerts` topic of the emulator and a fresh subscription to it."""

    def __init__(self, settings: Settings, pubsub: PubSubHelper) -> None:
        pubsub.create_topic(settings.quota_alerts_topic)
        self.pubsub = pubsub
        self.subscription = pubsub.create_subscription(settings.quota_alerts_topic)
        self.real = PubSubAlertPublisher(settings, pubsub.publisher)
        self.received: list[dict[str, Any]] = []

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        return self.real.publish_alert(data, attributes)

    def drain(self) -> list[dict[str, Any]]:
        self.received += [json.loads(m.data) for m in self.pubsub.drain(self.subscription)]
        return self.received


@pytest.fixture
def alerts(settings: Settings, pubsub: PubSubHelper) -> Alerts:
    return Alerts(settings, pubsub)


def fold(repo: Any, alerts: Any, now: datetime | None = None, run_id: str = "run-1") -> FoldCounts:
    return run_fold(
        repo,
        alerts,
        now=now or datetime.now(UTC),
        run_id=run_id,
        config=FoldConfig(lag=LAG, workers=4),
        server_time=server_timestamp(),
    )


def settle() -> None:
    """Let the lag pass, so that the next fold reads every record committed so far."""
    time.sleep(LAG.total_seconds() + 0.2)


def customer(client: Any, cid: str, **fields: Any) -> None:
    client.collection("customers").document(cid).set(
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": -1, **fields}
    )


def doc(client: Any, collection: str, doc_id: str) -> dict[str, Any]:
    snap = client.collection(collection).document(doc_id).get()
    assert snap.exists, f"{collection}/{doc_id} missing"
    return snap.to_dict() or {}


def send(usage: UsageService, cid: str, event_id: str, when: datetime, **over: Any) -> Outcome:
    body = event_body(
        customer_id=cid,
        event_id=event_id,
        timestamp=when.isoformat().replace("+00:00", "Z"),
        details=None,
        **over,
    )
    return usage.handle(message(body, f"m-{event_id}"), datetime.now(UTC)).outcome


def test_the_data_models_example_is_recorded_at_15_50_and_counted_by_the_next_fold(
    usage: UsageService, repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "lab_001", quota_period=THIS, total_episodes_generated=0)
    assert send(usage, "lab_001", "example", NOW) is Outcome.RECORDED
    settle()
    counts = fold(repo, alerts)
    assert (counts.records_scanned, counts.summaries_written, counts.customers_written) == (1, 1, 1)
    summary = doc(db, "usage_counters", counter_doc_id("lab_001", THIS))
    assert (summary["records"], summary["episodes_generated"], summary["cost_cents"]) == (
        1,
        100,
        1550,
    )
    assert doc(db, "customers", "lab_001")["total_episodes_generated"] == 100
    settle()
    again = fold(repo, alerts, run_id="run-2")
    assert (again.records_scanned, again.summaries_written, again.customers_written) == (0, 0, 0)


def test_a_document_from_before_the_suite_keeps_its_month_count_as_the_seed(
    usage: UsageService, repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(
        db,
        "old",
        scenes_generated_this_month=45,
        quota_reset_at=month_start(THIS),
        total_scenes_generated=300,
    )
    for n in range(2):
        send(usage, "old", f"old-{n}", NOW, action="scene_generated", episodes_generated=None)
    settle()
    fold(repo, alerts)
    cust = doc(db, "customers", "old")
    assert (cust["scenes_generated_this_month"], cust["total_scenes_generated"]) == (47, 302)
    summary = doc(db, "usage_counters", counter_doc_id("old", THIS))
    assert (summary["seed_scenes"], summary["scenes_generated"], summary["scenes_total"]) == (
        45,
        2,
        47,
    )


class Crashing:
    """The real repository, but the fold dies after its commits, before a watermark moves."""

    def __init__(self, real: FirestoreFoldRepository) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def set_watermark(self, watermark: Watermark, value: datetime) -> bool:
        raise ConnectionError("the fold's instance died after its commits")


def test_a_crashed_fold_two_folds_at_once_and_a_rerun_count_each_record_once(
    usage: UsageService, repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    ids = [f"crash_{i}" for i in range(5)]
    for cid in ids:
        customer(db, cid, quota_period=THIS)
    for n in range(30):
        send(usage, ids[n % 5], f"c-{n}", NOW, action="scene_generated", episodes_generated=n)
    settle()
    with pytest.raises(ConnectionError):
        fold(Crashing(repo), alerts)
    for n in range(30, 45):
        send(usage, ids[n % 5], f"c-{n}", NOW, action="scene_generated", episodes_generated=n)
    settle()
    with ThreadPoolExecutor(2) as pool:  # two folds at once, both over the crashed range too
        list(pool.map(lambda k: fold(repo, alerts, run_id=f"both-{k}"), range(2)))
    settle()
    fold(repo, alerts, run_id="rerun")
    for cid in ids:
        truth = sum_records(db, cid, THIS)
        summary = Sums.from_fields(doc(db, "usage_counters", counter_doc_id(cid, THIS)))
        assert (
            summary.exact() == truth.exact() == (9, 9, truth.episodes_generated, truth.cost_cents)
        )
        cust = doc(db, "customers", cid)
        assert (cust["total_scenes_generated"], cust["total_episodes_generated"]) == (
            9,
            truth.episodes_generated,
        )


def test_a_record_that_became_visible_late_is_caught_by_the_month_close(
    usage: UsageService, repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    db = firestore_client
    customer(db, "late", quota_period=LAST)
    last_month = month_start(THIS) - timedelta(days=1)
    for n in range(3):
        send(usage, "late", f"l-{n}", last_month, action="scene_generated", episodes_generated=2)
    settle()
    fold(repo, alerts, now=month_start(THIS) - timedelta(seconds=5))  # last month's last fold
    bound = doc(db, "usage_counters", counter_doc_id("late", LAST))["bound"]
    # A record committed with a stamp the fold has already passed (injected: production's reads
    # are strongly consistent, the emulator stamps before a commit lands).
    hidden = {
        **event_body(customer_id="late", action="scene_generated", episodes_generated=2),
        "timestamp": last_month,
        "estimated_cost": 0.0,
        "billable": True,
        "recorded_at": bound - timedelta(seconds=1),
        **record_fields("late", LAST, "scene_generated", Decimal(0), 16),
    }
    db.collection("usage_tracking").document("injected-late").set(hidden)
    settle()
    fold(repo, alerts, now=month_start(THIS) - timedelta(seconds=2))
    assert doc(db, "usage_counters", counter_doc_id("late", LAST))["scenes_generated"] == 3
    with log_lines() as lines:
        counts = fold(repo, alerts, now=datetime.now(UTC), run_id="close")
    assert (counts.closed_month, counts.recount_corrections) == (LAST, 1)
    summary = doc(db, "usage_counters", counter_doc_id("late", LAST))
    assert (summary["scenes_generated"], summary["episodes_generated"], summary["closed"]) == (
        4,
        8,
        True,
    )
    assert doc(db, "customers", "late")["total_scenes_generated"] == 4
    errors = [r.getMessage() for r in lines if r.levelname == "ERROR"]
    said = "records 3 in the summary, 4 in its records, scenes_generated 3 in the summary"
    assert any("recount of late " + LAST in e and said in e for e in errors), errors
    # A record that lands for the closed month is counted, and counted as late.
    send(usage, "late", "l-after", last_month, action="scene_generated", episodes_generated=None)
    settle()
    fold(repo, alerts, run_id="after")
    summary = doc(db, "usage_counters", counter_doc_id("late", LAST))
    assert (summary["scenes_generated"], summary["late_records"]) == (5, 1)


@pytest.mark.slow
def test_ten_thousand_events_with_duplicates_bad_ones_and_overlapping_folds_count_exactly(
    settings: Settings,
    repo: FirestoreFoldRepository,
    alerts: Alerts,
    firestore_client: Any,
) -> None:
    db = firestore_client
    rng = random.Random(20261206)
    ids = [f"scale_{i:02d}" for i in range(40)]
    hot = ids[:2]
    for i, cid in enumerate(ids):
        quota = 60 if i % 4 == 0 else -1  # some cross 80 % and 100 %, each alert once
        customer(db, cid, quota_period=THIS, monthly_scene_quota=quota, total_scenes_generated=i)
    boundary = month_start(THIS)
    sent: list[tuple[str, str, datetime, str, int]] = []
    for n in range(10_000):
        cid = hot[n % 2] if n % 3 == 0 else rng.choice(ids)
        when = boundary + timedelta(seconds=rng.randint(-7200, 7200))
        when = min(when, NOW)
        action = "scene_generated" if rng.random() < 0.5 else "episodes_generated"
        sent.append((cid, f"s-{n}", when, action, rng.randint(0, 50)))
    messages = list(sent)
    messages += rng.sample(sent, 1_500)  # 15 % duplicates: the same event again
    rng.shuffle(messages)
    bad = [("ghost_customer", "bad-0"), (ids[3], "bad-1")]
    usage = build_service(settings, firestore_client)

    def one(item: tuple[str, str, datetime, str, int]) -> Outcome:
        cid, event_id, when, action, episodes = item
        return send(usage, cid, event_id, when, action=action, episodes_generated=episodes)

    stop = threading.Event()
    errors: list[BaseException] = []

    def folding(name: str) -> None:
        k = 0
        while not stop.is_set():
            try:
                fold(repo, alerts, run_id=f"{name}-{k}")
            except BaseException as exc:
                errors.append(exc)
            k += 1

    loops = [threading.Thread(target=folding, args=(n,)) for n in ("a", "b")]
    for loop in loops:
        loop.start()
    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(one, messages))
    assert send(usage, *bad[0], NOW) is Outcome.REJECTED
    assert send(usage, bad[1][0], bad[1][1], NOW, episodes_generated=-1) is Outcome.REJECTED
    stop.set()
    for loop in loops:
        loop.join()
    assert errors == []
    assert (outcomes[Outcome.RECORDED], outcomes[Outcome.DUPLICATE]) == (10_000, 1_500)
    settle()
    fold(repo, alerts, run_id="after-the-lag")

    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for cid, _, when, action, episodes in sent:
        totals = expected[cid, month_of(when)]
        totals[0] += 1
        totals[1] += action == "scene_generated"
        totals[2] += episodes
    for (cid, month), (records, scenes, episodes) in expected.items():
        summary = doc(db, "usage_counters", counter_doc_id(cid, month))
        assert (summary["records"], summary["scenes_generated"], summary["episodes_generated"]) == (
            records,
            scenes,
            episodes,
        ), (cid, month)
    for i, cid in enumerate(ids):
        cust = doc(db, "customers", cid)
        months = [m for m in (LAST, THIS) if (cid, m) in expected]
        assert cust["total_scenes_generated"] == i + sum(expected[cid, m][1] for m in months)
        assert cust["scenes_generated_this_month"] == expected[cid, THIS][1]
        assert cust["total_episodes_generated"] == sum(expected[cid, m][2] for m in months)
    sent_alerts = Counter(
        (a["customer_id"], a["month"], a["threshold_percent"]) for a in alerts.drain()
    )
    assert sent_alerts
    assert max(sent_alerts.values()) == 1
    for i, cid in enumerate(ids):
        for month in (LAST, THIS):
            scenes = expected[cid, month][1] if (cid, month) in expected else 0
            want = {p for p, n in ((80, 48), (100, 60)) if i % 4 == 0 and scenes >= n}
            got = {p for (c, m, p) in sent_alerts if (c, m) == (cid, month)}
            assert got == want, (cid, month, scenes)


def test_the_monthly_reset_rolls_over_to_the_folds_month_count(
    usage: UsageService, repo: FirestoreFoldRepository, alerts: Alerts, firestore_client: Any
) -> None:
    from functions.reset import FirestoreResetRepository, run_reset

    db = firestore_client
    customer(db, "roll", quota_period=LAST, scenes_generated_this_month=40)
    for n in range(6):  # this month's first scenes, folded before the fold's own month moved
        send(usage, "roll", f"r-{n}", NOW, action="scene_generated", episodes_generated=None)
    settle()
    fold(repo, alerts, now=month_start(THIS) - timedelta(seconds=30))
    assert doc(db, "customers", "roll")["quota_period"] == LAST
    resets = FirestoreResetRepository(db, "customers", "quota_resets")
    assert run_reset(resets, THIS, NOW).reset >= 1
    cust = doc(db, "customers", "roll")
    assert (cust["quota_period"], cust["scenes_generated_this_month"]) == (THIS, 6)
    assert run_reset(resets, THIS, NOW).reset == 0  # exactly once


def test_the_local_suite_counts_a_published_event_in_the_first_fold_after_the_lag(
    local_suite: Any,
) -> None:
    db = local_suite.firestore
    cid = f"fresh_{int(time.time() * 1000)}"
    customer(db, cid, quota_period=THIS, total_scenes_generated=0, total_episodes_generated=0)
    local_suite.wait_quiet(local_suite.mark())  # the customer's own create trigger
    since = local_suite.mark()
    body = event_body(
        customer_id=cid, event_id=f"{cid}-1", timestamp=NOW.isoformat().replace("+00:00", "Z")
    )
    local_suite.publish(local_suite.settings.usage_events_topic, json.dumps(body).encode())
    local_suite.wait_for(
        lambda items: any(i["function"] == "on-usage-event" and i["status"] < 300 for i in items),
        since,
        timeout=60,
    )
    settle()
    since = local_suite.mark()
    local_suite.fire_fold()
    local_suite.wait_for(
        lambda items: any(
            i["function"] == "fold-usage-counters" and i["status"] < 300 for i in items
        ),
        since,
        timeout=60,
    )
    cust = doc(db, "customers", cid)
    assert (cust["total_episodes_generated"], cust["scenes_generated_this_month"]) == (100, 0)
    summary = doc(db, "usage_counters", counter_doc_id(cid, THIS))
    assert (summary["records"], summary["cost_cents"]) == (1, 1550)
