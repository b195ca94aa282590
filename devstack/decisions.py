"""What the live log of `make run` shows as a function's decision, read from its log lines.

Most functions log a `decision` field (shared.logs). Two did not say enough: the monthly reset
logs its summary without one (the live log showed `-`), and a rejected usage message said only
`rejected`. Their decision is derived here from what they do log; the functions stay unaware of
the host. The fold's counts are read here too, so the live log can leave out folds that did
nothing (`devstack.livelog`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

_REJECTED: Final = re.compile(r"rejected: (?P<kind>[a-z_]+):")
"""`usage message rejected: KIND: field=value ...` (the rejection's reason starts with its kind)."""

_SUMMARY_FIELDS: Final = frozenset({"period", "seen", "reset", "complete"})
"""The fields of the reset's summary line (`ResetSummary.log_fields`)."""

_RESET_COUNTS: Final = ("reset", "skipped", "unlimited", "invalid", "errors")
"""The counts `blueprint inspect resets` shows, in its words and order; the first two always."""

FOLD_FIELDS: Final = {
    "customers_written": "customers_written",
    "months_written": "summaries_written",
    "alerts_sent": "alerts_published",
    "records_read": "records_scanned",
}
"""The live log's fold counts (`devstack.livelog.FoldActivity`) <- the fold's log fields: the
one place that knows what the fold's summary line calls them."""


def decision_of(record: logging.LogRecord) -> str | None:
    """The decision a log line states, or None when it states none."""
    fields: Mapping[str, Any] = getattr(record, "fields", None) or {}
    decision = fields.get("decision")
    if decision in ("rejected", "rejected-before"):
        kind = fields.get("kind") or fields.get("rejection_kind")
        if kind is None:
            found = _REJECTED.search(record.getMessage())
            kind = found["kind"] if found else None
        return f"{decision}:{kind}" if kind else str(decision)
    if decision:
        return str(decision)
    if fields.keys() >= _SUMMARY_FIELDS:
        return reset_decision(fields)
    if record.getMessage().startswith("quota reset refused"):
        return "reset-refused"
    return None


def reset_decision(fields: Mapping[str, Any]) -> str:
    """`reset 2026-12: reset 2, skipped 2` (non-zero unlimited, invalid, errors follow), with
    the same words and meaning as `blueprint inspect resets`; `incomplete` when cut short."""
    verb = "would-reset" if fields.get("dry_run") else "reset"
    counts = [
        f"{name} {fields.get(name, 0)}"
        for i, name in enumerate(_RESET_COUNTS)
        if i < 2 or fields.get(name)
    ]
    done = "" if fields.get("complete") else ", incomplete"
    return f"{verb} {fields['period']}: {', '.join(counts)}{done}"


def fold_activity_of(record: logging.LogRecord) -> dict[str, int] | None:
    """The fold's counts (FOLD_FIELDS' keys) when this is its summary line, else None."""
    fields: Mapping[str, Any] = getattr(record, "fields", None) or {}
    if not any(name in fields for name in FOLD_FIELDS.values()):
        return None
    return {ours: int(fields.get(theirs) or 0) for ours, theirs in FOLD_FIELDS.items()}
