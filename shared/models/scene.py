"""`scenes/{scene_id}`: the scene document model."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, Strict

from shared.models.base import Document, ModelName
from shared.models.vocabulary import BundleTier, DataPackTier
from shared.types import DocumentId, StrictBool, UnitFloat, UtcDatetime


class Scene(Document):
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
