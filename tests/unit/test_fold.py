"""The fold's pure planner and its service over in-memory fakes of the two Protocols."""

from __future__ import annotations

import base64
import itertools
import json
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from functions.fold import entry, planner
from functions.fold.ports import (
    Commit,
    CommitConflictError,
    CustomerState,
    FoldCounts,
    HeldTally,
    Marker,
    Shard,
    Snapshot,
    TallyRecord,
    Watermark,
)
from functions.fold.service import FoldConfig, claimable, run_fold
from shared.counters import fold_bucket
from shared.errors import PermanentError

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
NOV, DEC, OCT = "2026-11", "2026-12", "2026-10"


def shard(cid: str, month: str, k: int, at: int, scenes: int = 0, episodes: int = 0) -> Shard:
    return Shard(
        cid,
        month,
        str(k),
        {"records": 1, "scenes_generated": scenes, "episodes_generated": episodes},
        T0 + timedelta(seconds=at),
        fold_bucket(cid, month, 4),
    )


class FakeRepo:
    """In-memory FoldRepository with create-once and update-time guards (versions are ints)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = itertools.count(1)
        self.shards: dict[tuple[str, str, str], Shard] = {}
        self.docs: dict[str, tuple[dict[str, Any], int]] = {}
        self.fail_customers: set[str] = set()
        self.commits: list[Commit] = []
        self.tally: list[TallyRecord] = []
        """Records counted from the records (as `usage_tracking` holds them)."""
        self.server_now = NOW
        """The server time of a read (what a read's read_time says)."""
        self.record_reads = 0
        self.aggregated: list[TallyRecord] = []
        """Records with `fold_key` (counted by aggregation; their flags are in `tally` too)."""
        self.aggregations = 0

    # helpers
    def put(self, path: str, data: dict[str, Any]) -> None:
        self.docs[path] = (data, next(self.version))

    def data(self, path: str) -> dict[str, Any]:
        return self.docs[path][0]

    def add(self, s: Shard) -> None:
        self.shards[(s.customer_id, s.month, s.shard)] = s

    def _snap(self, path: str) -> Snapshot | None:
        got = self.docs.get(path)
        return None if got is None else Snapshot(dict(got[0]), got[1])

    # the protocol
    def read_watermarks(self, buckets: Sequence[int]) -> list[Watermark]:
        out = []
        for b in buckets:
            snap = self._snap(f"state/{b}")
            data = snap.data if snap else {}
            out.append(
                Watermark(
                    b,
                    data.get("watermark"),
                    snap and snap.update_time,
                    records=data.get("records_watermark"),
                    read_time=self.server_now,
                    held=dict(data.get("held") or {}),
                )
            )
        return out

    def scan_records(
        self,
        bucket: int,
        after: datetime | None,
        upto: datetime,
        page_size: int,
        read_time: datetime | None = None,
    ) -> Iterator[list[TallyRecord]]:
        assert read_time is None or read_time >= upto
        found = sorted(
            (
                r
                for r in self.tally
                if r.bucket == bucket
                and (after is None or r.recorded_at > after)
                and r.recorded_at <= upto
            ),
            key=lambda r: r.recorded_at,
        )
        self.record_reads += len(found)
        for i in range(0, len(found), page_size):
            yield found[i : i + page_size]

    def count_month(
        self,
        customer_id: str,
        month: str,
        after: datetime | None,
        upto: datetime,
        *,
        scenes_only: bool = False,
    ) -> dict[str, int | float]:
        found = [
            r
            for r in self.aggregated
            if (r.customer_id, r.month) == (customer_id, month)
            and (after is None or r.recorded_at > after)
            and r.recorded_at <= upto
        ]
        self.aggregations += 1
        if scenes_only:
            return {
                "scenes_generated": sum(int(r.values.get("scenes_generated", 0)) for r in found)
            }
        out: dict[str, int | float] = {"records": len(found)}
        for name in ("scenes_generated", "episodes_generated", "cost_cents"):
            out[name] = sum(int(r.values.get(name, 0)) for r in found)
        for name in ("compute_minutes", "storage_gb"):
            out[name] = math.fsum(float(r.values.get(name, 0.0)) for r in found)
        return out

    def scan_bucket(self, bucket: int, since: datetime, page_size: int) -> Iterator[list[Shard]]:
        found = sorted(
            (s for s in self.shards.values() if s.bucket == bucket and s.updated_at > since),
            key=lambda s: s.updated_at,
        )
        for i in range(0, len(found), page_size):
            yield found[i : i + page_size]

    def read_state(self, customer_id: str, months: Sequence[str]) -> CustomerState:
        return CustomerState(
            self._snap(f"customers/{customer_id}"),
            {m: self._snap(f"summaries/{customer_id}_{m}") for m in months},
        )

    def commit(self, commit: Commit) -> None:
        if commit.customer_id in self.fail_customers:
            raise ConnectionError("fake: Firestore unreachable")
        with self.lock:
            paths = [
                (f"summaries/{commit.customer_id}_{s.month}", s.token) for s in commit.summaries
            ]
            if commit.customer is not None:
                paths.append((f"customers/{commit.customer_id}", commit.customer.token))
            paths += [(f"alerts/{a}", None) for a, _ in commit.markers]
            for path, token in paths:
                current = self.docs.get(path)
                if (token is None) != (current is None) or (current and current[1] != token):
                    raise CommitConflictError(path)
            for s in commit.summaries:
                self.put(f"summaries/{commit.customer_id}_{s.month}", dict(s.data))
            if commit.customer is not None:
                path = f"customers/{commit.customer_id}"
                fields = dict(commit.customer.fields)
                if commit.customer.stamp_reset:
                    fields["quota_reset_at"] = NOW
                self.put(path, {**self.data(path), **fields})
            for alert, marker in commit.markers:
                self.put(f"alerts/{alert}", dict(marker))
            self.commits.append(commit)

    def set_watermark(
        self,
        watermark: Watermark,
        value: datetime | None,
        records: datetime | None = None,
        held: Mapping[str, HeldTally] | None = None,
    ) -> bool:
        with self.lock:
            current = self.docs.get(f"state/{watermark.bucket}")
            if (current and current[1]) != watermark.token:
                return False
            self.put(
                f"state/{watermark.bucket}",
                {
                    "watermark": value if value is not None else watermark.value,
                    "records_watermark": records if records is not None else watermark.records,
                    "held": dict(held if held is not None else watermark.held),
                },
            )
            return True

    def pending_markers(self, limit: int) -> list[Marker]:
        return [
            Marker(path.split("/", 1)[1], dict(d), v)
            for path, (d, v) in self.docs.items()
            if path.startswith("alerts/") and d.get("state") == "pending"
        ][:limit]

    def claim_marker(self, marker: Marker, changes: Mapping[str, Any]) -> bool:
        with self.lock:
            path = f"alerts/{marker.alert_id}"
            if self.docs[path][1] != marker.update_time:
                return False
            self.put(path, {**self.data(path), **changes})
            return True

    def update_marker(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        path = f"alerts/{alert_id}"
        self.put(path, {**self.data(path), **changes})

    def existing_markers(self, alert_ids: Sequence[str]) -> set[str]:
        return {a for a in alert_ids if f"alerts/{a}" in self.docs}


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = 0

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("fake: Pub/Sub unreachable")
        self.sent.append(json.loads(data))
        return f"m{len(self.sent)}"


CONFIG = FoldConfig(buckets=4, overlap=timedelta(0), page_size=3, workers=2)


def fold(repo: FakeRepo, pub: FakePublisher, run_id: str = "r1", **kw: Any) -> FoldCounts:
    return run_fold(repo, pub, now=kw.pop("now", NOW), run_id=run_id, config=CONFIG, **kw)


# ---- planner -------------------------------------------------------------------------------

versions = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50)), min_size=1, max_size=20)


@given(versions, st.randoms())
def test_merging_is_order_independent_and_idempotent(raw: list[tuple[int, int]], rnd: Any) -> None:
    # Each shard grows with time: version n of shard k holds n scenes at second n.
    seen = [shard("c", NOV, k, n, scenes=n) for k, n in raw]
    once = planner.merge_shards({}, seen)
    shuffled = list(seen)
    rnd.shuffle(shuffled)
    half = len(shuffled) // 2
    twice = planner.merge_shards(planner.merge_shards({}, shuffled[:half]), shuffled[half:])
    assert planner.totals(once) == planner.totals(twice)
    assert planner.totals(planner.merge_shards(once, seen)) == planner.totals(once)
    newest = {k: max(n for kk, n in raw if kk == k) for k, _ in raw}
    assert planner.totals(once)["scenes_generated"] == sum(newest.values())


def state(customer: dict[str, Any] | None, **summaries: dict[str, Any]) -> CustomerState:
    return CustomerState(
        None if customer is None else Snapshot(customer, 1),
        {m: Snapshot(d, 2) for m, d in summaries.items()},
    )


def plan(
    st_: CustomerState, seen: dict[str, list[Shard]], now: datetime = NOW
) -> planner.CustomerPlan:
    return planner.plan_customer("c", st_, seen, now=now, run_id="r", server_time="SERVER")


def test_seed_only_for_the_month_the_legacy_counter_counts() -> None:
    legacy = {
        "scenes_generated_this_month": 45,
        "quota_reset_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    got = plan(state(legacy), {NOV: [shard("c", NOV, 0, 1, scenes=5)]})
    (month,) = got.months
    assert (month.seed, month.scenes) == (45, 50)
    other = plan(state(legacy), {OCT: [shard("c", OCT, 0, 1, scenes=5)]})
    assert other.months[0].seed == 0
    # Once the summary exists its seed stands, whatever the customer says now.
    summary = {**got.commit.summaries[0].data, "folded_at": None}
    later = plan(state({**legacy, "scenes_generated_this_month": 99}, **{NOV: summary}), {NOV: []})
    assert later.months[0].seed == 45


def test_an_unchanged_month_writes_nothing() -> None:
    first = plan(state({"quota_period": NOV}), {NOV: [shard("c", NOV, 0, 1, scenes=2)]})
    summary = dict(first.commit.summaries[0].data)
    customer = {"quota_period": NOV, **first.commit.customer.fields}  # type: ignore[union-attr]
    again = plan(state(customer, **{NOV: summary}), {NOV: [shard("c", NOV, 0, 1, scenes=2)]})
    assert again.commit.empty


def test_lifetime_adds_each_months_difference_once() -> None:
    customer = {"quota_period": NOV, "total_scenes_generated": 100, "total_episodes_generated": 7}
    first = plan(state(customer), {NOV: [shard("c", NOV, 0, 1, scenes=3, episodes=2)]})
    fields = first.commit.customer.fields  # type: ignore[union-attr]
    assert (fields["total_scenes_generated"], fields["total_episodes_generated"]) == (103, 9)
    summary = dict(first.commit.summaries[0].data)
    assert (summary["mirrored_scenes"], summary["mirrored_episodes"]) == (3, 2)
    second = plan(
        state({**customer, **fields}, **{NOV: summary}),
        {NOV: [shard("c", NOV, 0, 5, scenes=4, episodes=2)]},
    )
    assert second.commit.customer.fields["total_scenes_generated"] == 104  # type: ignore[union-attr]


def test_the_month_rolls_over_and_never_moves_back() -> None:
    dec_now = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)
    late = plan(
        state({"quota_period": NOV, "scenes_generated_this_month": 9}),
        {NOV: [shard("c", NOV, 0, 1, scenes=1)]},
        dec_now,
    )
    assert late.commit.customer is not None
    assert late.commit.customer.fields["scenes_generated_this_month"] == 0
    assert late.commit.customer.fields["quota_period"] == DEC
    assert late.commit.customer.stamp_reset
    ahead = plan(
        state({"quota_period": DEC, "scenes_generated_this_month": 9}),
        {NOV: [shard("c", NOV, 0, 1, scenes=1)]},
    )
    assert ahead.commit.customer is not None
    assert "scenes_generated_this_month" not in ahead.commit.customer.fields
    assert not ahead.commit.customer.stamp_reset


def test_thresholds_create_markers_once_and_unlimited_never() -> None:
    limited = {"quota_period": NOV, "monthly_scene_quota": 10}
    got = plan(state(limited), {NOV: [shard("c", NOV, 0, 1, scenes=10)]})
    assert [a for a, _ in got.commit.markers] == [f"c_{NOV}_80", f"c_{NOV}_100"]
    assert got.commit.summaries[0].data["alerts"] == [80, 100]
    assert set(got.alerts[0]) == set(planner.PAYLOAD_FIELDS)
    summary = dict(got.commit.summaries[0].data)
    again = plan(state(limited, **{NOV: summary}), {NOV: [shard("c", NOV, 1, 2, scenes=1)]})
    assert again.commit.markers == ()
    free = plan(
        state({"quota_period": NOV, "monthly_scene_quota": -1}),
        {NOV: [shard("c", NOV, 0, 1, scenes=99)]},
    )
    assert free.commit.markers == ()


def test_an_unknown_customer_gets_a_summary_only() -> None:
    got = plan(state(None), {NOV: [shard("c", NOV, 0, 1, scenes=2)]})
    assert got.commit.customer is None
    assert got.commit.summaries[0].data["mirrored_scenes"] == 0  # added when it appears


# ---- service -------------------------------------------------------------------------------


def test_a_failing_customer_holds_its_buckets_watermark_and_is_folded_next_time() -> None:
    repo, pub = FakeRepo(), FakePublisher()
    for cid in ("a", "b", "c", "d", "e"):
        repo.put(f"customers/{cid}", {"quota_period": NOV})
        for k in range(2):
            repo.add(shard(cid, NOV, k, k + ord(cid), scenes=1))
    repo.fail_customers = {"c"}
    first = fold(repo, pub)
    assert (first.customers, first.failed_customers) == (5, 1)
    assert "c" not in {x.customer_id for x in repo.commits}
    held = fold_bucket("c", NOV, 4)
    assert repo.data(f"state/{held}")["watermark"] < shard("c", NOV, 0, ord("c")).updated_at
    repo.fail_customers = set()
    second = fold(repo, pub, run_id="r2")
    assert repo.data("customers/c")["total_scenes_generated"] == 2
    assert second.failed_customers == 0
    assert fold(repo, pub, run_id="r3").customers == 0  # everything folded: nothing to scan


def test_a_permanently_refused_customer_is_logged_and_does_not_hold_the_watermark() -> None:
    repo, pub = FakeRepo(), FakePublisher()
    repo.put("customers/bad", {"quota_period": NOV})
    repo.add(shard("bad", NOV, 0, 1, scenes=1))

    def refuse(commit: Commit) -> None:
        raise PermanentError("fold commit of customer bad: InvalidArgument: too big")

    repo.commit = refuse  # type: ignore[method-assign]
    counts = fold(repo, pub)
    assert counts.failed_customers == 1
    bucket = fold_bucket("bad", NOV, 4)
    assert repo.data(f"state/{bucket}")["watermark"] == shard("bad", NOV, 0, 1).updated_at


def test_a_conflict_is_read_again_and_planned_again() -> None:
    repo, pub = FakeRepo(), FakePublisher()
    repo.put("customers/x", {"quota_period": NOV})
    repo.add(shard("x", NOV, 0, 1, scenes=1))
    real_read = repo.read_state
    calls = []

    def read_then_change(customer_id: str, months: Sequence[str]) -> CustomerState:
        got = real_read(customer_id, months)
        if not calls:  # someone writes the customer between our read and our commit
            repo.put("customers/x", {**repo.data("customers/x"), "total_scenes_generated": 10})
        calls.append(1)
        return got

    repo.read_state = read_then_change  # type: ignore[method-assign]
    counts = fold(repo, pub)
    assert counts.conflicts == 1
    assert repo.data("customers/x")["total_scenes_generated"] == 11


def test_past_the_deadline_no_customer_starts_and_the_watermarks_stay() -> None:
    repo, pub = FakeRepo(), FakePublisher()
    repo.put("customers/y", {"quota_period": NOV})
    repo.add(shard("y", NOV, 0, 1, scenes=1))
    counts = fold(repo, pub, deadline=0.0, clock=lambda: 1.0)
    assert counts.stopped_by_deadline
    assert repo.commits == []
    marks = [d["watermark"] for p, (d, _) in repo.docs.items() if p.startswith("state/")]
    assert all(m < shard("y", NOV, 0, 1).updated_at for m in marks)  # y is scanned again


def test_pending_markers_are_claimable_when_released_or_older_than_the_lease() -> None:
    lease = timedelta(seconds=120)
    pending = {"state": "pending", "claimed_by": "other", "claimed_at": NOW - timedelta(seconds=30)}
    assert not claimable(Marker("a", pending), NOW, "r", lease)
    assert claimable(Marker("a", pending), NOW + lease, "r", lease)
    assert claimable(
        Marker("a", {"state": "pending", "claimed_by": None, "claimed_at": None}), NOW, "r", lease
    )
    assert not claimable(
        Marker("a", {**pending, "claimed_by": "r", "claimed_at": None}), NOW, "r", lease
    )
    assert not claimable(Marker("a", {"state": "published"}), NOW + lease, "r", lease)


def test_a_failed_publish_is_released_and_the_next_fold_sends_it_once() -> None:
    repo, pub = FakeRepo(), FakePublisher()
    repo.put("customers/q", {"quota_period": NOV, "monthly_scene_quota": 10})
    repo.add(shard("q", NOV, 0, 1, scenes=8))
    pub.fail = 1
    assert fold(repo, pub).alerts_failed == 1
    assert repo.data(f"alerts/q_{NOV}_80")["claimed_by"] is None
    assert fold(repo, pub, run_id="r2").alerts_published == 1
    assert fold(repo, pub, run_id="r3").alerts_published == 0
    assert [a["alert_id"] for a in pub.sent] == [f"q_{NOV}_80"]


def test_a_marker_created_before_the_fold_is_listed_not_created_again() -> None:
    repo, pub = FakeRepo(), FakePublisher()
    repo.put("customers/o", {"quota_period": NOV, "monthly_scene_quota": 10})
    repo.put(f"alerts/o_{NOV}_80", {"state": "published"})  # the pre-fold usage function sent it
    repo.add(shard("o", NOV, 0, 1, scenes=9))
    counts = fold(repo, pub)
    assert (counts.failed_customers, counts.conflicts, counts.alerts_published) == (0, 1, 0)
    assert repo.data(f"summaries/o_{NOV}")["alerts"] == [80]
    assert pub.sent == []


# ---- the old design's stranded claim -------------------------------------------------------


def test_old_usage_path_strands_a_claim_whose_message_died() -> None:
    """Reproduction of the defect the fold fixes (issue 12, item 3), on the pre-fold usage
    path: message A claims the 80 % marker, its publish fails and its delivery dies (dead
    letter: never redelivered); message B reaches the threshold too but never takes over
    another message's claim. Skipped once that path is gone."""
    from functions import usage

    service_cls = getattr(usage, "UsageService", None)
    if service_cls is None or not hasattr(service_cls, "_claim_alert"):
        pytest.skip("the usage function no longer publishes alerts (the fold does)")
    from tests.usage_support import FakePublisher as UsagePublisher
    from tests.usage_support import FakeRepository, event_body, message

    repo = FakeRepository()
    repo.put_customer(
        "lab", quota_period="2025-01", scenes_generated_this_month=7, monthly_scene_quota=10
    )
    publisher = UsagePublisher()
    service = service_cls(repo, publisher)
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    body = {"action": "scene_generated", "customer_id": "lab", "episodes_generated": None}
    publisher.fail_next = 1
    with pytest.raises(ConnectionError):
        service.handle(message(event_body(event_id="a", **body), "msg-a"), now)
    # msg-a is dead-lettered: no redelivery. msg-b, later, reaches the threshold too.
    service.handle(message(event_body(event_id="b", **body), "msg-b"), now + timedelta(hours=1))
    assert publisher.sent == []  # the old semantics: stranded for ever
    marker = repo.markers["lab_2025-01_80"]
    assert (marker["state"], marker["claimed_by"]) == ("pending", "msg-a")
    # The fold's sweep finishes exactly that marker.
    fold_repo, fold_pub = FakeRepo(), FakePublisher()
    fold_repo.put("alerts/lab_2025-01_80", dict(marker))
    assert fold(fold_repo, fold_pub, now=now + timedelta(hours=2)).alerts_published == 1
    assert [a["alert_id"] for a in fold_pub.sent] == ["lab_2025-01_80"]


# ---- entry ---------------------------------------------------------------------------------


def tick(data: Any) -> CloudEvent:
    return CloudEvent(
        {
            "id": "tick-1",
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/demo-x/topics/usage-fold-schedule",
            "specversion": "1.0",
        },
        data,
    )


@pytest.mark.parametrize(
    "data",
    [
        {"message": {"data": base64.b64encode(b'{"job":"usage-fold"}').decode(), "messageId": "1"}},
        {"message": {"data": "***not base64***", "messageId": "2"}},
    ],
)
def test_every_tick_runs_one_fold_and_logs_its_counts(
    data: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    repo, pub = FakeRepo(), FakePublisher()
    repo.put("customers/z", {"quota_period": NOV})
    repo.add(shard("z", NOV, 0, 1, scenes=1))
    monkeypatch.setattr(entry, "_wiring", lambda: (repo, pub, CONFIG))
    entry.handle_cloud_event(tick(data), 300)
    assert repo.data("customers/z")["total_scenes_generated"] == 1
