"""One pydantic model per document kind, field for field as schema.md lists them.

Ranges follow what the schema implies: tiers, support tiers and data packs are enums; quota
>= -1; quality in [0, 1]; counts, minutes and GB non-negative and finite; timestamps
timezone-aware UTC; `schema_version` 1. Numbers and booleans are strict: "45" is not 45.
Unknown fields are refused (`extra="forbid"`): a typo must not pass silently.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    ValidationError,
    model_validator,
)

from shared import names
from shared.errors import FieldError, InvalidDocumentError
from shared.types import (
    DocumentId,
    EventCount,
    Month,
    NonNegFloat,
    NonNegInt,
    StrictBool,
    UnitFloat,
    UtcDatetime,
)

SCHEMA_VERSION: Literal[1] = 1


class BundleTier(enum.StrEnum):
    """What a customer buys; sets the defaults a scene inherits."""

    STANDARD = "standard"
    PRO = "pro"
    ENTERPRISE = "enterprise"
    FOUNDATION = "foundation"


class SupportTier(enum.StrEnum):
    """Support level."""

    BASIC = "basic"
    PRIORITY = "priority"
    DEDICATED = "dedicated"


class DataPackTier(enum.StrEnum):
    """Data pack of a scene, ordered core < plus < full."""

    CORE = "core"
    PLUS = "plus"
    FULL = "full"

    @property
    def rank(self) -> int:
        """Position in core < plus < full."""
        return _DATA_PACK_ORDER.index(self)


_DATA_PACK_ORDER = (DataPackTier.CORE, DataPackTier.PLUS, DataPackTier.FULL)


class Feature(enum.StrEnum):
    """A switchable feature, as named in `feature_flags` documents and `feature_overrides`."""

    AUDIO_NARRATION = "audio_narration"
    SUBTITLE_GENERATION = "subtitle_generation"
    VLA_FINETUNING = "vla_finetuning"
    SIM2REAL = "sim2real"
    CONTACT_RICH = "contact_rich"
    TACTILE = "tactile"
    MULTI_ROBOT = "multi_robot"
    DEFORMABLE = "deformable"
    BIMANUAL = "bimanual"
    DWM_CONDITIONING = "dwm_conditioning"
    STREAMING_EXPORT = "streaming_export"


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANGUAGE_RE = re.compile(r"^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_VOICE_RE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}-[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")


def _pattern(regex: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


Email = Annotated[str, Strict(), _pattern(_EMAIL_RE, "an email address like name@example.org")]
LanguageCode = Annotated[str, Strict(), _pattern(_LANGUAGE_RE, "a BCP 47 language code (en-US)")]
TtsVoice = Annotated[
    str, Strict(), _pattern(_VOICE_RE, "a Google Cloud TTS voice id (en-US-Neural2-D)")
]
ModelName = Annotated[
    str, Strict(), _pattern(_NAME_RE, "a lowercase name ([a-z0-9_.-], at most 64 chars)")
]
Action = Annotated[
    str, Strict(), _pattern(_NAME_RE, "an action name like scene_generated ([a-z0-9_.-])")
]
ShortText = Annotated[str, Strict(), Field(max_length=1024)]

FEATURE_ALIASES: dict[str, Feature] = {"tactile_sensors": Feature.TACTILE}
"""Other spellings met in real documents (schema.md's own example writes `tactile_sensors`)."""


def _canonical_feature_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {FEATURE_ALIASES.get(k, k) if isinstance(k, str) else k: v for k, v in value.items()}
    return value


FeatureMap = Annotated[dict[Feature, StrictBool], BeforeValidator(_canonical_feature_keys)]


class _Document(BaseModel):
    """Common configuration of every document model."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=False,
        frozen=True,
        populate_by_name=True,
    )


class Customer(_Document):
    """`customers/{customer_id}`: account, tier, quota and counters."""

    schema_version: Literal[1]
    """Schema version of this document (1)."""
    bundle_tier: BundleTier
    """Tier bought: standard, pro, enterprise or foundation."""
    organization_name: ShortText | None = None
    """Customer's organization name."""
    email: Email | None = None
    """Primary contact email."""
    monthly_scene_quota: Annotated[int, Strict(), Field(ge=-1)] | None = None
    """Max scenes per calendar month (UTC); -1 or absent = unlimited."""
    scenes_generated_this_month: NonNegInt | None = None
    """Scenes counted in the current quota period (see docs/counters.md)."""
    total_scenes_generated: NonNegInt | None = None
    """Lifetime scene count."""
    total_episodes_generated: NonNegInt | None = None
    """Lifetime episode count."""
    audio_narration_enabled: StrictBool | None = None
    """Customer preference: audio narration (still subject to the audio_narration feature)."""
    subtitle_generation_enabled: StrictBool | None = None
    """Customer preference: subtitles (still subject to the subtitle_generation feature)."""
    preferred_tts_voice: TtsVoice | None = None
    """Google Cloud TTS voice id, e.g. en-US-Neural2-D."""
    preferred_language: LanguageCode | None = None
    """Language code, e.g. en-US."""
    support_tier: SupportTier | None = None
    """Support level: basic, priority or dedicated."""
    contract_start: UtcDatetime | None = None
    """Contract start."""
    contract_end: UtcDatetime | None = None
    """Contract end (not before contract_start)."""
    feature_overrides: FeatureMap | None = None
    """Per-customer feature overrides; win over tier defaults and customer flags."""
    created_at: UtcDatetime | None = None
    """Creation time (server-generated)."""
    updated_at: UtcDatetime | None = None
    """Last user-visible change (server-generated)."""
    quota_reset_at: UtcDatetime | None = None
    """When the monthly quota was last reset."""
    # Bookkeeping added by this suite (docs/counters.md); absent on documents that predate it.
    quota_period: Month | None = None
    """Month (YYYY-MM) that scenes_generated_this_month counts; set by the monthly reset."""
    scene_counts_by_month: dict[Month, NonNegInt] | None = None
    """scene_generated events per calendar month of the event's own timestamp."""

    @model_validator(mode="after")
    def _contract_order(self) -> Customer:
        if self.contract_start and self.contract_end and self.contract_end < self.contract_start:
            raise ValueError(
                f"contract_end {self.contract_end.isoformat()} is before contract_start "
                f"{self.contract_start.isoformat()}"
            )
        return self


class Scene(_Document):
    """`scenes/{scene_id}`: per-scene overrides of what the tier provides."""

    schema_version: Literal[1]
    """Schema version of this document (1)."""
    customer_id: DocumentId
    """Owning customer (document id in `customers`)."""
    bundle_tier: BundleTier | None = None
    """Tier override for this scene; inherits the customer's if absent."""
    robot_type: ModelName | None = None
    """Robot type, e.g. franka, ur10."""
    data_pack_tier: DataPackTier | None = None
    """Data pack: core, plus or full (clamped to the tier's)."""
    episodes_per_variation: Annotated[int, Strict(), Field(ge=1, le=100_000)] | None = None
    """Episodes to generate per variation."""
    max_variations: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] | None = None
    """Maximum scene variations (clamped to the tier's)."""
    min_quality_score: UnitFloat | None = None
    """Minimum quality threshold in [0, 1]."""
    audio_narration_enabled: StrictBool | None = None
    """Audio narration for this scene (clamped by the audio_narration feature)."""
    subtitle_generation_enabled: StrictBool | None = None
    """Subtitles for this scene (clamped by the subtitle_generation feature)."""
    vla_models: list[ModelName] | None = None
    """VLA models to generate (clamped to the tier's list)."""
    num_language_variations: Annotated[int, Strict(), Field(ge=0, le=1000)] | None = None
    """Language variations (clamped to the tier's)."""
    sim2real_enabled: StrictBool | None = None
    """Sim-to-real features (clamped by the sim2real feature)."""
    contact_rich_enabled: StrictBool | None = None
    """Contact-rich simulation (clamped by the contact_rich feature)."""
    tactile_enabled: StrictBool | None = None
    """Tactile sensor simulation (clamped by the tactile feature)."""
    custom_settings: dict[str, Any] | None = None
    """Free-form per-scene settings."""
    created_at: UtcDatetime | None = None
    """Creation time (server-generated)."""
    updated_at: UtcDatetime | None = None
    """Last user-visible change (server-generated)."""


class FeatureFlags(_Document):
    """`feature_flags/{customer_id}` or `feature_flags/_global` (which may only switch off)."""

    schema_version: Literal[1]
    """Schema version of this document (1)."""
    comment: ShortText | None = Field(None, alias="_comment")
    """Free-text note, stored as `_comment`."""
    audio_narration: StrictBool | None = None
    """Audio narration."""
    subtitle_generation: StrictBool | None = None
    """Subtitle generation."""
    vla_finetuning: StrictBool | None = None
    """VLA fine-tuning data."""
    sim2real: StrictBool | None = None
    """Sim-to-real features."""
    contact_rich: StrictBool | None = None
    """Contact-rich manipulation."""
    tactile: StrictBool | None = None
    """Tactile sensor integration."""
    multi_robot: StrictBool | None = None
    """Multi-robot scenes."""
    deformable: StrictBool | None = None
    """Deformable object simulation."""
    bimanual: StrictBool | None = None
    """Bimanual manipulation."""
    dwm_conditioning: StrictBool | None = None
    """DWM conditioning."""
    streaming_export: StrictBool | None = None
    """Streaming data export."""
    rollouts: dict[Feature, Annotated[int, Strict(), Field(ge=1, le=100)]] | None = None
    """Features a gradual rollout turned on in this document, each with the rollout's percent
    then (audit in `feature_rollouts/{feature}`); flags set by hand are not listed."""
    created_at: UtcDatetime | None = None
    """Creation time (server-generated)."""
    updated_at: UtcDatetime | None = None
    """Last user-visible change (server-generated)."""

    def flags(self) -> dict[Feature, bool]:
        """The features this document sets, and to what."""
        out: dict[Feature, bool] = {}
        for feature in Feature:
            value = getattr(self, feature.value)
            if value is not None:
                out[feature] = value
        return out


class UsageEvent(_Document):
    """One usage event as the pipeline publishes it on `usage-events` (JSON body)."""

    schema_version: Literal[1]
    """Schema version of the event (1)."""
    event_id: Annotated[str, Strict(), Field(min_length=1, max_length=256)] | None = None
    """Producer's idempotency key; the same key is recorded once (recommended)."""
    customer_id: DocumentId
    """Customer the usage is billed to."""
    scene_id: DocumentId
    """Scene the usage belongs to."""
    action: Action
    """What happened: scene_generated, episodes_generated, upsell_applied, ..."""
    timestamp: UtcDatetime
    """When it happened (RFC 3339 with a time zone)."""
    episodes_generated: EventCount | None = None
    """Episodes generated, if applicable (at most 10^12: the 64-bit counters add events up)."""
    compute_minutes: NonNegFloat | None = None
    """Compute time used, in minutes."""
    storage_gb: NonNegFloat | None = None
    """Storage consumed, in GB."""
    details: dict[str, JsonValue] | None = None
    """Additional context."""


class UsageRecord(_Document):
    """`usage_tracking/{id}`: one billable action, written once per usage event."""

    schema_version: Literal[1]
    """Schema version of this document (1)."""
    customer_id: DocumentId
    """Customer id."""
    scene_id: DocumentId
    """Scene id."""
    action: Action
    """Action type."""
    timestamp: UtcDatetime
    """When the action occurred."""
    details: dict[str, Any] | None = None
    """Additional context."""
    episodes_generated: EventCount | None = None
    """Number of episodes (if applicable; at most 10^12, as the event's)."""
    compute_minutes: NonNegFloat | None = None
    """Compute time used, in minutes."""
    storage_gb: NonNegFloat | None = None
    """Storage consumed, in GB."""
    billable: StrictBool
    """Whether this action is billable (false for actions the rate card does not know)."""
    estimated_cost: NonNegFloat
    """Estimated cost in USD, rounded half-up to cents."""
    rate_card_version: Annotated[str, Strict(), Field(min_length=1)] | None = None
    """Version of the rate card that priced this record."""
    pricing_tier: BundleTier | None = None
    """Tier whose rates priced this record."""
    event_id: Annotated[str, Strict(), Field(min_length=1, max_length=256)] | None = None
    """Producer's idempotency key, if it sent one."""
    message_id: Annotated[str, Strict(), Field(min_length=1)] | None = None
    """Pub/Sub message id the event arrived in."""
    recorded_at: UtcDatetime | None = None
    """When the record was written (server time)."""


CONFIG_MODELS: dict[str, type[_Document]] = {
    names.CUSTOMERS: Customer,
    names.SCENES: Scene,
    names.FEATURE_FLAGS: FeatureFlags,
}
"""Model of each configuration collection (by its default name), in migration order."""

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Turn a pydantic error into FieldErrors: dotted path, value received, what was expected."""
    out = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "(document)"
        expected = err["msg"]
        if err["type"] == "extra_forbidden":
            expected = "no such field in the schema"
        elif err["type"] == "missing":
            expected = "a value (the field is required)"
        elif expected.startswith("Value error, "):
            expected = expected.removeprefix("Value error, ")
        # A missing field's "input" is the whole enclosing document: report no value instead.
        value = None if err["type"] == "missing" else err.get("input")
        out.append(FieldError(path, value, expected))
    return out


def validate(model: type[M], data: Mapping[str, Any], *, kind: str | None = None) -> M:
    """Validate a document; raise InvalidDocumentError naming each bad field and value."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidDocumentError(kind or model.__name__, field_errors(exc)) from None


def validate_json(model: type[M], body: str | bytes, *, kind: str | None = None) -> M:
    """Validate a JSON text; raise InvalidDocumentError naming each bad field and value."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidDocumentError(kind or model.__name__, field_errors(exc)) from None


def document_errors(model: type[BaseModel], data: Mapping[str, Any]) -> list[FieldError]:
    """The validation errors of a document, empty when it is valid."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return field_errors(exc)
    return []


def to_plain(model: BaseModel) -> dict[str, Any]:
    """Plain dict of set fields (enums as strings, datetimes kept), by alias."""
    data: dict[str, Any] = _plain(model.model_dump(mode="python", exclude_none=True, by_alias=True))
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "CONFIG_MODELS",
    "SCHEMA_VERSION",
    "BundleTier",
    "Customer",
    "DataPackTier",
    "Feature",
    "FeatureFlags",
    "Scene",
    "SupportTier",
    "UsageEvent",
    "UsageRecord",
    "datetime",
    "document_errors",
    "field_errors",
    "to_plain",
    "validate",
    "validate_json",
]
