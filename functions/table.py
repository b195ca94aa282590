"""The function table: the single declarative list of the deployed functions.

Deploy steps (`cloudbuild.yaml`), the local suite's trigger registration and the docs are
generated from or checked against this list; nothing else repeats it. Importing this module is
cheap (no Google client).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Final

from shared import names
from shared.settings import Settings, load_settings

FIRESTORE_WRITTEN: Final = "google.cloud.firestore.document.v1.written"
PUBSUB_PUBLISHED: Final = "google.cloud.pubsub.topic.v1.messagePublished"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How Pub/Sub redelivers a message the function did not acknowledge, and when it gives up.

    The deploy pipeline and the local suite both read it (the suite scales the backoff down,
    `scaled`), so production and `make run` cannot drift apart.
    """

    max_delivery_attempts: int
    """Deliveries before the message moves to the dead-letter topic (Pub/Sub allows 5-100)."""
    min_backoff_seconds: float
    """Pub/Sub's retry policy: wait at least this long before redelivering a failed message."""
    max_backoff_seconds: float
    """... and at most this long (the wait grows exponentially between the two)."""
    dead_letter_topic_setting: str | None
    """Settings attribute naming the dead-letter topic; None only for the dead-letter recorders
    themselves (a dead letter of a dead letter has nowhere a person looks)."""

    def __post_init__(self) -> None:
        if not 5 <= self.max_delivery_attempts <= 100:
            raise ValueError(
                f"max_delivery_attempts={self.max_delivery_attempts}: Pub/Sub allows 5-100"
            )
        if not 0 <= self.min_backoff_seconds <= self.max_backoff_seconds <= 600:
            raise ValueError(
                f"backoff {self.min_backoff_seconds}-{self.max_backoff_seconds} s: Pub/Sub allows "
                "0 <= min <= max <= 600"
            )

    def dead_letter_topic(self, settings: Settings) -> str | None:
        """The dead-letter topic under the given settings."""
        setting = self.dead_letter_topic_setting
        return None if setting is None else str(getattr(settings, setting))

    def backoff(self, attempt: int) -> float:
        """Seconds before redelivering after failed attempt `attempt` (1 = the first): doubling
        from the minimum, capped at the maximum (Pub/Sub documents the bounds, not the curve)."""
        return min(self.max_backoff_seconds, self.min_backoff_seconds * 2.0 ** max(0, attempt - 1))

    def scaled(self, factor: float) -> DeliveryPolicy:
        """The same policy with its backoff divided by `factor` (the local suite's clock)."""
        return dataclasses.replace(
            self,
            min_backoff_seconds=self.min_backoff_seconds / factor,
            max_backoff_seconds=self.max_backoff_seconds / factor,
        )


USAGE_DELIVERY: Final = DeliveryPolicy(10, 10.0, 600.0, "usage_events_dead_letter_topic")
"""Production's usage policy: 10 attempts, 10-600 s backoff, then `usage-events-dead-letter`."""
SCHEDULE_DELIVERY: Final = DeliveryPolicy(10, 10.0, 600.0, "schedules_dead_letter_topic")
"""Scheduled jobs (monthly reset, fold): same retries, dead letters on `schedules-dead-letter`."""
DEAD_LETTER_DELIVERY: Final = DeliveryPolicy(10, 10.0, 600.0, None)
"""The recorders' own subscriptions: backoff, no dead-letter topic. Their handler raises only
for a transient Firestore failure; the hold subscriptions keep every dead letter 7 days."""


class TriggerKind(enum.StrEnum):
    """How Eventarc delivers events to a function."""

    FIRESTORE = "firestore"
    PUBSUB = "pubsub"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One deployed function: what it is called, what triggers it, how it is run."""

    name: str
    """Deployed name (Cloud Functions resource id)."""
    entry_point: str
    """Attribute of `functions/main.py`."""
    trigger: TriggerKind
    event_type: str
    document: str | None = None
    """Firestore document path pattern, for Firestore triggers."""
    collection_setting: str | None = None
    """Settings attribute naming the watched collection (so a renamed collection still matches)."""
    topic_setting: str | None = None
    """Settings attribute naming the topic, for Pub/Sub triggers."""
    retry: bool = True
    """Retry on failure: a raised exception makes the platform redeliver the event."""
    memory: str = "256Mi"
    cpu: str | None = None
    """vCPUs per instance (`--cpu`); None: the platform's default for the memory (below 1 vCPU,
    which forces concurrency 1). Concurrency > 1 needs at least "1"."""
    timeout_seconds: int = 60
    max_instances: int = 100
    concurrency: int = 1
    """Requests one instance serves at once (the deploy sets functions-framework's THREADS to
    it: its gunicorn serves 4 threads per vCPU otherwise, and requests past them queue)."""
    request_logs: bool = True
    """False: Cloud Run's request log of this function's 2xx answers is excluded from the
    `_Default` sink (not ingested, not billed; failures are still logged): for functions whose
    successes are recorded in Firestore or say what they did in a line of their own."""
    description: str = ""
    delivery: DeliveryPolicy | None = None
    """Pub/Sub triggers: the subscription's retry and dead-letter policy (required for them)."""

    def topic(self, settings: Settings) -> str | None:
        """The topic this function listens on, under the given settings."""
        return None if self.topic_setting is None else str(getattr(settings, self.topic_setting))

    def document_pattern(self, settings: Settings) -> str | None:
        """The document path pattern this function watches, under the given settings."""
        if self.document is None or self.collection_setting is None:
            return self.document
        collection = str(getattr(settings, self.collection_setting))
        return collection + self.document[self.document.index("/") :]


def _stamper(subject: str, document: str, collection_setting: str, what: str) -> FunctionSpec:
    """The Firestore trigger `on-{subject}-written`: stamps a configuration document and
    publishes its cache invalidation."""
    return FunctionSpec(
        name=f"on-{subject}-written",
        entry_point=f"on_{subject.replace('-', '_')}_written",
        trigger=TriggerKind.FIRESTORE,
        event_type=FIRESTORE_WRITTEN,
        document=document,
        collection_setting=collection_setting,
        # Every fold that counts a customer's usage writes its document, and each write runs
        # this trigger: its 2xx request lines would bill a log line per write for nothing
        # (its own decision line says what it did).
        request_logs=False,
        description=f"Stamp {what} and publish cache invalidations.",
    )


def _dead_letter_recorder(name: str, topic_setting: str, description: str) -> FunctionSpec:
    """A subscriber of a dead-letter topic (`record_dead_letters` tells the topics apart)."""
    return FunctionSpec(
        name=name,
        entry_point="record_dead_letters",
        trigger=TriggerKind.PUBSUB,
        event_type=PUBSUB_PUBLISHED,
        topic_setting=topic_setting,
        description=description,
        delivery=DEAD_LETTER_DELIVERY,
    )


FUNCTIONS: Final[tuple[FunctionSpec, ...]] = (
    _stamper(
        "customer",
        f"{names.CUSTOMERS}/{{customerId}}",
        "customers_collection",
        "created_at/updated_at on customers",
    ),
    _stamper(
        "scene",
        f"{names.SCENES}/{{sceneId}}",
        "scenes_collection",
        "created_at/updated_at on scenes",
    ),
    _stamper(
        "feature-flags",
        f"{names.FEATURE_FLAGS}/{{docId}}",
        "feature_flags_collection",
        "feature-flag documents",
    ),
    FunctionSpec(
        name="on-usage-event",
        entry_point="on_usage_event",
        trigger=TriggerKind.PUBSUB,
        event_type=PUBSUB_PUBLISHED,
        topic_setting="usage_events_topic",
        memory="1Gi",
        cpu="1",
        # I/O-bound (one Firestore create): many requests in flight per instance.
        concurrency=64,
        request_logs=False,
        description="Record each usage event exactly once with its cost (its only write).",
        delivery=USAGE_DELIVERY,
    ),
    FunctionSpec(
        name="reset-monthly-quotas",
        entry_point="reset_monthly_quotas",
        trigger=TriggerKind.PUBSUB,
        event_type=PUBSUB_PUBLISHED,
        topic_setting="quota_reset_schedule_topic",
        memory="512Mi",
        timeout_seconds=540,
        max_instances=1,
        description="Reset monthly scene quotas once per customer per month (scheduled).",
        delivery=SCHEDULE_DELIVERY,
    ),
    _dead_letter_recorder(
        "record-dead-letters",
        "usage_events_dead_letter_topic",
        "Store each dead-lettered usage message in usage_rejections (dead_letter).",
    ),
    _dead_letter_recorder(
        "record-schedule-dead-letters",
        "schedules_dead_letter_topic",
        "Log each dead-lettered schedule message; a reset one under its month's audit.",
    ),
    FunctionSpec(
        name="fold-usage-counters",
        entry_point="fold_usage_counters",
        trigger=TriggerKind.PUBSUB,
        event_type=PUBSUB_PUBLISHED,
        topic_setting="usage_fold_schedule_topic",
        # No redelivery: the schedule ticks every minute and the next fold is the retry (a
        # redelivered tick would only run a second, overlapping fold).
        retry=False,
        memory="512Mi",
        timeout_seconds=300,
        # One fold at a time in normal operation; overlapping folds stay correct (guarded sets).
        max_instances=1,
        concurrency=1,
        description="Sum the new usage records into month summaries, customer counters, alerts.",
        delivery=SCHEDULE_DELIVERY,
    ),
)


def by_name(name: str) -> FunctionSpec:
    """The spec of a deployed function, by its deployed name."""
    for spec in FUNCTIONS:
        if spec.name == name:
            return spec
    raise KeyError(f"no function named {name!r}; known: {[s.name for s in FUNCTIONS]}")


def markdown_table(settings: Settings | None = None) -> str:
    """The function table as Markdown (README and docs are checked against this)."""
    settings = settings or load_settings({})
    rows = [
        "| function | entry point | trigger | source | retry | delivery | memory | timeout |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for spec in FUNCTIONS:
        source = spec.document_pattern(settings) or f"topic `{spec.topic(settings)}`"
        if spec.trigger is TriggerKind.FIRESTORE:
            source = f"`{source}`"
        rows.append(
            f"| `{spec.name}` | `{spec.entry_point}` | `{spec.event_type}` | {source} | "
            f"{'yes' if spec.retry else 'no'} | {_delivery_text(spec, settings)} | "
            f"{spec.memory} | {spec.timeout_seconds} s |"
        )
    return "\n".join(rows) + "\n"


def _delivery_text(spec: FunctionSpec, settings: Settings) -> str:
    policy = spec.delivery
    if policy is None:
        return "Eventarc (24 h)" if spec.trigger is TriggerKind.FIRESTORE else "-"
    dead = policy.dead_letter_topic(settings)
    backoff = f"{policy.min_backoff_seconds:g}-{policy.max_backoff_seconds:g} s backoff"
    if dead is None:
        return f"{backoff}, no dead-letter topic"
    return f"{policy.max_delivery_attempts} attempts, {backoff}, then `{dead}`"
