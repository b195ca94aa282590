"""The monthly reset service over an in-memory repository; schedule message decoding."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from functions.reset import (
    AuditState,
    CustomerDoc,
    ResetIncompleteError,
    ResetWrite,
    ScheduleMessageError,
    decode_schedule_event,
    run_reset,
)
from functions.reset import entry as reset_entry
from functions.reset import service as reset_service
from shared import quota

NOW = datetime(2026, 12, 1, 0, 0, 3, tzinfo=UTC)
P = "2026-12"


class FakeRepo:
    """Customers as (data, version); `update_time` is the version, as a precondition would be."""

    def __init__(self, docs: Mapping[str, dict[str, Any]]) -> None:
        self.docs: dict[str, tuple[dict[str, Any], int]] = {
            k: (dict(v), 1) for k, v in docs.items()
        }
        self.audit: dict[str, Any] | None = None
        self.write_calls = 0
        self.writes_applied = 0
        self.scans: list[str | None] = []
        self.before_write: Callable[[ResetWrite], None] | None = None
        self.fail_ids: set[str] = set()
        self.summaries: dict[str, int] = {}
        """The fold's month summaries: customer -> `scenes_total` of the period."""

    def scan(self, start_after: str | None) -> Iterator[CustomerDoc]:
        self.scans.append(start_after)
        for i in sorted(i for i in self.docs if start_after is None or i > start_after):
            if i in self.docs:
                yield CustomerDoc(i, dict(self.docs[i][0]), self.docs[i][1])

    def get(self, customer_id: str) -> CustomerDoc | None:
        if customer_id not in self.docs:
            return None
        data, version = self.docs[customer_id]
        return CustomerDoc(customer_id, dict(data), version)

    def month_counts(self, customer_ids: Sequence[str], period: str) -> dict[str, int]:
        return {c: self.summaries[c] for c in customer_ids if c in self.summaries}

    def write_resets(self, writes: Sequence[ResetWrite]) -> list[int]:
        self.write_calls += 1
        out = []
        for w in writes:
            if self.before_write is not None:
                self.before_write(w)
            if w.customer_id in self.fail_ids:
                out.append(14)  # UNAVAILABLE
                continue
            data, version = self.docs[w.customer_id]
            if version != w.update_time:
                out.append(9)  # FAILED_PRECONDITION
                continue
            data = {**data, quota.THIS_MONTH_FIELD: w.value, "quota_period": w.period}
            data["quota_reset_at"] = NOW
            self.docs[w.customer_id] = (data, version + 1)
            self.writes_applied += 1
            out.append(0)
        return out

    def fold(self, customer_id: str) -> None:
        """A fold commit: one more scene of the period in its month summary, and the customer
        document moved (its lifetime total)."""
        self.summaries[customer_id] = self.summaries.get(customer_id, 0) + 1
        data, version = self.docs[customer_id]
        data = {**data, "total_scenes_generated": data.get("total_scenes_generated", 0) + 1}
        self.docs[customer_id] = (data, version + 1)

    def start_run(self, period: str, run: Mapping[str, Any]) -> AuditState:
        if self.audit is None:
            self.audit = {"period": period, "runs": 0, "cursor": None, "customers_reset": 0}
        self.audit["runs"] += 1
        if self.audit["cursor"] is None:
            self.audit.update(skipped=0, errors=0, invalid=0, unlimited=0, issues=[])
            self.audit.pop("finished", None)
        return AuditState(self.audit["cursor"], "finished" in self.audit, 0)

    def record_progress(
        self, period: str, counts: Mapping[str, int], cursor: str | None, issues: list[Any]
    ) -> None:
        assert self.audit is not None
        for name, value in counts.items():
            key = "customers_reset" if name == "reset" else name
            self.audit[key] = self.audit.get(key, 0) + value
        self.audit["cursor"] = cursor
        self.audit["issues"] = self.audit.get("issues", []) + issues

    def finish(self, period: str, run: Mapping[str, Any]) -> None:
        assert self.audit is not None
        in_period = sum(1 for d, _ in self.docs.values() if d.get("quota_period") == period)
        self.audit.update(cursor=None, finished=True, last_run=dict(run), customers_reset=in_period)


def cust(**over: Any) -> dict[str, Any]:
    return {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 100, **over}


def stale(n: int) -> dict[str, Any]:
    """A customer still in November with `n` scenes."""
    return cust(quota_period="2026-11", scenes_generated_this_month=n)


def many(n: int) -> FakeRepo:
    """`n` customers in November; customer i has i % 3 December scenes in its month summary."""
    repo = FakeRepo({f"c{i:04d}": stale(i % 7) for i in range(n)})
    repo.summaries = {f"c{i:04d}": i % 3 for i in range(n) if i % 3}
    return repo


# --- the service ------------------------------------------------------------------------------


def test_resets_each_customer_to_the_new_months_count_and_finishes_the_audit() -> None:
    repo = many(23)
    summary = run_reset(repo, P, NOW, page_size=5)
    assert summary.complete
    assert (summary.reset, summary.skipped, summary.errors, summary.seen) == (23, 0, 0, 23)
    for i in range(23):
        data, _ = repo.docs[f"c{i:04d}"]
        assert data[quota.THIS_MONTH_FIELD] == i % 3  # December scenes already folded, not 0
        assert data["quota_period"] == P
    assert repo.audit is not None
    assert repo.audit["customers_reset"] == 23
    assert repo.audit["finished"]
    assert repo.audit["cursor"] is None
    assert repo.audit["last_run"]["reset"] == 23


def test_second_run_writes_no_customer() -> None:
    repo = many(12)
    run_reset(repo, P, NOW, page_size=5)
    applied, calls = repo.writes_applied, repo.write_calls
    summary = run_reset(repo, P, NOW, page_size=5)
    assert (summary.reset, summary.skipped) == (0, 12)
    assert (repo.writes_applied, repo.write_calls) == (applied, calls)
    assert repo.audit is not None
    assert repo.audit["runs"] == 2
    assert repo.audit["customers_reset"] == 12


def test_deadline_stops_cleanly_and_the_next_delivery_continues_from_the_cursor() -> None:
    repo = many(20)
    # The clock advances 100 per page written: the third page would start past the deadline.
    first = run_reset(
        repo, P, NOW, page_size=5, deadline=150.0, clock=lambda: 100.0 * repo.write_calls
    )
    assert not first.complete
    assert first.stopped_by_deadline
    assert first.reset == 10
    assert first.cursor == "c0009"
    with pytest.raises(ResetIncompleteError, match="c0009"):
        reset_service.raise_if_incomplete(first)
    assert repo.audit is not None
    assert repo.audit["cursor"] == "c0009"
    second = run_reset(repo, P, NOW, page_size=5)
    assert second.complete
    assert second.resumed_from == "c0009"
    assert (second.reset, second.skipped) == (10, 0)  # started after the cursor
    assert repo.scans == [None, "c0009"]
    assert repo.audit["customers_reset"] == 20
    assert all(d[quota.THIS_MONTH_FIELD] == int(k[1:]) % 3 for k, (d, _) in repo.docs.items())


def test_a_fold_commit_between_read_and_write_is_kept() -> None:
    repo = many(6)
    hit: list[str] = []

    def fold_lands_first(write: ResetWrite) -> None:
        if write.customer_id == "c0002" and not hit:
            hit.append(write.customer_id)
            repo.fold("c0002")  # a December scene folded, before the period moved

    repo.before_write = fold_lands_first
    summary = run_reset(repo, P, NOW)
    assert summary.retried == 1
    assert summary.reset == 6
    data, _ = repo.docs["c0002"]
    assert data[quota.THIS_MONTH_FIELD] == repo.summaries["c0002"] == 2 % 3 + 1


def test_a_customer_reset_by_someone_else_meanwhile_is_skipped_not_written_twice() -> None:
    repo = many(3)

    def other_run_wins(write: ResetWrite) -> None:
        if write.customer_id == "c0001" and repo.docs["c0001"][0].get("quota_period") != P:
            data, _ = repo.docs["c0001"]
            repo.docs["c0001"] = ({**data, "quota_period": P, "scenes_generated_this_month": 0}, 9)

    repo.before_write = other_run_wins
    summary = run_reset(repo, P, NOW)
    assert (summary.reset, summary.skipped, summary.retried) == (2, 1, 1)
    assert repo.docs["c0001"][1] == 9  # untouched after the other writer


def test_a_busy_customer_never_stalls_the_pages_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reset_service.time, "sleep", lambda s: None)
    repo = many(10)
    repo.fail_ids = {"c0002"}
    with pytest.raises(ResetIncompleteError, match="busy"):
        run_reset(repo, P, NOW, page_size=5)
    assert repo.audit is not None
    assert repo.audit["cursor"] is None  # the next delivery starts a new pass
    assert [i["customer_id"] for i in repo.audit["issues"] if i["kind"] == "busy"] == ["c0002"]
    assert repo.audit["customers_reset"] == 9  # the page after it was reset all the same
    assert repo.docs["c0002"][0].get("quota_period") != P
    repo.fail_ids = set()
    summary = run_reset(repo, P, NOW, page_size=5)
    assert summary.complete
    assert (summary.reset, summary.skipped) == (1, 9)  # each customer reset exactly once
    assert repo.audit["customers_reset"] == 10


def test_the_roll_over_takes_the_new_months_count_from_the_folds_summary() -> None:
    repo = FakeRepo({"a": stale(30), "b": stale(30), "c": stale(30)})
    repo.summaries = {"a": 7, "b": 0}  # c: no summary yet (no scene this month)
    summary = run_reset(repo, P, NOW)
    assert summary.reset == 3
    values = {k: d[quota.THIS_MONTH_FIELD] for k, (d, _) in repo.docs.items()}
    assert values == {"a": 7, "b": 0, "c": 0}  # never November's 30
    assert all(d["quota_period"] == P for d, _ in repo.docs.values())


def test_unlimited_missing_and_invalid_documents_are_handled_and_reported() -> None:
    repo = FakeRepo(
        {
            "a-unlimited": stale(4) | {"monthly_scene_quota": -1},
            "b-no-quota": {"schema_version": 1, "bundle_tier": "pro"},  # no counters at all
            "c-bad-tier": stale(2) | {"bundle_tier": "platinum"},  # invalid elsewhere: reset
            "d-bad-period": stale(3) | {"quota_period": "November"},  # counter unusable: error
            # a field the data model does not have: not read, reported by the model check
            "e-bad-counts": stale(3) | {"scene_counts_by_month": {P: -4}},
            "f-empty": {},
            "g-current": cust(quota_period=P, scenes_generated_this_month=9),
            "h-bad-counter": stale(1) | {"scenes_generated_this_month": "many"},
        }
    )
    summary = run_reset(repo, P, NOW)
    assert summary.complete
    assert summary.reset == 6  # a, b, c, e, f, h
    assert summary.skipped == 1  # g
    assert summary.errors == 1  # d: not touched
    assert summary.unlimited == 3  # a (-1), b and f (absent)
    assert summary.invalid == 4  # c, e, f (required fields missing), h
    assert repo.docs["a-unlimited"][0][quota.THIS_MONTH_FIELD] == 0
    assert repo.docs["b-no-quota"][0][quota.THIS_MONTH_FIELD] == 0
    assert repo.docs["h-bad-counter"][0][quota.THIS_MONTH_FIELD] == 0
    assert repo.docs["d-bad-period"][1] == 1
    assert repo.docs["e-bad-counts"][0][quota.THIS_MONTH_FIELD] == 0
    assert repo.docs["g-current"][0][quota.THIS_MONTH_FIELD] == 9
    assert repo.audit is not None
    issues = {(i["customer_id"], i["kind"]) for i in repo.audit["issues"]}
    assert issues == {
        ("c-bad-tier", "invalid"),
        ("d-bad-period", "error"),
        ("e-bad-counts", "invalid"),
        ("f-empty", "invalid"),
        ("h-bad-counter", "invalid"),
    }
    detail = next(i["detail"] for i in repo.audit["issues"] if i["customer_id"] == "d-bad-period")
    assert "quota_period" in detail
    assert "November" in detail


def test_legacy_documents_use_quota_reset_at_for_their_period() -> None:
    repo = FakeRepo(
        {
            "old": cust(
                scenes_generated_this_month=5, quota_reset_at=datetime(2026, 11, 1, tzinfo=UTC)
            ),
            "fresh": cust(
                scenes_generated_this_month=5, quota_reset_at=datetime(2026, 12, 1, tzinfo=UTC)
            ),
        }
    )
    summary = run_reset(repo, P, NOW)
    assert (summary.reset, summary.skipped) == (1, 1)
    assert repo.docs["fresh"][0][quota.THIS_MONTH_FIELD] == 5


def test_dry_run_counts_and_writes_nothing() -> None:
    repo = many(9)
    repo.docs["c0000"] = (stale(1) | {"quota_period": P}, 1)
    seen: list[int] = []
    summary = run_reset(
        repo, P, NOW, dry_run=True, page_size=4, progress=lambda s: seen.append(s.seen)
    )
    assert (summary.reset, summary.skipped, summary.dry_run) == (8, 1, True)
    assert seen == [4, 8, 9]
    assert repo.write_calls == 0
    assert repo.audit is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        run_reset(many(1), "2026-13", NOW)
    with pytest.raises(ValueError, match="page_size"):
        run_reset(many(1), P, NOW, page_size=501)


# --- the schedule message ---------------------------------------------------------------------


def event(message: dict[str, Any], time: str | None = "2026-12-01T00:00:01Z") -> CloudEvent:
    attrs = {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/x"}
    attrs["id"] = "m-1"
    if time:
        attrs["time"] = time
    ev = CloudEvent(attrs, {"message": message, "subscription": "projects/p/subscriptions/s"})
    if not time:
        del ev["time"]  # the library would default it to the clock
    return ev


def b64(body: Any) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return base64.b64encode(raw).decode()


def test_period_is_the_month_of_the_publish_time() -> None:
    msg = {"data": b64({"job": "monthly-quota-reset"}), "messageId": "42"}
    msg["publishTime"] = "2026-12-01T00:00:00.52Z"
    req = decode_schedule_event(event(msg, time="2027-01-05T10:00:00Z"))  # delayed delivery
    assert (req.period, req.message_id, req.explicit) == (P, "42", False)


def test_explicit_period_wins_and_a_future_or_bad_one_is_refused() -> None:
    msg = {"data": b64({"period": "2026-10"}), "publishTime": "2026-12-15T08:00:00Z"}
    assert decode_schedule_event(event(msg)).period == "2026-10"
    assert decode_schedule_event(event(msg)).explicit
    future = {"data": b64({"period": "2027-01"}), "publishTime": "2026-12-15T08:00:00Z"}
    with pytest.raises(ScheduleMessageError, match="future"):
        decode_schedule_event(event(future))
    with pytest.raises(ScheduleMessageError, match="YYYY-MM"):
        decode_schedule_event(event({"data": b64({"period": "12/2026"})}))


def test_snake_case_fields_and_no_data_fall_back_to_the_publish_time() -> None:
    msg = {"data": b64({"job": "x"}), "publish_time": "2026-11-30T23:59:59Z"}
    assert decode_schedule_event(event(msg)).period == "2026-11"
    assert decode_schedule_event(event({}, time="2026-12-01T00:00:00Z")).period == P


def test_an_event_time_given_as_a_datetime_still_decides_the_month() -> None:
    """An event object whose `time` is already a datetime (not RFC 3339 text) is read alike."""

    class ParsedTime(dict[str, Any]):
        data: Any = None

    parsed = ParsedTime(id="m-1", type="google.cloud.pubsub.topic.v1.messagePublished")
    parsed.data = {"message": {}, "subscription": "projects/p/subscriptions/s"}
    parsed["time"] = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    assert decode_schedule_event(parsed).period == P


def test_a_body_that_is_not_a_json_object_is_refused_not_taken_as_the_scheduled_month() -> None:
    """A stray message on the topic must not reset customers (the Scheduler's body
    is always `{"job": ...}`)."""
    for data in (b"\xff not json", b"[" * 1000, b"[1]", b'"2026-12"', b"12"):
        msg = {"data": b64(data), "publishTime": "2026-11-30T23:59:59Z"}
        with pytest.raises(ScheduleMessageError, match="JSON object"):
            decode_schedule_event(event(msg))


def test_a_message_without_any_time_is_refused() -> None:
    with pytest.raises(ScheduleMessageError):
        decode_schedule_event(event({"data": b64({})}, time=None))
    bad = CloudEvent({"type": "t", "source": "s", "id": "1"}, {"nope": 1})
    with pytest.raises(ScheduleMessageError):
        decode_schedule_event(bad)


def test_handler_acknowledges_a_refused_message_without_touching_firestore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions import main
    from tests.limits_support import FakeScheduleRepo

    class NoRun(FakeScheduleRepo):
        def scan(self, start_after: str | None) -> Iterator[CustomerDoc]:
            raise AssertionError("must not read customers")

    repo = NoRun()
    monkeypatch.setattr(reset_entry, "default_repository", lambda: repo)
    main.reset_monthly_quotas(event({"data": b64({"period": "bad"})}))
    [rejection] = repo.rejections.values()
    assert "period='bad'" in rejection.reason
    assert repo.audits == {}


def test_handler_raises_for_redelivery_when_the_run_is_incomplete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions import main

    repo = many(3)
    monkeypatch.setattr(reset_entry, "default_repository", lambda: repo)
    monkeypatch.setattr(reset_entry, "utc_now", lambda: NOW)
    monkeypatch.setattr(reset_entry, "function_deadline", lambda timeout: -1.0)  # already past
    with pytest.raises(ResetIncompleteError):
        main.reset_monthly_quotas(event({"publishTime": "2026-12-01T00:00:00Z"}))
    monkeypatch.setattr(reset_entry, "function_deadline", lambda timeout: 1e18)
    main.reset_monthly_quotas(event({"publishTime": "2026-12-01T00:00:00Z"}))
    assert all(d["quota_period"] == P for d, _ in repo.docs.values())


# --- documents from before the suite (neither quota_period nor quota_reset_at) ------------------


class TimedRepo(FakeRepo):
    """FakeRepo whose update times are real timestamps (as Firestore's are)."""

    def __init__(self, docs: Mapping[str, tuple[dict[str, Any], datetime]]) -> None:
        super().__init__({})
        self.times = {k: t for k, (_, t) in docs.items()}
        self.docs = {k: (dict(d), 1) for k, (d, _) in docs.items()}
        self.clock_after_write = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)

    def scan(self, start_after: str | None) -> Iterator[CustomerDoc]:
        for doc in super().scan(start_after):
            yield CustomerDoc(doc.id, doc.data, self.times[doc.id])

    def get(self, customer_id: str) -> CustomerDoc | None:
        doc = super().get(customer_id)
        return None if doc is None else CustomerDoc(doc.id, doc.data, self.times[doc.id])

    def write_resets(self, writes: Sequence[ResetWrite]) -> list[int]:
        out = []
        for w in writes:
            if self.before_write is not None:
                self.before_write(w)
            if self.times[w.customer_id] != w.update_time:
                out.append(9)
                continue
            data, version = self.docs[w.customer_id]
            data = {**data, quota.THIS_MONTH_FIELD: w.value, "quota_period": w.period}
            self.docs[w.customer_id] = (data, version + 1)
            self.times[w.customer_id] = self.clock_after_write
            self.writes_applied += 1
            out.append(0)
        return out

    def touch(self, customer_id: str, at: datetime) -> None:
        """Another write on a legacy document (an operator's edit): it counts no scene."""
        data, version = self.docs[customer_id]
        self.docs[customer_id] = ({**data, "organization_name": "Edited"}, version + 1)
        self.times[customer_id] = at


MID = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)  # a manual run in the middle of December


def legacy(n: int, **over: Any) -> dict[str, Any]:
    return cust(scenes_generated_this_month=n, **over)


def test_manual_mid_month_run_keeps_the_seeded_count_so_far_this_month() -> None:
    repo = TimedRepo(
        {
            # seeded / migrated in December: 45 is December's count so far
            "a-seed-this-month": (legacy(45), datetime(2026, 12, 3, tzinfo=UTC)),
            # seeded in December, and its month summary holds more (the seed + 2 records)
            "b-seed-and-records": (legacy(47), datetime(2026, 12, 14, tzinfo=UTC)),
            # last written in November: 30 is November's count
            "c-seed-last-month": (legacy(30), datetime(2026, 11, 20, tzinfo=UTC)),
            # written after the run was asked for: cannot tell, the month summary's count
            "e-written-during": (legacy(9), datetime(2026, 12, 15, 11, 0, tzinfo=UTC)),
        }
    )
    repo.summaries = {"b-seed-and-records": 49, "e-written-during": 2}
    summary = run_reset(repo, P, MID)
    values = {k: (d[quota.THIS_MONTH_FIELD], d["quota_period"]) for k, (d, _) in repo.docs.items()}
    assert values == {
        "a-seed-this-month": (45, P),
        "b-seed-and-records": (49, P),
        "c-seed-last-month": (0, P),
        "e-written-during": (2, P),
    }
    assert (summary.reset, summary.kept) == (4, 2)
    assert repo.audit is not None
    assert repo.audit["kept"] == 2


def test_scheduled_run_resets_legacy_documents_written_in_the_new_month_before_it_reached_them() -> (
    None
):
    schedule = datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC)
    repo = TimedRepo(
        {
            "a-quiet": (legacy(80), datetime(2026, 11, 29, tzinfo=UTC)),
            # written at 00:00:02, before the reset reached it; one December scene folded
            "b-busy": (legacy(81), schedule.replace(second=2)),
        }
    )
    repo.summaries = {"b-busy": 1}
    summary = run_reset(repo, P, schedule.replace(second=5), as_of=schedule)
    assert {k: d[quota.THIS_MONTH_FIELD] for k, (d, _) in repo.docs.items()} == {
        "a-quiet": 0,
        "b-busy": 1,
    }
    assert summary.kept == 0


def test_a_past_month_run_leaves_a_legacy_document_counting_a_later_month() -> None:
    repo = TimedRepo({"new": (legacy(12), datetime(2026, 12, 3, tzinfo=UTC))})
    summary = run_reset(repo, "2026-11", MID)
    assert (summary.reset, summary.skipped) == (0, 1)
    assert repo.docs["new"][0] == legacy(12)


def test_kept_seed_survives_a_write_racing_the_reset() -> None:
    repo = TimedRepo({"a": (legacy(45), datetime(2026, 12, 3, tzinfo=UTC))})

    def edit_lands_first(write: ResetWrite) -> None:
        if repo.docs["a"][0].get("organization_name") is None:
            repo.touch("a", at=datetime(2026, 12, 15, 10, 0, 1, tzinfo=UTC))  # after as_of

    repo.before_write = edit_lands_first
    summary = run_reset(repo, P, MID)
    assert summary.retried == 1
    assert (summary.reset, summary.kept) == (1, 1)
    assert repo.docs["a"][0][quota.THIS_MONTH_FIELD] == 45


def test_a_future_month_is_refused() -> None:
    with pytest.raises(ValueError, match="future"):
        run_reset(many(1), "2027-01", NOW)
    with pytest.raises(ValueError, match="future"):
        run_reset(many(1), "2027-01", NOW, dry_run=True)


def test_schedule_data_that_is_not_base64_is_refused_not_guessed() -> None:
    """One strict Pub/Sub decoder (functions.edge.pubsub) for usage and reset alike: stray
    characters in `data` make the envelope unusable (the lenient decode guessed the month)."""
    msg = {"data": "not base64 at all!", "publishTime": "2026-12-01T00:00:00Z"}
    with pytest.raises(ScheduleMessageError, match=r"message\.data"):
        decode_schedule_event(event(msg))


def test_handler_acknowledges_a_request_firestore_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PermissionDenied and the like (PermanentError): logged and acknowledged, never a 500
    that redelivers for days; the audit's cursor lets a manual run continue."""
    from functions import main
    from shared.errors import PermanentError

    class Refusing(FakeRepo):
        def write_resets(self, writes: Sequence[ResetWrite]) -> list[int]:
            raise PermanentError("Firestore: resetting customers: PermissionDenied: 403")

    repo = Refusing({"c1": stale(1)})
    monkeypatch.setattr(reset_entry, "default_repository", lambda: repo)
    monkeypatch.setattr(reset_entry, "utc_now", lambda: NOW)
    main.reset_monthly_quotas(event({"publishTime": "2026-12-01T00:00:00Z"}))
    assert repo.docs["c1"][0]["quota_period"] == "2026-11"


def test_an_instance_clock_a_moment_behind_the_scheduler_still_resets_the_new_month() -> None:
    # The month's one schedule message must not be refused for good over 5 ms of clock skew.
    msg = {"data": b64({"job": "monthly-quota-reset"}), "publishTime": "2026-12-01T00:00:00Z"}
    behind = datetime(2026, 11, 30, 23, 59, 59, 995000, tzinfo=UTC)
    assert decode_schedule_event(event(msg), now=behind).period == P
    explicit = {"data": b64({"period": P}), "publishTime": "2026-12-01T00:00:00Z"}
    assert decode_schedule_event(event(explicit), now=behind).period == P
    later = {"data": b64({"period": "2027-01"}), "publishTime": "2026-12-01T00:00:00Z"}
    with pytest.raises(ScheduleMessageError, match="future"):
        decode_schedule_event(event(later), now=behind)
