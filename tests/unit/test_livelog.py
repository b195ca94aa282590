"""The live log of `make run`: quiet folds left out, a heartbeat a minute, columns that hold."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from devstack.decisions import decision_of, fold_activity_of
from devstack.livelog import (
    DURATION_WIDTH,
    FUNCTION_WIDTH,
    SUBJECT_WIDTH,
    TIME_WIDTH,
    FoldActivity,
    LiveLog,
    format_invocation,
    header,
)
from functions.fold.ports import FoldCounts

T0 = 1_790_000_000.0
DECISION_AT = TIME_WIDTH + 2 + FUNCTION_WIDTH + 1 + SUBJECT_WIDTH + 1 + DURATION_WIDTH + 2
"""Where the decision column starts in every line."""


def _fold(at: float, decision: str = "folded", status: int = 200, **counts: int) -> dict[str, Any]:
    return {
        "function": "fold-usage-counters",
        "document": "usage-fold-schedule msg 7",
        "status": status,
        "decision": decision,
        "duration_ms": 12.5,
        "time": at,
        "fold": {"records_read": 0, **counts},
    }


def _usage(at: float, decision: str = "recorded", document: str = "usage-events msg 9") -> Any:
    return {
        "function": "on-usage-event",
        "document": document,
        "status": 200,
        "decision": decision,
        "duration_ms": 8.25,
        "time": at,
    }


def test_a_fold_that_changed_nothing_prints_no_line() -> None:
    live = LiveLog()
    assert live.lines([_fold(T0), _fold(T0 + 2, records_read=4)], T0 + 3) == []


@pytest.mark.parametrize(
    ("counts", "shown"),
    [
        ({"customers_written": 1}, "1 customer written"),
        ({"months_written": 2}, "2 months written"),
        ({"alerts_sent": 1}, "1 alert sent"),
    ],
)
def test_a_fold_that_wrote_or_alerted_prints_its_counts(counts: dict[str, int], shown: str) -> None:
    [line] = LiveLog().lines([_fold(T0, records_read=12, **counts)], T0 + 1)
    decision = line[DECISION_AT:]
    assert decision.startswith("folded: ")
    assert shown in decision
    assert "12 records read" in decision


def test_a_failed_or_partial_fold_is_always_shown() -> None:
    live = LiveLog()
    lines = live.lines([_fold(T0, status=500, decision="error"), _fold(T0, "folded-partly")], T0)
    assert len(lines) == 2
    assert lines[0][DECISION_AT:].startswith("HTTP 500 error")


def test_quiet_folds_get_one_heartbeat_a_minute_at_most() -> None:
    live = LiveLog(heartbeat=60)
    said = []
    for n in range(91):  # three minutes of folds every 2 s, nothing new
        at = T0 + 2 * n
        said += live.lines([_fold(at)], at + 0.1)
    assert len(said) == 3, said
    words = [line[DECISION_AT:].split(" since ")[0] for line in said]
    assert words == ["nothing new (31 folds", "nothing new (30 folds", "nothing new (30 folds"]
    assert all(" fold-usage-counters " in line for line in said)


def test_a_shown_fold_restarts_the_quiet_minute() -> None:
    live = LiveLog(heartbeat=60)
    assert live.lines([_fold(T0)], T0) == []
    assert len(live.lines([_fold(T0 + 50, customers_written=1)], T0 + 50)) == 1
    assert live.lines([_fold(T0 + 70)], T0 + 70) == []  # 20 s after the shown one
    assert len(live.lines([_fold(T0 + 112)], T0 + 112)) == 1


def test_other_functions_are_shown_one_line_each_in_order() -> None:
    lines = LiveLog().lines([_usage(T0, "recorded"), _usage(T0 + 1, "duplicate")], T0 + 2)
    assert [line[DECISION_AT:] for line in lines] == ["recorded", "duplicate"]


def test_long_documents_and_decisions_keep_the_columns() -> None:
    long_doc = "customers/" + "x" * 80
    long_decision = "rejected:invalid_event," * 4
    lines = [
        header(),
        format_invocation(_usage(T0, long_decision, long_doc)),
        format_invocation(_usage(T0, "recorded")),
        format_invocation(_fold(T0, customers_written=1, months_written=1, records_read=3)),
    ]
    assert lines[0][DECISION_AT:] == "decision"
    for line in lines[1:]:
        assert line[TIME_WIDTH : TIME_WIDTH + 2] == "  "
        duration = line[DECISION_AT - 2 - DURATION_WIDTH : DECISION_AT - 2]
        assert duration.endswith(" ms"), line
        assert line[DECISION_AT - 2 : DECISION_AT] == "  "
    assert "…" in lines[1]
    assert lines[1][DECISION_AT:] == long_decision


def _record(message: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("blueprint", logging.INFO, __file__, 1, message, None, None)
    record.fields = fields
    return record


def test_the_fold_counts_are_read_from_the_folds_own_log_fields() -> None:
    counts = FoldCounts(
        records_scanned=12, summaries_written=2, customers_written=1, alerts_published=1
    )
    record = _record("usage counters folded", decision="folded", **counts.log_fields())
    assert fold_activity_of(record) == {
        "customers_written": 1,
        "months_written": 2,
        "alerts_sent": 1,
        "records_read": 12,
    }
    assert FoldActivity(**fold_activity_of(record) or {}).changed
    assert fold_activity_of(_record("usage recorded", decision="recorded")) is None


@pytest.mark.parametrize(
    ("fields", "decision"),
    [
        (
            {"period": "2026-12", "complete": True, "seen": 4, "reset": 2, "skipped": 2},
            "reset 2026-12: reset 2, skipped 2",
        ),
        (
            {
                "period": "2026-12",
                "complete": True,
                "seen": 5,
                "reset": 3,
                "skipped": 0,
                "unlimited": 1,
                "invalid": 0,
                "errors": 1,
            },
            "reset 2026-12: reset 3, skipped 0, unlimited 1, errors 1",
        ),
        (
            {"period": "2026-12", "dry_run": True, "complete": False, "seen": 400, "reset": 7},
            "would-reset 2026-12: reset 7, skipped 0, incomplete",
        ),
    ],
)
def test_reset_outcomes_use_the_words_of_inspect_resets(
    fields: dict[str, object], decision: str
) -> None:
    assert decision_of(_record("quota reset 2026-12: ...", **fields)) == decision
