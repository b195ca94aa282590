"""The usage service: one message -> one record, counted exactly once.

`prepare` (pure) -> the customer (per-instance cache, 1 read cold) -> price -> ONE commit:
`create(usage_tracking/{id})`, and how it is counted depends on how busy its customer-month is
in this instance (`functions.usage.pace`): a quiet one's record is the only write, carrying its
`fold_key` and integer counts (the fold counts the month's records by aggregation), and either
`fold_bucket` (a flag: `functions.usage.flags`) or the flag that covers it; a hot one's commit
also increments one
shard of its month counter (`shared.counters` layout), shared by the events gathered with it.
`AlreadyExists` = recorded before: nothing counted (exactly once under redelivery). Nothing
under `customers/` is written here; the fold sums records and shards into the month summary and
the customer document, and publishes quota alerts (docs/counters.md).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from functions.edge.pubsub import Message
from functions.usage.batching import Committed, GroupCommitter
from functions.usage.cache import CustomerCache
from functions.usage.flags import FlagBook, late
from functions.usage.intake import prepare, wrong_type
from functions.usage.pace import Pace, RoundRobinShards
from functions.usage.ports import (
    ContentionError,
    Limits,
    LogNames,
    Outcome,
    PricingCustomer,
    Rejection,
    Result,
    ShardIncrement,
    UnstorableRecordError,
    UsageRepository,
)
from functions.usage.recorded_log import RecordedLog
from functions.usage.records import (
    build_record,
    cost_problem,
    read_customer,
    rejection_document,
    shard_increment,
    tally_fields,
)
from shared import logs
from shared.counters import FLAG_AT_FIELD, TALLY_FIELD
from shared.errors import FieldError
from shared.ids import message_doc_id
from shared.models import UsageEvent
from shared.pricing import RateCard, estimate_cost

CONTENTION_ATTEMPTS: Final = 8
"""Shards a commit tries when Firestore answers ABORTED (contention) before it gives up."""
CONTENTION_PAUSE: Final = 0.01
"""Seconds of jitter per attempt between contention retries (at most ~0.3 s in all)."""


@dataclass(frozen=True, slots=True)
class UsageService:
    """The usage service's collaborators and knobs. Immutable; its stateful parts (customer
    cache, shard picker, group committer) are thread-safe: one service serves every thread."""

    repository: UsageRepository
    limits: Limits = field(default_factory=Limits)
    card: RateCard | None = None
    customer_cache: CustomerCache | None = None
    """None: read the customer for every event."""
    shards: int = 16
    """Counter shards per customer-month (`settings.usage_counter_shards`)."""
    fold_buckets: int = 16
    """The fold's dirty buckets (`settings.usage_fold_buckets`)."""
    log_names: LogNames = field(default_factory=LogNames)
    choose_shard: Callable[[int], int] = field(default_factory=RoundRobinShards)
    """Picks a shard of [0, shards) for each attempt of a hot customer-month's event."""
    pace: Pace | None = None
    """How busy each customer-month is here (`functions.usage.pace`); None: every event is
    hot (increments a shard)."""
    pause: Callable[[float], None] = time.sleep
    committer: GroupCommitter | None = None
    """Group commit of a customer-month's events in flight together; None: one per event."""
    recorded_log: RecordedLog | None = None
    """One INFO line per interval for the recorded events (each event's own line is DEBUG);
    None: each commit writes its own INFO line."""
    flags: FlagBook | None = None
    """Which quiet records carry `fold_bucket` (`functions.usage.flags`); None: every one."""

    def handle(self, message: Message, now: datetime) -> Result:  # noqa: PLR0911 - per outcome
        """Record one usage message exactly once (see module doc)."""
        prepared = wrong_type(message) or prepare(message, now, self.limits)
        if isinstance(prepared, Rejection):
            return self._reject(message, prepared, None)
        event = prepared.event
        customer = self._customer(event.customer_id)
        if customer is None:
            missing = FieldError("customer_id", event.customer_id, "an existing customer document")
            return self._reject(message, Rejection("unknown_customer", (missing,)), event)
        cost = estimate_cost(event, customer.tier, self.card)
        too_costly = cost_problem(event, cost)
        if too_costly is not None:  # its counter increment would not fit Firestore's integers
            return self._reject(message, Rejection("invalid_event", (too_costly,)), event)
        if not cost.billable:
            logs.warning(
                f"action {event.action!r} is not on rate card {cost.rate_card_version}: "
                "recorded as not billable, cost 0",
                event_id=event.event_id,
                message_id=message.message_id,
                customer=event.customer_id,
                action=event.action,
            )
        record = build_record(event, cost, message.message_id)
        # The increment once (month, fold bucket, sums); each attempt only picks its shard.
        increment = shard_increment(event, cost, 0, self.fold_buckets)
        month = increment.month
        hot = self.pace.arrive(event.customer_id, month) if self.pace is not None else True
        # Quiet: the record alone, marked with its fold bucket; the fold counts it from the
        # records. Hot: the record + one shard increment, gathered with its neighbours.
        commit = self.committer.commit_event if self.committer else self._commit_alone
        counter: ShardIncrement | None = None
        for attempt in range(1, CONTENTION_ATTEMPTS + 1):
            try:
                if not hot:
                    committed = self._commit_quiet(prepared.record_id, record, increment)
                else:
                    counter = replace(increment, shard=self.choose_shard(self.shards))
                    committed = commit(prepared.record_id, record, counter, hot)
            except ContentionError:
                if attempt == CONTENTION_ATTEMPTS:
                    raise  # transient: Pub/Sub redelivers
                # Nothing was written: another shard, after a short jittered pause so that
                # contending requests do not retry in lockstep.
                self.pause(random.uniform(0, CONTENTION_PAUSE * attempt))
                continue
            except UnstorableRecordError as exc:
                refused = FieldError("(record)", str(exc)[:300], "data Firestore accepts")
                return self._reject(message, Rejection("unstorable", (refused,)), event)
            break
        if not committed.created:
            conflict = self._conflict(message, prepared.record_id, record, event, increment)
            if conflict is not None:
                return conflict
            logs.info(
                "usage event already recorded (redelivery): nothing counted again",
                decision="duplicate",
                event_id=event.event_id,
                message_id=message.message_id,
                collection=self.log_names.usage_tracking,
                document=prepared.record_id,
                customer=event.customer_id,
            )
            return Result(Outcome.DUPLICATE, prepared.record_id)
        self._log_recorded(
            message, prepared.record_id, event, cost.amount, committed, month, counter
        )
        return Result(Outcome.RECORDED, prepared.record_id, counter=counter)

    def _log_recorded(  # noqa: PLR0917 - the facts of one recorded event, private
        self,
        message: Message,
        record_id: str,
        event: UsageEvent,
        amount: Decimal,
        committed: Committed,
        month: str,
        counter: ShardIncrement | None,
    ) -> None:
        """With a recorded log, each event's line is DEBUG and the log counts it (one INFO line
        per interval). Without, one line per commit: an event committed alone logs itself; the
        leader of a shared commit logs it with every record id; a follower's line is DEBUG (not
        written at the default level, still seen by the local suite's live log)."""
        counted = "shard" if counter is not None else "records"
        quiet_line = self.recorded_log is not None or (committed.shared and not committed.batch)
        log = logs.debug if quiet_line else logs.info
        log(
            "usage recorded"
            if not committed.batch
            else f"usage recorded: {len(committed.batch)} events in one commit",
            decision="recorded",
            event_id=event.event_id,
            message_id=message.message_id,
            collection=self.log_names.usage_tracking,
            document=record_id,
            documents=list(committed.batch) or None,
            customer=event.customer_id,
            action=event.action,
            estimated_cost=str(amount),
            month=month,
            shard=counter.shard if counter is not None else None,
            counted=counted,
        )
        if self.recorded_log is not None:
            self.recorded_log.recorded(event.customer_id, amount, counted)

    def _commit_quiet(
        self, record_id: str, record: dict[str, Any], increment: ShardIncrement
    ) -> Committed:
        """The record alone, counted by the fold from the records: a flag (`fold_bucket`) or
        covered by this instance's last flag of its month (`fold_flag_at`); a covered record
        that committed past its flag's cover touches a shard of its month."""
        customer_id, month = increment.customer_id, increment.month
        cover = self.flags.cover(customer_id, month) if self.flags is not None else None
        record.update(tally_fields(increment))
        record.pop(TALLY_FIELD, None)
        record.pop(FLAG_AT_FIELD, None)
        if cover is None:
            record[TALLY_FIELD] = increment.fold_bucket
        else:
            record[FLAG_AT_FIELD] = cover
        commit_time = self.repository.commit_record(record_id, record)
        if commit_time is None:
            return Committed(False)
        if cover is None:
            if self.flags is not None:
                self.flags.flagged(customer_id, month, commit_time)
        elif late(commit_time, cover):
            self._touch(record_id, increment, commit_time - cover)
        return Committed(True)

    def _touch(self, record_id: str, increment: ShardIncrement, after: timedelta) -> None:
        """Make a late record's month visible to the fold: a zero increment of one shard."""
        zero = replace(
            increment,
            shard=self.choose_shard(self.shards),
            ints=dict.fromkeys(increment.ints, 0),
            floats=dict.fromkeys(increment.floats, 0.0),
        )
        self.repository.touch_shard(zero)
        logs.info(
            "usage record committed past its flag's cover: its month's shard touched",
            decision="late-record",
            collection=self.log_names.usage_tracking,
            document=record_id,
            customer=increment.customer_id,
            month=increment.month,
            after_flag=str(after),
        )

    def _commit_alone(
        self, record_id: str, record: Mapping[str, Any], counter: ShardIncrement, busy: bool
    ) -> Committed:
        del busy  # one commit per event: nothing to gather
        return Committed(self.repository.commit_usage(record_id, record, counter))

    def _customer(self, customer_id: str) -> PricingCustomer | None:
        """The customer, from the per-instance cache, else read (1 read per instance, however
        many requests ask at once); None if unknown."""
        cache = self.customer_cache
        if cache is None:
            return self._read_customer(customer_id)
        return cache.load(customer_id, lambda: self._read_customer(customer_id))

    def _read_customer(self, customer_id: str) -> PricingCustomer | None:
        doc = self.repository.get_customer(customer_id)
        if doc is None:
            return None
        customer, bad_fields = read_customer(customer_id, doc.data)
        if bad_fields:
            logs.invalid_document(
                self.log_names.customers, customer_id, bad_fields, customer=customer_id
            )
        return customer

    def _conflict(
        self,
        message: Message,
        record_id: str,
        record: Mapping[str, Any],
        event: UsageEvent,
        increment: ShardIncrement,
    ) -> Result | None:
        """None when the existing record is this same event (a redelivery; a covered record
        stored past its flag's cover touches its shard, in case the first delivery died
        before it did); else the `conflicting_duplicate` rejection (Stripe's rule: a reused
        key with another payload is refused, the first stands). Read only on AlreadyExists, so
        the common path pays nothing."""
        mine = str(record["payload_sha256"])
        stored = self.repository.get_stored_record(record_id)
        at, flag_at = (stored.recorded_at, stored.flag_at) if stored else (None, None)
        if at is not None and flag_at is not None and late(at, flag_at):
            self._touch(record_id, increment, at - flag_at)
        existing = stored.payload_sha256 if stored is not None else None
        if existing is None or existing == mine:
            return None  # same payload, or a record from before hashes (cannot tell: duplicate)
        key = FieldError(
            "event_id"
            if event.event_id is not None
            else "(customer_id, scene_id, action, timestamp)",
            event.event_id or record_id,
            f"a new key, or the payload already recorded under it (sha256 {existing})",
        )
        facts = {
            "record_id": record_id,
            "payload_sha256": mine,
            "existing_payload_sha256": existing,
        }
        rejection = Rejection("conflicting_duplicate", (key,), facts)
        self._reject(message, rejection, event, severity="WARNING")
        return Result(Outcome.CONFLICT, record_id, rejection)

    def _reject(
        self,
        message: Message,
        rejection: Rejection,
        event: UsageEvent | None,
        severity: str = "ERROR",
    ) -> Result:
        doc_id = message_doc_id(message.message_id)
        created = self.repository.store_rejection(doc_id, rejection_document(message, rejection))
        log = logs.warning if severity == "WARNING" else logs.error
        log(
            f"usage message rejected: {rejection.reason}",
            decision="rejected" if created else "rejected-before",
            message_id=message.message_id,
            event_id=event.event_id if event else None,
            collection=self.log_names.usage_rejections,
            document=doc_id,
            customer=event.customer_id if event else None,
            stored=created,
        )
        return Result(Outcome.REJECTED if created else Outcome.REJECTED_BEFORE, rejection=rejection)
