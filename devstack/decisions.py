"""What the live log of `make run` shows as a function's decision, read from its log lines.

Most functions log a `decision` field (shared.logs). Two did not say enough: the monthly reset
logs its summary without one (the live log showed `-`), and a rejected usage message said only
`rejected`. Their decision is derived here from what they do log; the functions stay unaware of
the host.
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
        verb = "would-reset" if fields.get("dry_run") else "reset"
        done = "" if fields.get("complete") else " incomplete"
        return f"{verb} {fields['period']}: {fields['reset']}/{fields['seen']}{done}"
    if record.getMessage().startswith("quota reset refused"):
        return "reset-refused"
    return None
