"""Usage events: record each one exactly once with its cost, keep the counters, raise quota alerts.

Flow of one Pub/Sub message (docs/usage.md, docs/counters.md):
decode at the edge (`decode_pubsub`) -> `prepare` (size, JSON, model, future timestamp) ->
read the customer -> ONE commit: `create(usage_tracking/{id})` + `Increment`s on the customer ->
the transform results say whether the month has reached 80 % / 100 % of the monthly quota ->
alert marker `quota_alerts/{customer}_{YYYY-MM}_{pct}` (create once) -> publish -> mark published.

Bad input is stored once in `usage_rejections/{message}` and acknowledged; anything transient
raises so Pub/Sub redelivers. Firestore and Pub/Sub sit behind the two Protocols below; the real
adapters live in `functions.usage_firestore`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from cloudevents.http import CloudEvent
from pydantic import ValidationError

from shared import logs, names, quota
from shared.errors import FieldError, InvalidDocumentError, TransientError
from shared.firestore_values import plain_value
from shared.ids import message_doc_id, usage_record_id
from shared.models import BundleTier, Customer, UsageEvent, field_errors, validate
from shared.pricing import CostEstimate, RateCard, estimate_cost
from shared.settings import get_settings
from shared.times import month_of

SCENE_GENERATED: Final = "scene_generated"
TOTAL_SCENES: Final = ("total_scenes_generated",)
TOTAL_EPISODES: Final = ("total_episodes_generated",)
THIS_MONTH: Final = (quota.THIS_MONTH_FIELD,)

REJECTION_PAYLOAD_LIMIT: Final = 16_384
"""Bytes of a rejected payload kept in its rejection document (the original size is stored too)."""
MAX_REASON_ERRORS: Final = 20
ALERT_LEASE: Final = timedelta(seconds=60)
"""A pending alert marker older than this is taken over (its publisher is presumed dead)."""
MAX_COMMIT_ATTEMPTS: Final = 20
_CACHE_MAX_ENTRIES: Final = 10_000
_MAX_DETAILS_DEPTH: Final = 20
_INT64: Final = 2**63
_MAX_KEY_BYTES: Final = 1500
_MAX_KEY_CHARS: Final = _MAX_KEY_BYTES // 4
"""A key of at most this many characters is within the byte limit whatever its characters."""

_EVENT_VALIDATOR: Final = UsageEvent.__pydantic_validator__
"""`UsageEvent.model_validate_json` without its Python wrapper (this runs once per event)."""

FieldPath = tuple[str, ...]
"""A Firestore field path as its segments, e.g. ("scene_counts_by_month", "2025-01")."""


# --------------------------------------------------------------------------------------------
# Errors the adapters raise for the service to decide on


class CommitConflictError(Exception):
    """The customer changed under a guarded commit, or vanished: read again and re-plan."""


class UnstorableRecordError(Exception):
    """Firestore refused the record itself (InvalidArgument): permanent, reject the message."""


# --------------------------------------------------------------------------------------------
# Protocols


@dataclass(frozen=True, slots=True)
class CustomerDocument:
    """A customer document as read: raw data plus its update time, the token of a guard."""

    data: Mapping[str, Any]
    update_time: Any
    """Firestore's update time (a datetime); a fake may use any token."""

    @property
    def last_write(self) -> datetime | None:
        """When the document was last written, if the token says so."""
        return self.update_time if isinstance(self.update_time, datetime) else None


@dataclass(frozen=True, slots=True)
class AlertMarker:
    """A `quota_alerts` document as read."""

    data: Mapping[str, Any]
    update_time: Any


class UsageRepository(Protocol):
    """Firestore as the usage service needs it."""

    def get_customer(self, customer_id: str) -> CustomerDocument | None:
        """The customer document, or None when it does not exist."""
        ...

    def commit_usage(
        self,
        record_id: str,
        record: Mapping[str, Any],
        customer_id: str,
        increments: Mapping[FieldPath, int],
        precondition: Any | None,
        *,
        sets: Mapping[str, Any] | None = None,
    ) -> dict[FieldPath, int] | None:
        """ONE atomic commit: create the record (+ recorded_at) and increment the customer.

        `sets` are plain top-level fields the same customer write sets (a legacy document's
        adopted `quota_period`). Returns the counters' new values by field path, or None when
        the record already exists (nothing was written). Raises CommitConflictError (guard
        failed, customer gone) or UnstorableRecordError (Firestore refused the data); anything
        else is transient.
        """
        ...

    def store_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `usage_rejections/{doc_id}` (+ rejected_at); False if it already existed."""
        ...

    def create_alert_marker(self, alert_id: str, data: Mapping[str, Any]) -> bool:
        """Create `quota_alerts/{alert_id}`; False if it already existed."""
        ...

    def get_alert_marker(self, alert_id: str) -> AlertMarker | None:
        """Read `quota_alerts/{alert_id}`."""
        ...

    def take_over_alert_marker(self, alert_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        """Update the marker only if unchanged since `token` was read; False if it changed."""
        ...

    def mark_alert_published(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        """Record that the alert was published (+ published_at)."""
        ...


class AlertPublisher(Protocol):
    """The `quota-alerts` topic."""

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish one message and wait until Pub/Sub accepted it; return its message id."""
        ...


# --------------------------------------------------------------------------------------------
# Decoding at the edge


@dataclass(slots=True)  # not frozen: built once per event, and frozen init costs CPU
class PubSubMessage:
    """A Pub/Sub message as delivered in `MessagePublishedData`; nothing downstream sees base64."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    publish_time: str | None = None
    """RFC 3339 text as delivered (parsed only when a rejection stores it)."""
    problem: FieldError | None = None
    """Set when the envelope itself is unusable (e.g. `message.data` is not base64)."""


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 publish time, or None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _envelope_problem(raw: bytes, event_id: str, problem: FieldError) -> PubSubMessage:
    return PubSubMessage(event_id or "unknown", raw, problem=problem)


def decode_pubsub(data: Any, event_id: str = "") -> PubSubMessage:
    """`MessagePublishedData` (dict, JSON text or bytes) -> PubSubMessage; never raises."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            raw = data.encode() if isinstance(data, str) else data
            not_json = FieldError("(envelope)", raw[:80], "MessagePublishedData JSON")
            return _envelope_problem(raw, event_id, not_json)
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        no_message = FieldError("message", message, "a Pub/Sub message object")
        return _envelope_problem(json.dumps(data, default=str).encode(), event_id, no_message)
    message_id = str(message.get("messageId") or message.get("message_id") or event_id or "unknown")
    publish_time = message.get("publishTime") or message.get("publish_time")
    attributes = message.get("attributes")
    if not isinstance(attributes, dict):
        attributes = {}
    encoded = message.get("data") or ""
    problem: FieldError | None = None
    try:
        # Strict: stray characters are an error, not silently skipped.
        body = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        problem = FieldError("message.data", str(encoded)[:80], "base64 text")
        body = str(encoded).encode()
    return PubSubMessage(
        message_id,
        body,
        attributes,
        publish_time if isinstance(publish_time, str) else None,
        problem,
    )


# --------------------------------------------------------------------------------------------
# Pure steps


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits (from settings)."""

    max_body_bytes: int = 65536
    max_future: timedelta = timedelta(seconds=300)


@dataclass(frozen=True, slots=True)
class LogNames:
    """Collection names the log lines report (the configured ones, not the defaults)."""

    customers: str = names.CUSTOMERS
    usage_tracking: str = names.USAGE_TRACKING
    usage_rejections: str = names.USAGE_REJECTIONS
    quota_alerts: str = names.QUOTA_ALERTS


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message is refused for good."""

    kind: str
    errors: tuple[FieldError, ...]

    @property
    def reason(self) -> str:
        """One line naming each bad field and value."""
        shown = "; ".join(str(e) for e in self.errors[:MAX_REASON_ERRORS])
        more = len(self.errors) - MAX_REASON_ERRORS
        return f"{self.kind}: {shown}" + (f" (+{more} more)" if more > 0 else "")


@dataclass(slots=True)
class Prepared:
    """A valid usage event and its record id."""

    event: UsageEvent
    record_id: str


_PLAIN: Final = (str, bool, type(None))


def _storable_problems(value: Any, path: str, depth: int, in_array: bool) -> list[FieldError]:
    """What Firestore would refuse in a `details` value (or we do: non-finite numbers)."""
    kind = type(value)
    problem: FieldError | None = None
    if kind in _PLAIN:
        pass
    elif kind is int:
        if not -_INT64 <= value < _INT64:
            problem = FieldError(path, value, "a 64-bit integer")
    elif kind is float:
        if not math.isfinite(value):
            problem = FieldError(path, value, "a finite number")
    elif depth > _MAX_DETAILS_DEPTH:
        problem = FieldError(path, "...", f"at most {_MAX_DETAILS_DEPTH} levels of nesting")
    elif kind is dict or kind is list:
        return _container_problems(value, path, depth, in_array)
    else:
        problem = FieldError(path, value, "a JSON value")
    return [] if problem is None else [problem]


def _key_problem(path: str, key: str) -> FieldError | None:
    """What Firestore refuses in a map key: empty, over 1500 bytes, or reserved (__name__)."""
    if key == "":
        return FieldError(path, "", "map keys that are not empty")
    if len(key.encode()) > _MAX_KEY_BYTES:
        return FieldError(path, key, f"map keys of at most {_MAX_KEY_BYTES} bytes (Firestore)")
    if len(key) >= 4 and key.startswith("__") and key.endswith("__"):
        return FieldError(f"{path}.{key}", key, "a key not like __name__ (Firestore)")
    return None


def _container_problems(value: Any, path: str, depth: int, in_array: bool) -> list[FieldError]:
    out: list[FieldError] = []
    if isinstance(value, dict):
        for key, item in value.items():
            # The common key (not empty, short, no leading "_") needs no closer look.
            bad = (
                None
                if key and len(key) <= _MAX_KEY_CHARS and key[0] != "_"
                else _key_problem(path, key)
            )
            if bad is None:
                out += _storable_problems(item, f"{path}.{key}", depth + 1, False)
            else:
                out.append(bad)
        return out
    if in_array:
        return [FieldError(path, value, "no array directly inside an array (Firestore)")]
    for i, item in enumerate(value):
        out += _storable_problems(item, f"{path}.{i}", depth + 1, True)
    return out


def prepare(message: PubSubMessage, now: datetime, limits: Limits) -> Prepared | Rejection:
    """Check and parse one message body (pure; no I/O)."""
    if message.problem is not None:
        return Rejection("bad_envelope", (message.problem,))
    size = len(message.data)
    if size > limits.max_body_bytes:
        expected = f"a body of at most {limits.max_body_bytes} bytes"
        return Rejection("oversized", (FieldError("(body)", f"{size} bytes", expected),))
    try:
        event = _EVENT_VALIDATOR.validate_json(message.data)
    except ValidationError as exc:
        errors = field_errors(exc)
        kinds = {e.field for e in errors}
        kind = "unknown_schema_version" if kinds == {"schema_version"} else "invalid_event"
        if any(e.expected.startswith("Invalid JSON") for e in errors):
            kind = "not_json"
        return Rejection(kind, tuple(errors))
    if event.timestamp > now + limits.max_future:
        expected = f"a time at most {limits.max_future.total_seconds():g} s after {now.isoformat()}"
        return Rejection(
            "future_timestamp", (FieldError("timestamp", event.timestamp.isoformat(), expected),)
        )
    if event.details:
        problems = _storable_problems(event.details, "details", 1, False)
        if problems:
            return Rejection("invalid_event", tuple(problems))
    return Prepared(event, usage_record_id(event))


def read_customer(data: Mapping[str, Any]) -> tuple[Customer, list[FieldError]]:
    """The customer model of a stored document, keeping what is valid when parts are not.

    Usage of a customer whose document is partly invalid is still recorded and counted (it
    happened); invalid fields are dropped (a bad tier prices as `standard`) and reported.
    """
    plain = plain_value(data)
    try:
        return validate(Customer, plain, kind="customer"), []
    except InvalidDocumentError as exc:
        errors = list(exc.errors)
    bad = {e.field.split(".")[0] for e in errors}
    if "(document)" in bad:
        bad |= {"contract_start", "contract_end"}
    kept = {k: v for k, v in plain.items() if k not in bad and k in Customer.model_fields}
    kept["schema_version"] = 1
    kept.setdefault("bundle_tier", BundleTier.STANDARD.value)
    try:
        return validate(Customer, kept, kind="customer"), errors
    except InvalidDocumentError:
        return Customer(schema_version=1, bundle_tier=BundleTier.STANDARD), errors


def build_record(event: UsageEvent, cost: CostEstimate, message_id: str) -> dict[str, Any]:
    """The `usage_tracking` document (without `recorded_at`, which the server stamps)."""
    record: dict[str, Any] = {
        "schema_version": 1,
        "customer_id": event.customer_id,
        "scene_id": event.scene_id,
        "action": event.action,
        "timestamp": event.timestamp,
        "billable": cost.billable,
        "estimated_cost": float(cost.amount),
        "rate_card_version": cost.rate_card_version,
        "pricing_tier": cost.tier.value,
        "message_id": message_id,
    }
    # schema.md's fields are always there (null where the event had nothing: not applicable,
    # not 0), so every record has the same shape; event_id only when the producer sent one.
    record["episodes_generated"] = event.episodes_generated
    record["compute_minutes"] = event.compute_minutes
    record["storage_gb"] = event.storage_gb
    record["details"] = event.details
    if event.event_id is not None:
        record["event_id"] = event.event_id
    return record


@dataclass(slots=True)
class CounterPlan:
    """The counter changes of one event and where its month count comes from."""

    increments: dict[FieldPath, int]
    month: str | None
    """Month of a scene_generated event (None for other actions)."""
    count_path: FieldPath | None
    """Transform whose result is the event's month count (quota checks)."""
    guard: bool
    adopt_period: str | None = None
    """`quota_period` the commit sets on a document that had no known counter period."""

    @property
    def sets(self) -> dict[str, Any] | None:
        """Plain fields the customer write sets besides the increments."""
        return None if self.adopt_period is None else {quota.PERIOD_FIELD: self.adopt_period}


def plan_counters(
    event: UsageEvent, customer: Customer, now: datetime, last_write: datetime | None = None
) -> CounterPlan:
    """Increments for one event (docs/counters.md).

    `last_write` (the document's update time) tells the period of a document that predates the
    suite; any commit that writes such a customer also records that period as `quota_period`
    (guarded, once), since the commit itself moves the update time.
    """
    increments: dict[FieldPath, int] = {}
    if event.episodes_generated:
        increments[TOTAL_EPISODES] = event.episodes_generated
    if event.action != SCENE_GENERATED:
        if not increments or quota.counter_period(customer) is not None:
            return CounterPlan(increments, None, None, guard=False)
        adopt = quota.legacy_period(last_write, now)
        return CounterPlan(increments, None, None, guard=True, adopt_period=adopt)
    plan = quota.plan_scene_count(customer, event.timestamp, now, last_write)
    by_month: FieldPath = (quota.COUNTS_FIELD, plan.month)
    increments[TOTAL_SCENES] = 1
    increments[by_month] = 1
    if plan.increment_this_month:
        increments[THIS_MONTH] = 1
    count_path = THIS_MONTH if plan.count_from == "this_month" else by_month
    return CounterPlan(increments, plan.month, count_path, plan.guard, plan.adopt_period)


def month_count(
    customer: Customer, month: str, now: datetime, last_write: datetime | None = None
) -> int:
    """Scenes counted for `month` according to a customer document as read."""
    period = quota.counter_period(customer) or quota.legacy_period(last_write, now)
    if period == month and customer.scenes_generated_this_month is not None:
        return customer.scenes_generated_this_month
    return (customer.scene_counts_by_month or {}).get(month, 0)


def alert_doc_id(customer_id: str, month: str, percent: int) -> str:
    """`quota_alerts` document id: one per customer, month and threshold."""
    return f"{customer_id}_{month}_{percent}"


def rejection_document(message: PubSubMessage, rejection: Rejection) -> dict[str, Any]:
    """The `usage_rejections` document (without `rejected_at`, which the server stamps)."""
    raw = message.data
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    truncated = len(raw) > REJECTION_PAYLOAD_LIMIT
    if text is not None:
        # Cut on a character boundary: drop a partial trailing UTF-8 sequence, never garble.
        payload = raw[:REJECTION_PAYLOAD_LIMIT].decode("utf-8", errors="ignore")
        encoding = "utf-8"
    else:
        payload = base64.b64encode(raw[:REJECTION_PAYLOAD_LIMIT]).decode("ascii")
        encoding = "base64"
    doc: dict[str, Any] = {
        "schema_version": 1,
        "message_id": message.message_id,
        "kind": rejection.kind,
        "reason": rejection.reason,
        "errors": [e.as_dict() for e in rejection.errors[:MAX_REASON_ERRORS]],
        "payload": payload,
        "payload_encoding": encoding,
        "payload_bytes": len(raw),
        "payload_truncated": truncated,
        "attributes": dict(message.attributes),
    }
    publish_time = parse_time(message.publish_time)
    if publish_time is not None:
        doc["publish_time"] = publish_time
    # Where the body parses far enough, say whose it is (people search by customer).
    if text is not None and not truncated:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for key in ("customer_id", "event_id"):
                value = parsed.get(key)
                if isinstance(value, str) and len(value) <= 1500:
                    doc[key] = value
    return doc


# --------------------------------------------------------------------------------------------
# The service


class Outcome(enum.StrEnum):
    """What handling one message did."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    REJECTED_BEFORE = "rejected_before"


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of one message, for callers and tests."""

    outcome: Outcome
    record_id: str | None = None
    rejection: Rejection | None = None
    counters: Mapping[FieldPath, int] = field(default_factory=dict)
    alerts: tuple[str, ...] = ()
    """Alert ids this call published."""


@dataclass(frozen=True, slots=True)
class KnownCustomer:
    """A customer as read (or remembered): model, update-time token, whether from the cache."""

    customer: Customer
    update_time: Any
    cached: bool
    last_write: datetime | None = None
    """The document's update time as a datetime (None if the repository's token is not one)."""


class CustomerCache:
    """Customers read in the last `ttl`, per process (docs/usage.md, "Customer cache").

    Counters stay exact with it: a commit whose plan depends on the counter's period near a
    month boundary (or with a reset pending) is guarded and always re-reads. What may be up to
    `ttl` old is the tier that prices and the quota that alerts, no staler than the delivery
    delay Pub/Sub adds anyway.
    """

    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[datetime, KnownCustomer]] = {}
        self._lock = threading.Lock()

    def get(self, customer_id: str, now: datetime) -> KnownCustomer | None:
        """A remembered customer not older than `ttl`, marked as cached."""
        entry = self._entries.get(customer_id)
        if entry is None or not timedelta(0) <= now - entry[0] < self.ttl:
            return None
        known = entry[1]
        return KnownCustomer(known.customer, known.update_time, True, known.last_write)

    def put(self, customer_id: str, known: KnownCustomer, now: datetime) -> None:
        """Remember a customer just read."""
        with self._lock:
            if len(self._entries) >= _CACHE_MAX_ENTRIES:
                self._entries.clear()
            self._entries[customer_id] = (now, known)

    def adopted(self, customer_id: str, period: str) -> None:
        """A commit set `quota_period` on this customer: remember it (same age, so the tier and
        quota are no staler than before; the entry's update-time token is never used for a
        guard, since a guarded commit always reads fresh)."""
        with self._lock:
            entry = self._entries.get(customer_id)
            if entry is None:
                return
            at, known = entry
            customer = known.customer.model_copy(update={quota.PERIOD_FIELD: period})
            self._entries[customer_id] = (
                at,
                KnownCustomer(customer, known.update_time, False, known.last_write),
            )

    def drop(self, customer_id: str) -> None:
        """Forget a customer."""
        with self._lock:
            self._entries.pop(customer_id, None)


@dataclass(frozen=True, slots=True)
class UsageService:
    """The usage service's collaborators and knobs."""

    repository: UsageRepository
    publisher: AlertPublisher
    limits: Limits = Limits()
    card: RateCard | None = None
    alert_lease: timedelta = ALERT_LEASE
    customer_cache: CustomerCache | None = None
    """None: read the customer for every event."""
    log_names: LogNames = LogNames()
    known_alerts: set[str] = field(default_factory=set)
    """Alert markers this process saw published or claimed by another message (first
    deliveries skip them; a redelivery always looks at the marker)."""

    def handle(self, message: PubSubMessage, now: datetime) -> Result:
        """Record one usage message exactly once (see module doc)."""
        prepared = prepare(message, now, self.limits)
        if isinstance(prepared, Rejection):
            return self._reject(message, prepared, None)
        event = prepared.event
        fresh = False
        for _ in range(MAX_COMMIT_ATTEMPTS):
            known = self._customer(event.customer_id, now, fresh=fresh)
            if known is None:
                expected = "an existing customer document"
                missing = FieldError("customer_id", event.customer_id, expected)
                return self._reject(message, Rejection("unknown_customer", (missing,)), event)
            customer = known.customer
            plan = plan_counters(event, customer, now, known.last_write)
            if plan.guard and known.cached:
                fresh = True  # a guarded commit needs the update time of a fresh read
                continue
            cost = estimate_cost(event, customer.bundle_tier, self.card)
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
            try:
                counters = self.repository.commit_usage(
                    prepared.record_id,
                    record,
                    event.customer_id,
                    plan.increments,
                    known.update_time if plan.guard else None,
                    sets=plan.sets,
                )
            except CommitConflictError:
                fresh = True
                continue
            except UnstorableRecordError as exc:
                refused = FieldError("(record)", str(exc)[:300], "data Firestore accepts")
                return self._reject(message, Rejection("unstorable", (refused,)), event)
            if counters is None:
                alerts = self._recheck_alerts(event, customer, message, now)
                logs.info(
                    "usage event already recorded (redelivery): nothing counted again",
                    decision="duplicate",
                    event_id=event.event_id,
                    message_id=message.message_id,
                    collection=self.log_names.usage_tracking,
                    document=prepared.record_id,
                    customer=event.customer_id,
                )
                return Result(Outcome.DUPLICATE, prepared.record_id, alerts=alerts)
            if plan.adopt_period is not None and self.customer_cache is not None:
                self.customer_cache.adopted(event.customer_id, plan.adopt_period)
            alerts = self._crossing_alerts(
                event=event,
                customer=customer,
                plan=plan,
                counters=counters,
                message=message,
                now=now,
            )
            logs.info(
                "usage recorded",
                decision="recorded",
                event_id=event.event_id,
                message_id=message.message_id,
                collection=self.log_names.usage_tracking,
                document=prepared.record_id,
                customer=event.customer_id,
                action=event.action,
                estimated_cost=str(cost.amount),
                adopted_quota_period=plan.adopt_period,
            )
            return Result(Outcome.RECORDED, prepared.record_id, counters=counters, alerts=alerts)
        raise TransientError(
            f"customer {event.customer_id} kept changing under a guarded commit "
            f"({MAX_COMMIT_ATTEMPTS} attempts); retry later"
        )

    def _customer(self, customer_id: str, now: datetime, *, fresh: bool) -> KnownCustomer | None:
        """The customer, from the short-lived cache unless `fresh`; None if it does not exist."""
        if not fresh and self.customer_cache is not None:
            hit = self.customer_cache.get(customer_id, now)
            if hit is not None:
                return hit
        doc = self.repository.get_customer(customer_id)
        if doc is None:
            if self.customer_cache is not None:
                self.customer_cache.drop(customer_id)
            return None
        customer, bad_fields = read_customer(doc.data)
        if bad_fields:
            logs.invalid_document(
                self.log_names.customers, customer_id, bad_fields, customer=customer_id
            )
        known = KnownCustomer(customer, doc.update_time, False, doc.last_write)
        if self.customer_cache is not None:
            self.customer_cache.put(customer_id, known, now)
        return known

    # -- rejections ---------------------------------------------------------------------------

    def _reject(
        self, message: PubSubMessage, rejection: Rejection, event: UsageEvent | None
    ) -> Result:
        doc_id = message_doc_id(message.message_id)
        created = self.repository.store_rejection(doc_id, rejection_document(message, rejection))
        logs.error(
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

    # -- quota alerts -------------------------------------------------------------------------

    def _crossing_alerts(
        self,
        *,
        event: UsageEvent,
        customer: Customer,
        plan: CounterPlan,
        counters: Mapping[FieldPath, int],
        message: PubSubMessage,
        now: datetime,
    ) -> tuple[str, ...]:
        if plan.count_path is None or plan.month is None:
            return ()
        count = counters.get(plan.count_path)
        if count is None:
            return ()
        quota_ = customer.monthly_scene_quota
        # Every threshold the month has reached, not only the one this event crossed: a seed
        # already past 80 %, or a quota lowered mid-month, must alert too (once), and not only
        # if Pub/Sub happens to redeliver something. Ids this process knows exist are skipped.
        reached = [
            p
            for p in quota.reached_thresholds(quota_, count)
            if alert_doc_id(event.customer_id, plan.month, p) not in self.known_alerts
        ]
        return self._ensure_alerts(
            event=event,
            quota_=quota_,
            month=plan.month,
            count=count,
            thresholds=reached,
            message=message,
            now=now,
        )

    def _recheck_alerts(
        self, event: UsageEvent, customer: Customer, message: PubSubMessage, now: datetime
    ) -> tuple[str, ...]:
        """A redelivery: the first delivery may have died between commit and publish."""
        if event.action != SCENE_GENERATED or quota.is_unlimited(customer.monthly_scene_quota):
            return ()
        month = month_of(event.timestamp)
        # The read above may predate our own first commit (a lost commit reply): read again.
        doc = self.repository.get_customer(event.customer_id)
        last_write = None
        if doc is not None:
            customer, _ = read_customer(doc.data)
            last_write = doc.last_write
        count = month_count(customer, month, now, last_write)
        quota_ = customer.monthly_scene_quota
        reached = quota.reached_thresholds(quota_, count)
        return self._ensure_alerts(
            event=event,
            quota_=quota_,
            month=month,
            count=count,
            thresholds=reached,
            message=message,
            now=now,
        )

    def _ensure_alerts(
        self,
        *,
        event: UsageEvent,
        quota_: int | None,
        month: str,
        count: int,
        thresholds: Sequence[int],
        message: PubSubMessage,
        now: datetime,
    ) -> tuple[str, ...]:
        published = []
        for percent in thresholds:
            alert_id = alert_doc_id(event.customer_id, month, percent)
            payload = {
                "schema_version": 1,
                "alert_id": alert_id,
                "customer_id": event.customer_id,
                "month": month,
                "threshold_percent": percent,
                "monthly_scene_quota": quota_,
                "threshold_scenes": quota.threshold_count(quota_, percent)
                if quota_ is not None
                else None,
                "scenes_generated": count,
                "over_quota": quota_ is not None and count > quota_,
                "event_id": event.event_id,
                "message_id": message.message_id,
                "detected_at": now.isoformat(),
            }
            if self._claim_alert(alert_id, payload, message.message_id, now):
                self._publish_alert(alert_id, payload)
                published.append(alert_id)
        return tuple(published)

    def _claim_alert(
        self, alert_id: str, payload: Mapping[str, Any], claimer: str, now: datetime
    ) -> bool:
        """True when this call must publish the alert; False when it is published or when
        another message claimed it (that message is not acknowledged before it published the
        alert: its delivery or its redelivery finishes the job)."""
        marker = {**payload, "state": "pending", "claimed_by": claimer, "claimed_at": now}
        if self.repository.create_alert_marker(alert_id, marker):
            return True
        existing = self.repository.get_alert_marker(alert_id)
        if existing is None:  # deleted meanwhile: create again on redelivery
            raise TransientError(f"quota alert marker {alert_id} vanished; retry")
        if existing.data.get("state") == "published" or existing.data.get("claimed_by") != claimer:
            self._remember_alert(alert_id)
            return False
        # Our own claim, from an earlier attempt at this very message.
        claimed_at = plain_value(existing.data.get("claimed_at"))
        if isinstance(claimed_at, datetime) and now - claimed_at < self.alert_lease:
            # A concurrent duplicate delivery of this message is publishing it right now; come
            # back (redelivery) to make sure it finished.
            raise TransientError(f"quota alert {alert_id} is being published by another delivery")
        changes = {"claimed_by": claimer, "claimed_at": now}
        if self.repository.take_over_alert_marker(alert_id, changes, existing.update_time):
            return True
        raise TransientError(f"quota alert {alert_id} was taken over meanwhile; retry")

    def _remember_alert(self, alert_id: str) -> None:
        """This process need not look at the marker again (published, or another's job)."""
        if len(self.known_alerts) >= _CACHE_MAX_ENTRIES:
            self.known_alerts.clear()
        self.known_alerts.add(alert_id)

    def _publish_alert(self, alert_id: str, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload, sort_keys=True).encode()
        attributes = {
            "alert_id": alert_id,
            "customer_id": str(payload["customer_id"]),
            "threshold_percent": str(payload["threshold_percent"]),
            "month": str(payload["month"]),
        }
        message_id = self.publisher.publish_alert(body, attributes)
        self.repository.mark_alert_published(
            alert_id, {"state": "published", "alert_message_id": message_id}
        )
        self._remember_alert(alert_id)
        logs.warning(
            f"customer {payload['customer_id']} reached {payload['threshold_percent']} % of its "
            f"monthly scene quota ({payload['scenes_generated']}/{payload['monthly_scene_quota']})",
            customer=payload["customer_id"],
            collection=self.log_names.quota_alerts,
            document=alert_id,
            alert_message_id=message_id,
        )


# --------------------------------------------------------------------------------------------
# Wiring (the deployed function)


@functools.cache
def default_service() -> UsageService:
    """The service over the real adapters, built on first use from the settings."""
    from functions.usage_firestore import (  # noqa: PLC0415 - keeps import (cold start) cheap
        FirestoreUsageRepository,
        PubSubAlertPublisher,
    )

    settings = get_settings()
    limits = Limits(
        max_body_bytes=settings.usage_max_body_bytes,
        max_future=timedelta(seconds=settings.usage_max_future_seconds),
    )
    ttl = settings.usage_customer_cache_seconds
    return UsageService(
        FirestoreUsageRepository(settings),
        PubSubAlertPublisher(settings),
        limits=limits,
        customer_cache=CustomerCache(timedelta(seconds=ttl)) if ttl > 0 else None,
        log_names=LogNames(
            customers=settings.customers_collection,
            usage_tracking=settings.usage_tracking_collection,
            usage_rejections=settings.usage_rejections_collection,
            quota_alerts=settings.quota_alerts_collection,
        ),
    )


def handle_cloud_event(
    event: CloudEvent, service: UsageService | None = None, now: datetime | None = None
) -> Result:
    """Entry of `on_usage_event`: decode, handle, raise transient failures for redelivery."""
    message = decode_pubsub(event.data, str(event["id"]))
    try:
        return (service or default_service()).handle(message, now or datetime.now(UTC))
    except Exception as exc:
        logs.warning(
            f"usage message not processed, Pub/Sub will redeliver: {type(exc).__name__}: {exc}",
            message_id=message.message_id,
        )
        raise
