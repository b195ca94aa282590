"""The console's view models: pure, typed values the templates show (no Flask, no Firestore).

Each page's numbers are decided here, so they are unit-tested without a browser: the quota bar's
geometry, a contract's status, the sort of a page, the replay command of a group of problems.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Final

from shared.pricing import to_decimal

BAR_SPAN_PERCENT: Final = 120
"""The quota bar spans 0-120 % of the quota, so the 100 % mark and an overrun both show."""
THRESHOLDS: Final = (80, 100)
"""The quota alert thresholds (docs/counters.md), marked on every bar."""
UNLIMITED: Final = -1


class Level(StrEnum):
    """How full a quota is: under 80 %, from 80 %, from 100 %."""

    OK = "ok"
    WARN = "warn"
    OVER = "over"
    UNLIMITED = "unlimited"


@dataclass(frozen=True, slots=True)
class QuotaBar:
    """Scenes used against the monthly quota (None or -1: unlimited)."""

    used: int
    quota: int | None
    started_at: int | None = None
    """Scenes the month started with before its records (a count kept from before the suite,
    or the demo's seed): part of `used`."""

    @property
    def unlimited(self) -> bool:
        """No quota: nothing to fill."""
        return self.quota is None or self.quota == UNLIMITED

    @property
    def percent(self) -> Decimal | None:
        """Used as a percentage of the quota, to 0.1 (None when unlimited). A quota of 0 with
        any use is 100 % or more: nothing was allowed."""
        if self.unlimited:
            return None
        assert self.quota is not None
        if self.quota == 0:
            return Decimal(0) if self.used == 0 else Decimal(100) * self.used
        return (Decimal(self.used * 100) / self.quota).quantize(Decimal("0.1"))

    @property
    def fill_percent(self) -> Decimal:
        """The filled width, as a percentage of the bar (clamped to the bar)."""
        pct = self.percent
        if pct is None:
            return Decimal(0)
        return (min(pct, Decimal(BAR_SPAN_PERCENT)) * 100 / BAR_SPAN_PERCENT).quantize(
            Decimal("0.1")
        )

    @property
    def marks(self) -> tuple[tuple[int, Decimal], ...]:
        """(threshold, position as a percentage of the bar's width) of the 80 % and 100 % marks."""
        return tuple(
            (t, (Decimal(t * 100) / BAR_SPAN_PERCENT).quantize(Decimal("0.1"))) for t in THRESHOLDS
        )

    @property
    def level(self) -> Level:
        """Which threshold the use has reached."""
        pct = self.percent
        if pct is None:
            return Level.UNLIMITED
        if pct >= THRESHOLDS[1]:
            return Level.OVER
        if pct >= THRESHOLDS[0]:
            return Level.WARN
        return Level.OK

    @property
    def text(self) -> str:
        """`37 of 100 (37.0 %)` or `37 (unlimited)`."""
        if self.unlimited:
            return f"{self.used} (unlimited)"
        return f"{self.used} of {self.quota} ({self.percent} %)"


class Status(StrEnum):
    """A customer's contract on a given day."""

    IN_FORCE = "in force"
    ENDED = "ended"
    NOT_STARTED = "not started"
    INVALID = "invalid document"


def contract_status(start: datetime | None, end: datetime | None, now: datetime) -> Status:
    """In force from `contract_start` (open when absent) until `contract_end` (exclusive, open
    when absent)."""
    if start is not None and now < start:
        return Status.NOT_STARTED
    if end is not None and now >= end:
        return Status.ENDED
    return Status.IN_FORCE


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One line of the customers page."""

    id: str
    tier: str | None
    quota: QuotaBar
    cost_usd: Decimal | None
    """The month's cost from the fold's summary; None: nothing counted this month."""
    status: Status
    last_activity: datetime | None
    problems: tuple[str, ...] = ()


SORTS: Final[Mapping[str, Callable[[CustomerRow], Any]]] = {
    "id": lambda r: r.id,
    "tier": lambda r: r.tier,
    "quota": lambda r: r.quota.percent,
    "cost": lambda r: r.cost_usd,
    "status": lambda r: r.status.value,
    "activity": lambda r: r.last_activity,
}
"""The customers page's sortable columns (a value of None: not known, listed last)."""


@dataclass(frozen=True, slots=True)
class Sort:
    """A column and a direction: `cost` or `-cost` in the URL."""

    key: str = "id"
    descending: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Sort:
        """`-cost` -> cost, descending; an unknown column sorts by id."""
        text = text or "id"
        descending = text.startswith("-")
        key = text.removeprefix("-")
        return cls(key, descending) if key in SORTS else cls()

    @property
    def param(self) -> str:
        """The URL value of this sort."""
        return ("-" if self.descending else "") + self.key

    def toggled(self, key: str) -> Sort:
        """The sort a click on column `key` asks for: that column, flipped when it is this one."""
        return Sort(key, not self.descending) if key == self.key else Sort(key)

    def apply(self, rows: Iterable[CustomerRow]) -> list[CustomerRow]:
        """The rows in this order; unknown values last whatever the direction; ties by id."""
        value = SORTS[self.key]
        by_id = sorted(rows, key=lambda r: r.id)
        known = [r for r in by_id if value(r) is not None]
        unknown = [r for r in by_id if value(r) is None]
        return sorted(known, key=value, reverse=self.descending) + unknown


@dataclass(frozen=True, slots=True)
class Pager:
    """Cursor paging links: the first page and the next one (cursors only go forward)."""

    next_cursor: str | None
    is_first: bool

    @property
    def has_next(self) -> bool:
        """Another page follows."""
        return self.next_cursor is not None


@dataclass(frozen=True, slots=True)
class Problem:
    """One stored rejection or dead letter."""

    id: str
    kind: str
    reason: str | None
    customer_id: str | None
    rejected_at: datetime | None
    replayed: str | None = None
    """The outcome of an earlier replay (a later replay skips it unless --again)."""


NOT_REPLAYABLE: Final = frozenset({"bad_envelope"})
"""Kinds whose stored payload is not a message body: a replay lists them as skipped."""


def _utc_text(value: datetime) -> str:
    """A UTC time as RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`, the year always four digits (not %Y: it
    leaves a year before 1000 unpadded, which RFC 3339 refuses)."""
    return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}Z"


def replay_command(
    kind: str,
    *,
    since: datetime | None = None,
    before: datetime | None = None,
    customer_id: str | None = None,
    dry_run: bool = False,
) -> str:
    """The exact `blueprint usage replay` of a group: its kind, customer and span of time
    (`since <= rejected_at < before`, docs/replay.md); each value quoted for a POSIX shell."""
    parts = ["blueprint", "usage", "replay", "--kind", kind]
    if customer_id is not None:
        parts += ["--customer", customer_id]
    if since is not None:
        parts += ["--since", _utc_text(since)]
    if before is not None:
        parts += ["--before", _utc_text(before)]
    if dry_run:
        parts.append("--dry-run")
    return shlex.join(parts)


@dataclass(frozen=True, slots=True)
class ProblemGroup:
    """The problems of one kind on a page, with the command that replays the kind."""

    kind: str
    items: tuple[Problem, ...]
    command: str
    dry_run_command: str
    replayable: bool
    """Whether `blueprint usage replay` takes this kind and can deliver any of them."""


def group_problems(
    problems: Sequence[Problem],
    *,
    since: datetime | None,
    before: datetime | None = None,
    customer_id: str | None = None,
    kinds: Collection[str] = (),
) -> list[ProblemGroup]:
    """Problems by kind (dead letters first, then by kind), each group newest first as read.
    The commands replay the kind in the span the problems were read from (`since` to `before`,
    None: open). `kinds`: those `blueprint usage replay --kind` accepts (any, when empty)."""
    by_kind: dict[str, list[Problem]] = {}
    for problem in problems:
        by_kind.setdefault(problem.kind, []).append(problem)
    order = sorted(by_kind, key=lambda k: (k != "dead_letter", k))
    return [
        ProblemGroup(
            kind,
            tuple(by_kind[kind]),
            replay_command(kind, since=since, before=before, customer_id=customer_id),
            replay_command(kind, since=since, before=before, customer_id=customer_id, dry_run=True),
            kind not in NOT_REPLAYABLE and (not kinds or kind in kinds),
        )
        for kind in order
    ]


AMOUNT_PLACES: Final = Decimal("0.01")
"""Compute minutes and storage GB are shown to the hundredth."""


def shown_amount(value: Decimal) -> Decimal:
    """An amount as a page shows it: rounded half up to `AMOUNT_PLACES`. A customer page's
    amounts are Firestore's float sums, which may differ from the exact sums (`blueprint usage
    export`) in their last digits: each addition errs by at most half a unit in the 16th
    significant digit of the running sum, far below a hundredth, so rounded they are the same
    (unless the exact sum lies within that error of a half hundredth)."""
    return value.quantize(AMOUNT_PLACES, rounding=ROUND_HALF_UP)


def shown_float(value: float | None) -> Decimal | None:
    """A summary's float sum as a page shows it (`shown_amount` of the number as written)."""
    return None if value is None else shown_amount(to_decimal(value))


@dataclass(frozen=True, slots=True)
class Totals:
    """A line of sums: an action's or the month's (amounts as shown: `shown_amount`)."""

    label: str
    records: int
    billable: int
    episodes: int
    compute_minutes: Decimal
    storage_gb: Decimal
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class Decision:
    """A feature decision of `CustomerConfigService`, with its reason."""

    feature: str
    enabled: bool
    reason: str


@dataclass(frozen=True, slots=True)
class MonthRow:
    """One customer on the month page: the fold's summary of the month."""

    customer_id: str
    tier: str | None
    quota: QuotaBar
    records: int | None
    episodes: int | None
    compute_minutes: Decimal | None
    """The summary's float sum as a page shows it (`shown_amount`), as on a customer's page."""
    storage_gb: Decimal | None
    cost_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class Banner:
    """A message across the top of a page (Firestore unreachable, ...)."""

    text: str
    level: str = "error"
    details: tuple[str, ...] = field(default=())
