"""The fold's pure plan and its service over in-memory fakes of the two Protocols: records are
summed into month summaries and customer counters, each once, whatever folds overlap, crash or
rerun; the month close recounts and corrects."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from google.api_core import exceptions as gexc
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.fold import entry, plan
from functions.fold.alerts import claimable
from functions.fold.ports import (
    Commit,
    CommitConflictError,
    CustomerState,
    FoldCounts,
    Marker,
    NewRecord,
    Snapshot,
    Watermark,
)
from functions.fold.service import FoldConfig, run_fold
from shared.counters import Sums, fold_bucket
from shared.errors import PermanentError
from tests.usage_support import log_lines

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
NOV, DEC, OCT = "2026-11", "2026-12", "2026-10"
LAG = timedelta(seconds=2)
CONFIG = FoldConfig(buckets=4, lag=LAG, page_size=3, workers=2)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class FakeRepo:
    """In-memory FoldRepository: records with their commit times, documents with versions
    (update-time guards), create-once markers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = itertools.count(1)
        self.records: list[tuple[int, NewRecord]] = []
        """(bucket, record) as `usage_tracking` holds them."""
        self.docs: dict[str, tuple[dict[str, Any], int]] = {}
        self.fail_customers: set[str] = set()
        self.commits: list[Commit] = []
        self.server_now = NOW
        self.hidden: set[int] = set()
        """Indexes into `records` a scan does not see (committed but not yet visible)."""
        self.recorded_reads = 0

    def put(self, path: str, data: dict[str, Any]) -> None:
        self.docs[path] = (data, next(self.version))

    def data(self, path: str) -> dict[str, Any]:
        return self.docs[path][0]

    def add(
        self,
        cid: str,
        month: str,
        seconds: float,
        scenes: int = 0,
        episodes: int = 0,
        cents: int = 0,
    ) -> None:
        sums = Sums(1, scenes, episodes, cents, 0.5, 0.25)
        self.records.append((fold_bucket(cid, month, 4), NewRecord(cid, month, sums, at(seconds))))

    def _snap(self, path: str) -> Snapshot | None:
        got = self.docs.get(path)
        return None if got is None else Snapshot(dict(got[0]), got[1])

    def _guarded(self, path: str, data: dict[str, Any], token: Any) -> int | None:
        with self.lock:
            current = self.docs.get(path)
            if (current[1] if current else None) != token:
                return None
            self.put(path, data)
            return self.docs[path][1]

    # the protocol
    def read_watermarks(self, buckets: Sequence[int]) -> list[Watermark]:
        out = []
        for b in buckets:
            snap = self._snap(f"state/{b}")
            value = snap.data.get("watermark") if snap else None
            out.append(Watermark(b, value, snap and snap.update_time, self.server_now))
        return out

    def scan_records(
        self, bucket: int, after: datetime | None, upto: datetime, page_size: int, read_time: Any
    ) -> Iterator[list[NewRecord]]:
        assert read_time - upto >= LAG  # every page read at T, after U + lag
        found = sorted(
            (
                r
                for i, (b, r) in enumerate(self.records)
                if b == bucket
                and i not in self.hidden
                and (after is None or r.recorded_at > after)
                and r.recorded_at <= upto
            ),
            key=lambda r: r.recorded_at,
        )
        self.recorded_reads += len(found)
        for i in range(0, len(found), page_size):
            yield found[i : i + page_size]

    def set_watermark(self, watermark: Watermark, value: datetime) -> bool:
        return (
            self._guarded(f"state/{watermark.bucket}", {"watermark": value}, watermark.token)
            is not None
        )

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
                if (current[1] if current else None) != token:
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

    def count_month(self, customer_id: str, month: str, upto: datetime) -> Sums:
        return sum(
            (
                r.sums
                for _, r in self.records
                if (r.customer_id, r.month) == (customer_id, month) and r.recorded_at <= upto
            ),
            Sums(),
        )

    def month_summaries(self, month: str, after: str | None, limit: int) -> list[str]:
        ids = sorted(
            p.split("/", 1)[1]
            for p, (d, _) in self.docs.items()
            if p.startswith("summaries/") and d.get("month") == month
        )
        return [i for i in ids if after is None or i > after][:limit]

    def read_close(self) -> Snapshot | None:
        return self._snap("state/months")

    def set_close(self, data: Mapping[str, Any], token: Any) -> Any:
        return self._guarded("state/months", dict(data), token)

    def pending_markers(self, limit: int) -> list[Marker]:
        return [
            Marker(path.split("/", 1)[1], dict(d), v)
            for path, (d, v) in self.docs.items()
            if path.startswith("alerts/") and d.get("state") == "pending"
        ][:limit]

    def claim_marker(self, marker: Marker, changes: Mapping[str, Any]) -> bool:
        path = f"alerts/{marker.alert_id}"
        return self._guarded(path, {**self.data(path), **changes}, marker.update_time) is not None

    def update_marker(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        path = f"alerts/{alert_id}"
        self.put(path, {**self.data(path), **changes})

    def existing_markers(self, alert_ids: Sequence[str]) -> set[str]:
        return {a for a in alert_ids if f"alerts/{a}" in self.docs}

    # what the tests check
    def summary(self, cid: str, month: str = NOV) -> dict[str, Any]:
        return self.data(f"summaries/{cid}_{month}")

    def truth(self, cid: str, month: str = NOV) -> Sums:
        return self.count_month(cid, month, datetime.max.replace(tzinfo=UTC))


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


def fold(repo: FakeRepo, pub: FakePublisher, run_id: str = "r1", **kw: Any) -> FoldCounts:
    return run_fold(repo, pub, now=kw.pop("now", NOW), run_id=run_id, config=CONFIG, **kw)


def closed_through(repo: FakeRepo, month: str) -> None:
    """Mark every month up to `month` closed (the tests of the fold proper start after it)."""
    repo.put("state/months", {"closed_through": month})


@pytest.fixture
def repo() -> FakeRepo:
    repo = FakeRepo()
    closed_through(repo, OCT)
    for cid in ("a", "b", "c"):
        repo.put(f"customers/{cid}", {"quota_period": NOV})
    return repo


# ---- the fold over records -------------------------------------------------------------------


def test_records_reach_the_summary_and_the_customer_in_the_next_fold(repo: FakeRepo) -> None:
    repo.add("a", NOV, 1, scenes=1, episodes=100, cents=1550)
    repo.add("a", NOV, 2, scenes=1)
    repo.add("a", OCT, 3, episodes=7)  # an event of last month, recorded now
    counts = fold(repo, FakePublisher())
    assert (counts.records_scanned, counts.customers, counts.customer_months) == (3, 1, 2)
    summary = repo.summary("a")
    assert Sums.from_fields(summary) == repo.truth("a")
    assert (summary["records"], summary["cost_cents"], summary["bound"]) == (2, 1550, NOW - LAG)
    customer = repo.data("customers/a")
    assert customer["scenes_generated_this_month"] == 2
    assert (customer["total_scenes_generated"], customer["total_episodes_generated"]) == (2, 107)
    assert repo.summary("a", OCT)["episodes_generated"] == 7


def test_a_record_committed_within_the_lag_waits_for_the_next_fold(repo: FakeRepo) -> None:
    """Every record carries its bucket, so the scan itself finds a record that arrives late:
    no second signal (which another write could hide) is needed for it to be counted."""
    repo.add("a", NOV, 1, scenes=1)
    repo.records.append((fold_bucket("a", NOV, 4), NewRecord("a", NOV, Sums(1, 1), NOW - LAG / 2)))
    fold(repo, FakePublisher())
    assert repo.summary("a")["scenes_generated"] == 1
    repo.server_now = NOW + timedelta(seconds=60)
    fold(repo, FakePublisher(), run_id="r2")
    assert repo.summary("a")["scenes_generated"] == 2


def test_a_rerun_and_an_overlapping_fold_count_nothing_twice(repo: FakeRepo) -> None:
    """Records scanned again (a watermark read before another fold moved it) are added only
    above the summary's bound: nothing outside the summary holds a count, so a re-scan cannot
    count one twice."""
    for n in range(7):
        repo.add("a", NOV, n, scenes=1)
        repo.add("b", NOV, n, episodes=2)
    marks_before = repo.read_watermarks(range(4))
    fold(repo, FakePublisher())
    # A fold that read the old watermarks (it started before the first moved them) scans the
    # same range again: the bounds keep it from adding anything.
    real = repo.read_watermarks
    repo.read_watermarks = lambda buckets: marks_before  # type: ignore[method-assign]
    again = fold(repo, FakePublisher(), run_id="r2")
    repo.read_watermarks = real  # type: ignore[method-assign]
    assert again.records_scanned == 14
    assert again.summaries_written == 0
    assert fold(repo, FakePublisher(), run_id="r3").records_scanned == 0
    assert repo.summary("a")["scenes_generated"] == 7
    assert repo.data("customers/b")["total_episodes_generated"] == 14


def test_a_fold_that_crashed_before_moving_its_watermarks_is_redone_once(repo: FakeRepo) -> None:
    for n in range(5):
        repo.add("a", NOV, n, scenes=1)
    real = repo.set_watermark

    def crash(watermark: Watermark, value: datetime) -> bool:
        raise ConnectionError("fake: the fold died after its commits")

    repo.set_watermark = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        fold(repo, FakePublisher())
    assert repo.summary("a")["scenes_generated"] == 5
    repo.set_watermark = real  # type: ignore[method-assign]
    repo.add("a", NOV, 3600, scenes=1)  # committed after the first fold's bound
    repo.server_now = NOW + timedelta(minutes=1)
    counts = fold(repo, FakePublisher(), run_id="r2")
    assert counts.records_scanned == 6  # the five again, and the new one
    assert repo.summary("a")["scenes_generated"] == 6
    assert repo.data("customers/a")["total_scenes_generated"] == 6


def test_two_folds_at_once_count_each_record_once(repo: FakeRepo) -> None:
    for n in range(40):
        repo.add("abc"[n % 3], NOV, n, scenes=1, cents=n)
    pub = FakePublisher()
    threads = [threading.Thread(target=fold, args=(repo, pub, f"r{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cid in "abc":
        assert Sums.from_fields(repo.summary(cid)).exact() == repo.truth(cid).exact()
        assert (
            repo.data(f"customers/{cid}")["total_scenes_generated"]
            == repo.truth(cid).scenes_generated
        )


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 100), st.booleans()), max_size=40),
    st.lists(st.sampled_from(["fold", "crash", "stale", "fail_a"]), min_size=1, max_size=6),
)
def test_any_sequence_of_folds_crashes_and_failures_counts_each_record_once(
    events: list[tuple[str, int, bool]], steps: list[str]
) -> None:
    repo = FakeRepo()
    closed_through(repo, OCT)
    for cid in "abc":
        repo.put(f"customers/{cid}", {"quota_period": NOV})
    for cid, second, scene in events:
        repo.add(cid, NOV, second, scenes=int(scene))
    stale = repo.read_watermarks(range(4))
    real_marks, real_set = repo.read_watermarks, repo.set_watermark
    for n, step in enumerate(steps):
        repo.fail_customers = {"a"} if step == "fail_a" else set()
        if step == "stale":
            repo.read_watermarks = lambda buckets: stale  # type: ignore[method-assign]
        if step == "crash":
            repo.set_watermark = lambda w, v: (_ for _ in ()).throw(ConnectionError("died"))  # type: ignore[method-assign]
        with contextlib.suppress(ConnectionError):
            fold(repo, FakePublisher(), run_id=f"r{n}")
        repo.read_watermarks, repo.set_watermark = real_marks, real_set  # type: ignore[method-assign]
    repo.fail_customers = set()
    fold(repo, FakePublisher(), run_id="last")
    for cid in "abc":
        truth = repo.truth(cid)
        got = repo.docs.get(f"summaries/{cid}_{NOV}")
        assert (Sums.from_fields(got[0]) if got else Sums()).exact() == truth.exact()
        customer = repo.data(f"customers/{cid}")
        assert customer.get("total_scenes_generated", 0) == truth.scenes_generated


def test_a_failing_customer_holds_its_bucket_back_and_is_folded_next_time(repo: FakeRepo) -> None:
    for cid in "abc":
        repo.add(cid, NOV, 1, scenes=1)
    repo.fail_customers = {"b"}
    first = fold(repo, FakePublisher())
    assert (first.customers, first.failed_customers) == (3, 1)
    assert repo.docs.get(f"state/{fold_bucket('b', NOV, 4)}") is None  # not moved
    repo.fail_customers = set()
    fold(repo, FakePublisher(), run_id="r2")
    assert [repo.summary(c)["scenes_generated"] for c in "abc"] == [1, 1, 1]


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("fold commit of customer a: InvalidArgument: too big"),
        gexc.PermissionDenied("403"),
        gexc.Unknown("Stream removed"),
        gexc.NotFound("customers/a"),
    ],
)
def test_a_customer_whose_commit_fails_holds_its_bucket_whatever_the_error(
    repo: FakeRepo, error: Exception
) -> None:
    # A customer left out of a fold must not let its bucket's watermark pass its records: they
    # would never be counted (a month with no summary is not even recounted at its close).
    repo.add("a", NOV, 1, scenes=1)
    real_commit = repo.commit

    def refuse(commit: Commit) -> None:
        raise error

    repo.commit = refuse  # type: ignore[method-assign]
    with log_lines() as lines:
        assert fold(repo, FakePublisher()).failed_customers == 1
    assert repo.docs.get(f"state/{fold_bucket('a', NOV, 4)}") is None  # not moved
    assert any("fold of customer a failed" in r.getMessage() for r in lines)
    repo.commit = real_commit  # type: ignore[method-assign]
    fold(repo, FakePublisher(), run_id="r2")
    assert repo.summary("a")["scenes_generated"] == 1
    assert repo.data("customers/a")["total_scenes_generated"] == 1


def test_a_summary_with_a_malformed_alerts_field_is_still_folded(repo: FakeRepo) -> None:
    # One odd summary must not stop its customer (and so its whole bucket) for good.
    repo.add("a", NOV, 1, scenes=1)
    fold(repo, FakePublisher())
    repo.data("summaries/a_2026-11")["alerts"] = 5
    repo.add("a", NOV, 3601, scenes=1)  # after the first fold's bound
    repo.server_now = NOW + timedelta(seconds=60)
    counts = fold(repo, FakePublisher(), run_id="r2")
    assert counts.failed_customers == 0
    assert repo.summary("a")["scenes_generated"] == 2


def test_a_conflict_is_read_again_and_planned_again(repo: FakeRepo) -> None:
    repo.add("a", NOV, 1, scenes=1)
    real_read = repo.read_state
    calls: list[int] = []

    def read_then_change(customer_id: str, months: Sequence[str]) -> CustomerState:
        got = real_read(customer_id, months)
        if not calls:  # someone writes the customer between our read and our commit
            repo.put("customers/a", {**repo.data("customers/a"), "total_scenes_generated": 10})
        calls.append(1)
        return got

    repo.read_state = read_then_change  # type: ignore[method-assign]
    assert fold(repo, FakePublisher()).conflicts == 1
    assert repo.data("customers/a")["total_scenes_generated"] == 11


def test_past_the_deadline_no_customer_starts_and_the_watermarks_stay(repo: FakeRepo) -> None:
    repo.add("a", NOV, 1, scenes=1)
    counts = fold(repo, FakePublisher(), deadline=0.0, clock=lambda: 1.0)
    assert counts.stopped_by_deadline
    assert repo.commits == []
    assert not any(p.startswith("state/") and p != "state/months" for p in repo.docs)


def test_a_capped_scan_stops_on_a_whole_commit_time_and_the_next_fold_goes_on(
    repo: FakeRepo,
) -> None:
    config = FoldConfig(buckets=1, lag=LAG, page_size=2, max_records=3, workers=1)
    for n in (1, 2, 3, 3, 3, 4, 5):
        repo.records.append((0, NewRecord("a", NOV, Sums(1, 1), at(n))))
    first = run_fold(repo, FakePublisher(), now=NOW, run_id="r1", config=config)
    assert first.capped
    assert (repo.summary("a")["scenes_generated"], repo.summary("a")["bound"]) == (5, at(3))
    run_fold(repo, FakePublisher(), now=NOW, run_id="r2", config=config)
    assert repo.summary("a")["scenes_generated"] == 7


# ---- alerts --------------------------------------------------------------------------------


def test_alerts_go_out_once_per_threshold(repo: FakeRepo) -> None:
    repo.put("customers/q", {"quota_period": NOV, "monthly_scene_quota": 10})
    for n in range(8):
        repo.add("q", NOV, n, scenes=1)
    pub = FakePublisher()
    fold(repo, pub)
    for n in range(8, 12):
        repo.add("q", NOV, 3600 + n, scenes=1)
    repo.server_now = NOW + timedelta(minutes=1)
    fold(repo, pub, run_id="r2")
    fold(repo, pub, run_id="r3")
    assert [(a["threshold_percent"], a["scenes_generated"]) for a in pub.sent] == [
        (80, 8),
        (100, 12),
    ]
    assert repo.summary("q")["alerts"] == [80, 100]


def test_a_failed_publish_is_released_and_the_next_fold_sends_it_once(repo: FakeRepo) -> None:
    repo.put("customers/q", {"quota_period": NOV, "monthly_scene_quota": 10})
    for n in range(8):
        repo.add("q", NOV, n, scenes=1)
    pub = FakePublisher()
    pub.fail = 1
    assert fold(repo, pub).alerts_failed == 1
    assert repo.data(f"alerts/q_{NOV}_80")["claimed_by"] is None
    assert fold(repo, pub, run_id="r2").alerts_published == 1
    assert fold(repo, pub, run_id="r3").alerts_published == 0
    assert [a["alert_id"] for a in pub.sent] == [f"q_{NOV}_80"]


def test_pending_markers_are_claimable_when_released_or_older_than_the_lease() -> None:
    lease = timedelta(seconds=120)
    pending = {"state": "pending", "claimed_by": "other", "claimed_at": NOW - timedelta(seconds=30)}
    assert not claimable(Marker("a", pending), NOW, "r", lease)
    assert claimable(Marker("a", pending), NOW + lease, "r", lease)
    released = {"state": "pending", "claimed_by": None, "claimed_at": None}
    assert claimable(Marker("a", released), NOW, "r", lease)
    assert not claimable(Marker("a", {"state": "published"}), NOW + lease, "r", lease)


def test_a_marker_that_exists_already_is_listed_not_created_again(repo: FakeRepo) -> None:
    repo.put("customers/o", {"quota_period": NOV, "monthly_scene_quota": 10})
    repo.put(f"alerts/o_{NOV}_80", {"state": "published"})
    for n in range(9):
        repo.add("o", NOV, n, scenes=1)
    pub = FakePublisher()
    counts = fold(repo, pub)
    assert (counts.failed_customers, counts.conflicts, counts.alerts_published) == (0, 1, 0)
    assert repo.summary("o")["alerts"] == [80]


# ---- the plan ------------------------------------------------------------------------------


def state(customer: dict[str, Any] | None, **summaries: dict[str, Any]) -> CustomerState:
    return CustomerState(
        None if customer is None else Snapshot(customer, 1),
        {m: Snapshot(d, 2) for m, d in summaries.items()},
    )


def planned(st_: CustomerState, month: str, added: Sums, now: datetime = NOW) -> plan.CustomerPlan:
    change = plan.MonthChange(added, NOW - LAG)
    return plan.plan_customer("c", st_, {month: change}, now=now, run_id="r", server_time="T")


def test_the_legacy_count_seeds_only_the_month_it_counts_and_only_once() -> None:
    legacy = {
        "scenes_generated_this_month": 45,
        "quota_reset_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    got = planned(state(legacy), NOV, Sums(5, 5))
    data = got.commit.summaries[0].data
    assert (data["seed_scenes"], data["scenes_total"]) == (45, 50)
    assert got.commit.customer is not None
    assert got.commit.customer.fields["scenes_generated_this_month"] == 50
    assert planned(state(legacy), OCT, Sums(5, 5)).commit.summaries[0].data["seed_scenes"] == 0
    later = planned(
        state({**legacy, "scenes_generated_this_month": 99}, **{NOV: dict(data)}), NOV, Sums()
    )
    assert later.commit.customer is not None
    assert later.commit.customer.fields["scenes_generated_this_month"] == 50


def test_the_month_rolls_over_and_never_moves_back() -> None:
    dec_now = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)
    late = planned(
        state({"quota_period": NOV, "scenes_generated_this_month": 9}), NOV, Sums(1, 1), dec_now
    )
    assert late.commit.customer is not None
    assert late.commit.customer.fields["scenes_generated_this_month"] == 0
    assert late.commit.customer.fields["quota_period"] == DEC
    assert late.commit.customer.stamp_reset
    ahead = planned(state({"quota_period": DEC, "scenes_generated_this_month": 9}), NOV, Sums(1, 1))
    assert ahead.commit.customer is not None
    assert "scenes_generated_this_month" not in ahead.commit.customer.fields


def test_an_unknown_customer_gets_a_summary_only() -> None:
    got = planned(state(None), NOV, Sums(2, 2))
    assert got.commit.customer is None
    assert got.commit.summaries[0].data["mirrored_scenes"] == 0  # added when it appears


def test_a_month_with_nothing_new_writes_nothing() -> None:
    first = planned(state({"quota_period": NOV}), NOV, Sums(2, 2))
    summary = dict(first.commit.summaries[0].data)
    assert first.commit.customer is not None
    customer = {"quota_period": NOV, **first.commit.customer.fields}
    assert planned(state(customer, **{NOV: summary}), NOV, Sums()).commit.empty


# ---- the month close and the recount -------------------------------------------------------


def test_the_first_fold_of_a_month_recounts_the_last_and_corrects_a_late_visible_record(
    repo: FakeRepo,
) -> None:
    for n in range(4):
        repo.add("a", NOV, n, scenes=1, cents=100)
    repo.add("b", NOV, 5, scenes=1)
    repo.hidden = {1}  # committed with an early stamp, visible only after the fold passed it
    fold(repo, FakePublisher())
    assert repo.summary("a")["scenes_generated"] == 3
    repo.hidden = set()
    dec = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
    repo.server_now = dec
    with log_lines() as lines:
        counts = fold(repo, FakePublisher(), run_id="r2", now=dec)
    assert (counts.closed_month, counts.months_recounted, counts.recount_corrections) == (NOV, 2, 1)
    summary = repo.summary("a")
    assert (summary["scenes_generated"], summary["cost_cents"], summary["closed"]) == (4, 400, True)
    assert repo.data("customers/a")["total_scenes_generated"] == 4  # the lifetime total too
    said = [r.getMessage() for r in lines if r.getMessage().startswith("recount of a 2026-11")]
    assert said == [
        "recount of a 2026-11: records 3 in the summary, 4 in its records, scenes_generated 3 "
        "in the summary, 4 in its records, cost_cents 300 in the summary, 400 in its records, "
        "compute_minutes 1.5 in the summary, 2.0 in its records, storage_gb 0.75 in the "
        "summary, 1.0 in its records; corrected"
    ]
    assert repo.data("state/months")["closed_through"] == NOV
    assert fold(repo, FakePublisher(), run_id="r3", now=dec).months_recounted == 0


def test_a_record_for_a_closed_month_is_still_counted_and_marked_late(repo: FakeRepo) -> None:
    repo.add("a", NOV, 1, scenes=1)
    fold(repo, FakePublisher())
    dec = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
    repo.server_now = dec
    fold(repo, FakePublisher(), run_id="r2", now=dec)
    repo.records.append((fold_bucket("a", NOV, 4), NewRecord("a", NOV, Sums(1, 1), dec)))
    repo.server_now = dec + timedelta(minutes=1)
    counts = fold(repo, FakePublisher(), run_id="r3", now=dec + timedelta(minutes=1))
    summary = repo.summary("a")
    assert (summary["scenes_generated"], summary["late_records"], counts.late_records) == (2, 1, 1)


def test_a_customers_first_record_for_a_closed_month_is_counted_as_late(repo: FakeRepo) -> None:
    repo.add("c", OCT, 10, episodes=4)  # October is closed (the fixture); c had no summary
    counts = fold(repo, FakePublisher())
    summary = repo.summary("c", OCT)
    assert (summary["episodes_generated"], summary["closed"], summary["late_records"]) == (
        4,
        True,
        1,
    )
    assert counts.late_records == 1


def test_the_close_resumes_from_its_cursor_after_a_failure(repo: FakeRepo) -> None:
    for cid in "abc":
        repo.add(cid, NOV, 1, scenes=1)
    fold(repo, FakePublisher())
    dec = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)
    repo.server_now = dec
    repo.fail_customers = {"b"}
    for cid in "abc":  # a difference in each, so every recount must write
        repo.records.append((fold_bucket(cid, NOV, 4), NewRecord(cid, NOV, Sums(1, 1), at(0))))
    first = fold(repo, FakePublisher(), run_id="r2", now=dec)
    assert first.closed_month is None
    repo.fail_customers = set()
    second = fold(repo, FakePublisher(), run_id="r3", now=dec)
    assert second.closed_month == NOV
    assert [repo.summary(c)["scenes_generated"] for c in "abc"] == [2, 2, 2]


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
def test_every_tick_runs_one_fold(
    data: Any, repo: FakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.add("a", NOV, 1, scenes=1)
    monkeypatch.setattr(entry, "_wiring", lambda: (repo, FakePublisher(), CONFIG))
    monkeypatch.setattr(entry, "datetime", type("Clock", (), {"now": staticmethod(lambda tz: NOW)}))
    entry.handle_cloud_event(tick(data), 300)
    assert repo.data("customers/a")["total_scenes_generated"] == 1


def test_a_fold_refused_for_good_is_acknowledged_and_logged(
    repo: FakeRepo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(buckets: Sequence[int]) -> list[Watermark]:
        raise PermanentError("scan of fold bucket 0: PermissionDenied: no")

    repo.read_watermarks = refuse  # type: ignore[method-assign]
    monkeypatch.setattr(entry, "_wiring", lambda: (repo, FakePublisher(), CONFIG))
    data = {"message": {"data": base64.b64encode(b"{}").decode(), "messageId": "9"}}
    entry.handle_cloud_event(tick(data), 300)  # returns: no 500 for what a retry cannot fix
    assert "fold refused for good" in caplog.text
    assert "PermissionDenied" in caplog.text


def test_amounts_folded_one_fold_at_a_time_agree_with_their_recount() -> None:
    # A summary stores its float sums as summed: rounded at every fold they drifted from the
    # records' sum, and the month's close reported a difference it could not show.
    records = [Sums(1, 1, 0, 10, round(n * 0.0123457, 7), n / 7) for n in range(1, 61)]
    stored = Sums()
    for record in records:
        stored = Sums.from_fields((stored + record).as_fields())
    recounted = sum(records, Sums())
    assert stored.same_as(recounted)
    assert stored.differences(recounted) == {}
    assert Sums(2).differences(Sums(3)) == {"records": (2, 3)}
    assert Sums(cost_cents=10**12).differences(Sums(cost_cents=10**12 + 1)) != {}  # exact
