"""The one reader of environment variables.

Every setting has a working default except none: a function starts with nothing set. The project
id comes from `GOOGLE_CLOUD_PROJECT` (Cloud Functions sets it), the emulators from the standard
`FIRESTORE_EMULATOR_HOST` / `PUBSUB_EMULATOR_HOST`. Everything else is prefixed `BLUEPRINT_`.
A bad value fails at start with the variable's name and the value received.
"""

from __future__ import annotations

import functools
import re
from contextvars import ContextVar
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared import names
from shared.errors import ConfigurationError

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
_HOST_PORT_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}\Z")
_TOPIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}\Z")
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9_\-]{1,100}\Z")


def _project(value: str) -> str:
    if not _PROJECT_RE.match(value):
        raise ValueError(
            "expected a Google Cloud project id: 6-30 lowercase letters, digits or hyphens, "
            "starting with a letter"
        )
    return value


def _host_port(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _HOST_PORT_RE.match(value):
        raise ValueError("expected HOST:PORT, for example 127.0.0.1:8080")
    port = int(value.rsplit(":", 1)[1])
    if not 0 < port < 65536:
        raise ValueError("expected a port between 1 and 65535")
    return value


def _topic(value: str) -> str:
    if not _TOPIC_RE.match(value) or value.lower().startswith("goog"):
        raise ValueError("expected a Pub/Sub topic id (3-255 chars, starts with a letter)")
    return value


def _collection(value: str) -> str:
    if not _COLLECTION_RE.match(value) or (value.startswith("__") and value.endswith("__")):
        raise ValueError("expected a collection id (letters, digits, '_' or '-', no '/')")
    return value


_ISOLATED: ContextVar[bool] = ContextVar("settings_isolated", default=False)

ProjectId = Annotated[str, AfterValidator(_project)]
HostPort = Annotated[str | None, AfterValidator(_host_port)]
TopicId = Annotated[str, AfterValidator(_topic)]
CollectionId = Annotated[str, AfterValidator(_collection)]


class Settings(BaseSettings):
    """Runtime configuration of every function, tool and test."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=True,
        use_attribute_docstrings=True,
        populate_by_name=False,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment only, or only the mapping given to `load_settings`."""
        return (init_settings,) if _ISOLATED.get() else (init_settings, env_settings)

    project_id: ProjectId = Field("demo-blueprint", validation_alias="GOOGLE_CLOUD_PROJECT")
    """Google Cloud project id. Cloud Run functions do not set it: the deploy pipeline does
    (`--set-env-vars=GOOGLE_CLOUD_PROJECT=$PROJECT_ID`); `demo-*` ids never reach production."""
    firestore_emulator_host: HostPort = Field(None, validation_alias="FIRESTORE_EMULATOR_HOST")
    """HOST:PORT of the Firestore emulator, when one is used."""
    pubsub_emulator_host: HostPort = Field(None, validation_alias="PUBSUB_EMULATOR_HOST")
    """HOST:PORT of the Pub/Sub emulator, when one is used."""
    region: str = Field("us-central1", validation_alias="BLUEPRINT_REGION")
    """Region the functions are deployed to."""

    customers_collection: CollectionId = Field(
        names.CUSTOMERS, validation_alias="BLUEPRINT_CUSTOMERS_COLLECTION"
    )
    """Collection of customer documents."""
    scenes_collection: CollectionId = Field(
        names.SCENES, validation_alias="BLUEPRINT_SCENES_COLLECTION"
    )
    """Collection of scene documents."""
    feature_flags_collection: CollectionId = Field(
        names.FEATURE_FLAGS, validation_alias="BLUEPRINT_FEATURE_FLAGS_COLLECTION"
    )
    """Collection of feature-flag documents (one per customer, plus `_global`)."""
    usage_tracking_collection: CollectionId = Field(
        names.USAGE_TRACKING, validation_alias="BLUEPRINT_USAGE_TRACKING_COLLECTION"
    )
    """Collection of usage records."""
    usage_rejections_collection: CollectionId = Field(
        names.USAGE_REJECTIONS, validation_alias="BLUEPRINT_USAGE_REJECTIONS_COLLECTION"
    )
    """Collection of usage messages refused as permanently invalid."""
    quota_resets_collection: CollectionId = Field(
        names.QUOTA_RESETS, validation_alias="BLUEPRINT_QUOTA_RESETS_COLLECTION"
    )
    """Collection of monthly reset audit documents (`YYYY-MM`)."""
    quota_alerts_collection: CollectionId = Field(
        names.QUOTA_ALERTS, validation_alias="BLUEPRINT_QUOTA_ALERTS_COLLECTION"
    )
    """Collection of quota-alert markers (one per customer, month and threshold)."""
    usage_counters_collection: CollectionId = Field(
        names.USAGE_COUNTERS, validation_alias="BLUEPRINT_USAGE_COUNTERS_COLLECTION"
    )
    """Month summaries `{customer}_{YYYY-MM}`: the sums of each customer-month (fold-written)."""
    usage_fold_state_collection: CollectionId = Field(
        names.USAGE_FOLD_STATE, validation_alias="BLUEPRINT_USAGE_FOLD_STATE_COLLECTION"
    )
    """The fold's state: one watermark document per bucket, and the last month closed."""
    feature_rollouts_collection: CollectionId = Field(
        names.FEATURE_ROLLOUTS, validation_alias="BLUEPRINT_FEATURE_ROLLOUTS_COLLECTION"
    )
    """Audit documents of gradual feature rollouts, one per feature."""

    usage_events_topic: TopicId = Field(
        names.USAGE_EVENTS_TOPIC, validation_alias="BLUEPRINT_USAGE_EVENTS_TOPIC"
    )
    """Topic the pipeline publishes usage events on."""
    config_invalidations_topic: TopicId = Field(
        names.CONFIG_INVALIDATIONS_TOPIC, validation_alias="BLUEPRINT_CONFIG_INVALIDATIONS_TOPIC"
    )
    """Topic carrying one message per user-visible config change."""
    quota_alerts_topic: TopicId = Field(
        names.QUOTA_ALERTS_TOPIC, validation_alias="BLUEPRINT_QUOTA_ALERTS_TOPIC"
    )
    """Topic for 80 % / 100 % monthly quota alerts."""
    quota_reset_schedule_topic: TopicId = Field(
        names.QUOTA_RESET_SCHEDULE_TOPIC, validation_alias="BLUEPRINT_QUOTA_RESET_SCHEDULE_TOPIC"
    )
    """Topic Cloud Scheduler publishes the monthly reset on."""
    usage_events_dead_letter_topic: TopicId = Field(
        names.USAGE_EVENTS_DEAD_LETTER_TOPIC,
        validation_alias="BLUEPRINT_USAGE_EVENTS_DEAD_LETTER_TOPIC",
    )
    """Dead-letter topic for usage deliveries that kept failing."""
    schedules_dead_letter_topic: TopicId = Field(
        names.SCHEDULES_DEAD_LETTER_TOPIC,
        validation_alias="BLUEPRINT_SCHEDULES_DEAD_LETTER_TOPIC",
    )
    """Dead-letter topic for scheduled-job deliveries (reset, fold) that kept failing."""
    usage_fold_schedule_topic: TopicId = Field(
        names.USAGE_FOLD_SCHEDULE_TOPIC, validation_alias="BLUEPRINT_USAGE_FOLD_SCHEDULE_TOPIC"
    )
    """Topic Cloud Scheduler publishes the every-minute counter fold on."""

    firestore_timeout_seconds: float = Field(
        10.0, gt=0, le=300, validation_alias="BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS"
    )
    """Per-call Firestore deadline; short so a dead backend fails fast and Pub/Sub redelivers."""
    usage_max_body_bytes: int = Field(
        65536, gt=0, le=10_000_000, validation_alias="BLUEPRINT_USAGE_MAX_BODY_BYTES"
    )
    """Largest usage event body accepted; larger ones are rejected."""
    usage_max_future_seconds: float = Field(
        300.0, ge=0, validation_alias="BLUEPRINT_USAGE_MAX_FUTURE_SECONDS"
    )
    """How far in the future a usage timestamp may lie (clock skew) before it is rejected."""
    usage_customer_cache_seconds: float = Field(
        300.0, ge=0, le=600, validation_alias="BLUEPRINT_USAGE_CUSTOMER_CACHE_SECONDS"
    )
    """How long the usage function reuses a customer read (existence, pricing tier) per
    instance; a tier change prices within this long; 0 reads every event."""
    usage_fold_buckets: int = Field(
        16, ge=1, le=1024, validation_alias="BLUEPRINT_USAGE_FOLD_BUCKETS"
    )
    """Buckets the fold scans in parallel: a stable hash of each record's customer-month
    spreads the scan's index over this many prefixes."""
    usage_fold_lag_seconds: float = Field(
        5.0, ge=1, le=60, validation_alias="BLUEPRINT_USAGE_FOLD_LAG_SECONDS"
    )
    """Freshness: a record committed at least this long before a fold reads is in that fold's
    totals. The fold counts records up to this long before its read, so that a record stamped
    just before that bound has landed (the local suite: 1)."""
    usage_fold_page_size: int = Field(
        500, ge=1, le=10_000, validation_alias="BLUEPRINT_USAGE_FOLD_PAGE_SIZE"
    )
    """Records per page of the fold's scan of one bucket."""
    usage_fold_max_records: int = Field(
        100_000, ge=1, validation_alias="BLUEPRINT_USAGE_FOLD_MAX_RECORDS"
    )
    """New records one fold reads at most (memory and time bound); the rest waits for the next
    fold."""
    usage_fold_workers: int = Field(8, ge=1, le=64, validation_alias="BLUEPRINT_USAGE_FOLD_WORKERS")
    """Threads of one fold (bucket scans, then customers) in parallel."""
    usage_fold_alert_lease_seconds: float = Field(
        120.0, gt=0, le=86_400, validation_alias="BLUEPRINT_USAGE_FOLD_ALERT_LEASE_SECONDS"
    )
    """A pending quota alert claimed longer ago than this is taken over by a later fold (its
    claimer is presumed dead)."""
    local_fold_interval_seconds: float = Field(
        2.0, ge=0, le=3600, validation_alias="BLUEPRINT_LOCAL_FOLD_INTERVAL_SECONDS"
    )
    """Local suite only: how often it publishes on the fold schedule topic, playing Cloud
    Scheduler (0: never; production's job runs every minute)."""
    config_cache_ttl_seconds: float = Field(
        300.0, ge=0, validation_alias="BLUEPRINT_CONFIG_CACHE_TTL_SECONDS"
    )
    """TTL of the CustomerConfigService cache."""
    config_override_file: str | None = Field(None, validation_alias="BLUEPRINT_CONFIG_FILE")
    """JSON file whose documents override Firestore (local runs and emergencies)."""
    config_read_timeout_seconds: float = Field(
        2.0, gt=0, le=60, validation_alias="BLUEPRINT_CONFIG_READ_TIMEOUT_SECONDS"
    )
    """Deadline of one CustomerConfigService read; past it the answer is tier defaults, stale."""
    config_retry_seconds: float = Field(
        5.0, ge=0, le=3600, validation_alias="BLUEPRINT_CONFIG_RETRY_SECONDS"
    )
    """After a failed read, how long the service serves stale answers before asking again."""
    log_format: str = Field(
        "json", pattern="^(json|text)$", validation_alias="BLUEPRINT_LOG_FORMAT"
    )
    """`json` (Cloud Logging structured lines) or `text` (readable local log)."""
    log_level: str = Field(
        "INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", validation_alias="BLUEPRINT_LOG_LEVEL"
    )
    """Lowest severity written."""

    # Local harness only (devstack/): never read by a deployed function.
    sdk_root: str | None = Field(None, validation_alias="BLUEPRINT_SDK_ROOT")
    """Cloud SDK root with the emulators (default: gcloud info, else /usr/lib/google-cloud-sdk)."""
    firestore_emulator_cmd: str | None = Field(
        None, validation_alias="BLUEPRINT_FIRESTORE_EMULATOR_CMD"
    )
    """Command prefix (shell-split) starting the Firestore emulator; `start --host ...` follows."""
    pubsub_emulator_cmd: str | None = Field(None, validation_alias="BLUEPRINT_PUBSUB_EMULATOR_CMD")
    """Command prefix (shell-split) starting the Pub/Sub emulator; `--host= --port=` follow."""
    java_cmd: str = Field("java", validation_alias="BLUEPRINT_JAVA")
    """Java launcher the emulators need (17 or newer)."""

    def collection(self, logical: str) -> str:
        """The configured name of the collection whose default (logical) name is `logical`.

        `settings.collection(names.CUSTOMERS)` is `settings.customers_collection`: code that
        keys documents by logical collection (the migration, the examples) maps them here once.
        """
        try:
            setting = _COLLECTION_SETTINGS[logical]
        except KeyError:
            known = ", ".join(sorted(_COLLECTION_SETTINGS))
            raise KeyError(
                f"no collection setting for {logical!r}; expected one of {known}"
            ) from None
        return str(getattr(self, setting))

    def all_topics(self) -> list[str]:
        """Every topic the suite publishes to or listens on."""
        return [
            self.usage_events_topic,
            self.config_invalidations_topic,
            self.quota_alerts_topic,
            self.quota_reset_schedule_topic,
            self.usage_events_dead_letter_topic,
            self.usage_fold_schedule_topic,
            self.schedules_dead_letter_topic,
        ]


_COLLECTION_SETTINGS: dict[str, str] = {
    str(field.default): name
    for name, field in Settings.model_fields.items()
    if name.endswith("_collection")
}
"""Logical collection name (`shared.names`, each setting's default) -> the setting naming it."""


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read and validate settings; a bad value raises ConfigurationError naming the variable."""
    try:
        if env is None:
            return Settings()
        # An explicit mapping replaces the process environment (tests, tools).
        token = _ISOLATED.set(True)
        try:
            return Settings(**env)  # type: ignore[arg-type]
        finally:
            _ISOLATED.reset(token)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            variable = ".".join(str(p) for p in err["loc"])
            problems.append(f"{variable}={err.get('input')!r}: {err['msg']}")
        raise ConfigurationError("bad environment: " + "; ".join(problems)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return load_settings()
