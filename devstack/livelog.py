"""The live log of `make run`: one line per invocation in fixed columns, quiet folds left out.

The suite folds every 2 s; a line for each fold that found nothing buried the lines that
matter. A fold is shown when it wrote or alerted something (or failed); the others are counted
and reported at most once a minute as `nothing new`. The decision is the last column, so a
long one never shifts the columns after it.

What a fold did reaches this module as `FoldActivity`, four counts the functions host reads
from the fold's log line (`devstack.decisions.fold_activity_of`): when the fold's result
changes, only that mapping changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from functions.table import FUNCTIONS

FOLD_FUNCTION: Final = "fold-usage-counters"
HEARTBEAT_SECONDS: Final = 60.0
"""At most one `nothing new` line per this many seconds of quiet folds."""

TIME_WIDTH: Final = 12
FUNCTION_WIDTH: Final = max(len(spec.name) for spec in FUNCTIONS)
SUBJECT_WIDTH: Final = 36
DURATION_WIDTH: Final = 11


@dataclasses.dataclass(frozen=True)
class FoldActivity:
    """What one fold did, in the words the live log uses."""

    customers_written: int = 0
    months_written: int = 0
    alerts_sent: int = 0
    records_read: int = 0

    @property
    def changed(self) -> bool:
        """True when the fold wrote a document or sent an alert."""
        return bool(self.customers_written or self.months_written or self.alerts_sent)

    def summary(self) -> str:
        """`1 customer written, 1 month written, 0 alerts sent, 12 records read`."""
        return ", ".join(
            (
                _count(self.customers_written, "customer", "written"),
                _count(self.months_written, "month", "written"),
                _count(self.alerts_sent, "alert", "sent"),
                _count(self.records_read, "record", "read"),
            )
        )


def _count(n: int, noun: str, verb: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'} {verb}"


def clock(epoch: float) -> str:
    """`HH:MM:SS.mmm` (UTC, as the functions' own log lines)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S.%f")[:-3]


def fit(text: str, width: int) -> str:
    """`text` padded to `width`, or cut with `…` so the next column stays in place."""
    if len(text) > width:
        return text[: width - 1] + "…"
    return f"{text:<{width}}"


def row(stamp: str, function: str, subject: str, duration: str, decision: str) -> str:
    """One line of the live log, in the header's columns."""
    return (
        f"{fit(stamp, TIME_WIDTH)}  {fit(function, FUNCTION_WIDTH)} {fit(subject, SUBJECT_WIDTH)} "
        f"{duration:>{DURATION_WIDTH}}  {decision}"
    ).rstrip()


def header() -> str:
    """The columns' names, above the first line."""
    return row("# time", "function", "document", "duration", "decision")


def notice(epoch: float, text: str) -> str:
    """A line the suite itself says (a restart, an outage), stamped like the others."""
    return f"{fit(clock(epoch), TIME_WIDTH)}  # {text}"


def decision_text(item: Mapping[str, Any]) -> str:
    """The decision column: the fold's counts when known, `HTTP N` first when it failed."""
    decision = str(item.get("decision") or "-")
    activity = activity_in(item)
    if activity is not None:
        decision = f"{decision}: {activity.summary()}"
    status = int(item.get("status") or 0)
    return decision if status < 300 else f"HTTP {status} {decision}"


def format_invocation(item: Mapping[str, Any]) -> str:
    """One readable line: time, function, document, duration, decision."""
    return row(
        clock(float(item["time"])),
        str(item["function"]),
        str(item.get("document") or item.get("path") or "-"),
        f"{float(item['duration_ms']):.1f} ms",
        decision_text(item),
    )


def activity_in(item: Mapping[str, Any]) -> FoldActivity | None:
    """The fold's counts the host recorded with an invocation, if any."""
    counts = item.get("fold")
    if not isinstance(counts, Mapping):
        return None
    names = {f.name for f in dataclasses.fields(FoldActivity)}
    return FoldActivity(**{k: int(v) for k, v in counts.items() if k in names})


def quiet_fold(item: Mapping[str, Any]) -> bool:
    """A fold that succeeded and changed nothing (its line is left out)."""
    if item.get("function") != FOLD_FUNCTION or int(item.get("status") or 0) >= 300:
        return False
    activity = activity_in(item)
    return activity is not None and not activity.changed and item.get("decision") == "folded"


class LiveLog:
    """Turns invocations into the lines to print: quiet folds counted, a heartbeat a minute."""

    def __init__(self, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.heartbeat = heartbeat
        self._quiet = 0
        self._quiet_since: float | None = None
        self._said_at: float | None = None

    def lines(self, items: Sequence[Mapping[str, Any]], now: float) -> list[str]:
        """The lines for these new invocations (in order), and a heartbeat when one is due."""
        out = []
        for item in items:
            if quiet_fold(item):
                self._quiet += 1
                if self._quiet_since is None:
                    self._quiet_since = float(item["time"])
                continue
            out.append(format_invocation(item))
            if item.get("function") == FOLD_FUNCTION:  # the fold was just seen at work
                self._quiet, self._quiet_since, self._said_at = 0, None, float(item["time"])
        out += self._heartbeat(now)
        return out

    def _heartbeat(self, now: float) -> list[str]:
        if not self._quiet or self._quiet_since is None:
            return []
        last = self._said_at if self._said_at is not None else self._quiet_since
        if now - last < self.heartbeat:
            return []
        folds = f"{self._quiet} fold{'' if self._quiet == 1 else 's'}"
        text = f"nothing new ({folds} since {clock(self._quiet_since)[:8]})"
        self._quiet, self._quiet_since, self._said_at = 0, None, now
        return [row(clock(now), FOLD_FUNCTION, "-", "", text)]
